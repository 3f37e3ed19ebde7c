/**
 * unix.ts - the "unix" table type: the system's user and group databases
 * through NSS (Postfix util/dict_unix.c). Two names exist:
 * - unix:passwd.byname - key a user name, value
 *   "name:passwd:uid:gid:gecos:dir:shell";
 * - unix:group.byname - key a group name, value
 *   "name:passwd:gid:member1,member2,...".
 * Any other name fails to open ("unknown table"), and so does any name on
 * the write service. FOLD_FIX lowercases ASCII letters of the key. Lookup
 * only.
 *
 * When the first lookup of the process finds nothing, the reference checks
 * once that the database answers at all (uid 0 / gid 0) and reports a
 * temporary error if not; this does the same, once per database.
 *
 * NSS may go to LDAP, sssd or systemd-userdbd (nsswitch.conf), and a slow
 * source would stall every client of this process on the main thread; so
 * each lookup runs on a worker thread of the "nss" pool (offload/pool.ts,
 * unix/jobs.ts) and the table answers with a Promise. Measured: the main
 * thread spends about 14 us of CPU on such a lookup, where getpwnam_r on it
 * took about 33 us (files, then systemd); the latency grows by a worker
 * round trip (about 25 us); the process grows by one worker (3.5-4.3 MB)
 * once it has looked up a unix table.
 *
 * Reads: NSS through libc (src/sys/nss.ts), on the worker. Logs: "cannot
 * access UNIX password database: ..." / "... group database: ...".
 */
import { DictFlag } from "../protocol/constants";
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { lowercaseAscii } from "./utf8";
import { OffloadPool } from "./offload/pool";
import type { UnixAnswer, UnixLookup } from "./unix/jobs";

const TYPE = "unix";

/** The worker threads of NSS lookups (started on the first lookup). */
export const nssPool = new OffloadPool("nss");

/** Per process, as the reference's function-static flags. */
const checked = { passwd: false, group: false };
const DATABASE = { passwd: "password", group: "group" };

function lookupIn(map: "passwd" | "group"): Table["lookup"] {
  return async (key: string, flags: number) => {
    if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
    // Only the first lookup of the process may check (found or not, as the reference).
    const check = !checked[map];
    checked[map] = true;
    let a: UnixAnswer;
    try {
      a = await nssPool.call<UnixAnswer>("unix.lookup", { map, key, check } satisfies UnixLookup);
    } catch (e) {
      throw new TableError("retry", `${TYPE}:${map}.byname: ${(e as Error).message}`);
    }
    if (a.broken !== undefined) throw new TableError("retry", `cannot access UNIX ${DATABASE[map]} database: ${a.broken}`);
    return a.value;
  };
}

const MAPS: Record<string, Table["lookup"]> = {
  "passwd.byname": lookupIn("passwd"),
  "group.byname": lookupIn("group"),
};

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const lookup = Object.hasOwn(MAPS, name) ? MAPS[name] : undefined;
  if (!lookup) throw new TableError("retry", `unknown table: ${TYPE}:${name}`);
  return { flags: flags | DictFlag.FIXED, lookup };
}

export const unix: TableType = { type: TYPE, open, refuses: READ_ONLY };
