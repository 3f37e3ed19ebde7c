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
 * Reads: NSS through libc (src/sys/nss.ts). Logs: "cannot access UNIX
 * password database: ..." / "... group database: ...".
 */
import { DictFlag } from "../protocol/constants";
import { getgrgid, getgrnam, getpwnam, getpwuid, lastErrno, strerror } from "../sys/nss";
import { TableError, type OpenArgs, type Table, type TableType } from "./table";
import { lowercaseAscii } from "./utf8";

const TYPE = "unix";

/** Per process, as the reference's function-static flags. */
let passwdChecked = false;
let groupChecked = false;

function passwdLookup(key: string, flags: number): string | undefined {
  if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
  const pw = getpwnam(key);
  if (!pw) {
    if (!passwdChecked) {
      passwdChecked = true;
      if (!getpwuid(0)) throw new TableError("retry", `cannot access UNIX password database: ${strerror(lastErrno())}`);
    }
    return undefined;
  }
  passwdChecked = true;
  return `${pw.name}:${pw.passwd}:${pw.uid}:${pw.gid}:${pw.gecos}:${pw.dir}:${pw.shell}`;
}

function groupLookup(key: string, flags: number): string | undefined {
  if (flags & DictFlag.FOLD_FIX) key = lowercaseAscii(key);
  const gr = getgrnam(key);
  if (!gr) {
    if (!groupChecked) {
      groupChecked = true;
      if (!getgrgid(0)) throw new TableError("retry", `cannot access UNIX group database: ${strerror(lastErrno())}`);
    }
    return undefined;
  }
  groupChecked = true;
  return `${gr.name}:${gr.passwd}:${gr.gid}:${gr.members.join(",")}`;
}

const MAPS: Record<string, Table["lookup"]> = {
  "passwd.byname": passwdLookup,
  "group.byname": groupLookup,
};

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  if (args.write) throw new TableError("retry", `${TYPE}:${name} map requires O_RDONLY access mode`);
  const lookup = Object.hasOwn(MAPS, name) ? MAPS[name] : undefined;
  if (!lookup) throw new TableError("retry", `unknown table: ${TYPE}:${name}`);
  return { flags: flags | DictFlag.FIXED, lookup };
}

export const unix: TableType = { type: TYPE, open };
