/**
 * preJail.ts - work that must happen before the process enters its chroot
 * jail and drops privileges.
 *
 * Inside the jail there is no /tmp of the host, no libc.so.6 path, no
 * /etc/localtime: Bun writes an embedded native addon (such as lmdb's) to
 * $TMPDIR before it loads it, bun:ffi opens shared libraries by path, and
 * the time zone is read on first use. A module that loads such things lazily
 * registers a hook here at import time (drivers: registerPreJailInit("lmdb",
 * () => { require("lmdb"); })); the skeleton runs every hook after reading
 * the configuration and before chroot/setuid, as root, like Postfix's
 * pre-jail initialisation.
 *
 * Reads: nothing itself. Logs: a warning when a hook fails (the process goes
 * on: the table type that needed it will fail on its own later).
 */
import { msg } from "../log/msg";

type Hook = () => void;
const hooks: Array<[string, Hook]> = [];

/** Register work to run before chroot; name is for log lines. */
export function registerPreJailInit(name: string, hook: Hook): void {
  hooks.push([name, hook]);
}

/** Names of the registered hooks (for --self-test). */
export function preJailHookNames(): string[] {
  return hooks.map(([n]) => n);
}

/** Run every hook once, in registration order. */
export function runPreJailInit(): void {
  for (const [name, hook] of hooks.splice(0)) {
    try {
      hook();
      if (msg.verbose > 1) msg.info(`pre-jail init: ${name}`);
    } catch (e) {
      msg.warn(`pre-jail initialization of ${name} failed: ${(e as Error).message}`);
    }
  }
}
