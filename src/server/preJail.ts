/**
 * preJail.ts - work that must happen before the process enters its chroot
 * jail and drops privileges.
 *
 * Inside the jail there is no /tmp of the host, no libc.so.6 path, no
 * /etc/localtime: Bun writes an embedded native addon (such as lmdb's) to
 * $TMPDIR before it loads it, bun:ffi opens shared libraries by path, and
 * the time zone is read on first use. A module that loads such things lazily
 * registers a hook here at import time; the skeleton runs every hook after
 * reading the configuration and before chroot/setuid, as root, like
 * Postfix's pre-jail initialisation.
 *
 * A hook gets a context telling which table types the approved lists of
 * this service may name, so that a heavy library is loaded only where it can
 * be used (lmdb's addon costs about 9 MB of memory and 3 ms of start-up):
 *     registerPreJailInit("lmdb", (ctx) => (ctx.mayUse("lmdb") ? loadLmdb() : undefined));
 *
 * Reads: nothing itself. Logs: a warning when a hook fails (the process goes
 * on: the table type that needed it will fail on its own later).
 */
import { msg } from "../log/msg";

export interface PreJailContext {
  /** "proxymap" or "proxywrite" */
  serviceName: string;
  /**
   * True when the service's approved list (proxy_read_maps or
   * proxy_write_maps, expanded) contains "TYPE:" anywhere, nested tables
   * included. Errs on the side of yes; with no context (self-test) always yes.
   */
  mayUse(type: string): boolean;
  /**
   * True when the process is about to chroot: what loads fine lazily
   * outside a jail (at a cost some starts never need to pay) must load now.
   */
  jailed: boolean;
}

/** A hook may load something asynchronously (a dynamic import): it is awaited. */
type Hook = (ctx: PreJailContext) => void | Promise<void>;
const hooks: Array<[string, Hook]> = [];

/** A context from the expanded approved list of a service. */
export function preJailContext(serviceName: string, approvedList: string, jailed = false): PreJailContext {
  const types = new Set<string>();
  for (const m of approvedList.matchAll(/([A-Za-z0-9_]+):/g)) types.add(m[1]);
  return { serviceName, mayUse: (type) => types.has(type), jailed };
}

/** A context that lets every hook load everything. */
export const PRE_JAIL_ALL: PreJailContext = { serviceName: "", mayUse: () => true, jailed: true };

/** Register work to run before chroot; name is for log lines. */
export function registerPreJailInit(name: string, hook: Hook): void {
  hooks.push([name, hook]);
}

/** Names of the registered hooks (for --self-test). */
export function preJailHookNames(): string[] {
  return hooks.map(([n]) => n);
}

/** Run every hook once, in registration order. */
export async function runPreJailInit(ctx: PreJailContext = PRE_JAIL_ALL): Promise<void> {
  for (const [name, hook] of hooks.splice(0)) {
    try {
      await hook(ctx);
      if (msg.verbose > 1) msg.info(`pre-jail init: ${name}`);
    } catch (e) {
      msg.warn(`pre-jail initialization of ${name} failed: ${(e as Error).message}`);
    }
  }
}
