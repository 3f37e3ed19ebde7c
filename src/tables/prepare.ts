/**
 * prepare.ts - running the table types' prepare() (TableType.prepare in
 * table.ts): the work a type does before its first open, once per process.
 *
 * Two callers, as Postfix has its pre-jail initialisation and opens other
 * tables on demand:
 *   - the server skeleton (src/server/daemon.ts) and --check, after reading
 *     main.cf and before chroot and the privilege drop, as root:
 *     prepareTables(approved list) prepares every type that the service's
 *     approved list names ("TYPE:" anywhere in it, nested tables included:
 *     it errs on the side of yes), and loads ICU for the UTF-8 layer when
 *     the process is about to be jailed (inside the jail the library cannot
 *     be found, and keys would be folded by the approximation in utf8.ts,
 *     missing entries that postmap folded with ICU). Nothing else is
 *     loaded: a lookup table server that serves texthash pays neither for
 *     the LDAP client nor for libdb;
 *   - the dict layer (src/tables/dict/open.ts), before a type's first open
 *     (prepared()): a type that no approved list names (a memcache backup,
 *     a domain list's table), or a process that was not prepared (tests).
 *
 * Reads: the approved list. Logs: a warning when a prepare() fails (the
 * process goes on: the type's open fails later with its own text).
 */
import { msg } from "../log/msg";
import { TABLE_TYPES } from "./registry";
import type { PrepareContext, TableType } from "./table";
import { isUtf8Enabled } from "./utf8";
import { preloadIcu } from "./icu";

/** Per type: true when prepared, the Promise while its prepare() runs. */
const state = new Map<TableType, true | Promise<void>>();

const ON_FIRST_OPEN: PrepareContext = { jailed: false };

/**
 * undefined when tt is ready to open (nothing to prepare, or done), else a
 * Promise that settles when it is; a prepare() that failed rejects it, and
 * every open of that type fails with the reason.
 */
export function prepared(tt: TableType, ctx: PrepareContext = ON_FIRST_OPEN): Promise<void> | undefined {
  const s = state.get(tt);
  if (s === true || tt.prepare === undefined) return undefined;
  if (s !== undefined) return s;
  let r: void | Promise<void>;
  try {
    r = tt.prepare(ctx);
  } catch (e) {
    r = Promise.reject(e);
  }
  if (!(r instanceof Promise)) {
    state.set(tt, true);
    return undefined;
  }
  const p = r.then(() => void state.set(tt, true));
  state.set(tt, p);
  return p;
}

/** The table types an approved list names: every "TYPE:" in it. */
export function typesNamedIn(approvedList: string): Set<string> {
  const types = new Set<string>();
  for (const m of approvedList.matchAll(/([A-Za-z0-9_]+):/g)) types.add(m[1]);
  return types;
}

/**
 * Before chroot: prepare the types the approved list names (all types
 * when it is undefined, as --self-test does), and the UTF-8 layer's ICU
 * when jailed. Never throws: failures are logged as warnings.
 */
export async function prepareTables(approvedList: string | undefined, ctx: PrepareContext): Promise<void> {
  const named = approvedList === undefined ? undefined : typesNamedIn(approvedList);
  for (const tt of TABLE_TYPES) {
    if (named && !named.has(tt.type)) continue;
    try {
      await prepared(tt, ctx);
      if (msg.verbose > 1 && tt.prepare) msg.info(`prepared table type ${tt.type}`);
    } catch (e) {
      msg.warn(`pre-jail initialization of table type ${tt.type} failed: ${(e as Error).message}`);
    }
  }
  if (ctx.jailed && isUtf8Enabled()) preloadIcu();
}

/** The types that declare a prepare() (for --self-test). */
export function typesWithPrepare(): string[] {
  return TABLE_TYPES.filter((t) => t.prepare !== undefined).map((t) => t.type);
}
