/**
 * optionFile.ts - MySQL option files (my.cnf), read the way the reference's
 * client library reads them (MariaDB Connector/C 3.3, which Debian's
 * postfix-mysql uses) for mysql_table(5)'s option_file and option_group.
 *
 * Which files: with option_file, that file only; otherwise, when
 * option_group is not empty, the default files /etc/my.cnf,
 * /etc/mysql/my.cnf, $MARIADB_HOME/my.cnf (or $MYSQL_HOME/my.cnf) and
 * $HOME/.my.cnf, each when readable. With no option_file and an empty
 * option_group nothing is read.
 *
 * Which groups: [client], [client-server], [client-mariadb] and
 * [option_group]. "!include FILE" reads FILE; "!includedir DIR" reads only
 * DIR/my.cnf (that is what this library version does, not every *.cnf).
 * Lines: '#' and ';' start comments; "name = value" with blanks trimmed; one
 * pair of surrounding quotes removed; \n \t \r \b \s \" \' \\ escapes; '_'
 * in names reads as '-'; an empty value unsets a string option. A line
 * before any [group], or a '[' without ']', stops reading that file.
 * Options without '=' are ignored (the library passes them on with the
 * line's newline still attached, so they never match a known name).
 *
 * Options used: host, servername, port, socket, unix_socket, user,
 * password, passwd, database, db, default-character-set, connect-timeout,
 * timeout, protocol (1 = TCP, 2 = socket), init-command, ssl-key, ssl-cert,
 * ssl-ca, ssl-capath, ssl-cipher, ssl-verify-server-cert, ssl-enforce and
 * their tls-* names. Numbers are read like atoi(). Later settings win.
 *
 * Reads: the files above. Logs: nothing (the library is silent too).
 */
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";

/** The client options an option file can set. */
export interface ClientOptions {
  host?: string;
  port?: number;
  socket?: string;
  user?: string;
  password?: string;
  database?: string;
  charset?: string;
  connectTimeout?: number;
  /** MYSQL_OPT_PROTOCOL: 1 = TCP, 2 = socket, 0 = default. */
  protocol?: number;
  initCommands: string[];
  sslKey?: string;
  sslCert?: string;
  sslCa?: string;
  sslCapath?: string;
  sslCipher?: string;
  sslVerifyServerCert?: boolean;
  sslEnforce?: boolean;
}

const MAX_RECURSION = 64;

/** atoi(): leading blanks, optional sign, digits; 0 when none. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? Number.parseInt(m[1], 10) | 0 : 0;
}

type Setter = (o: ClientOptions, value: string) => void;

const str = (set: (o: ClientOptions, v: string | undefined) => void): Setter => (o, v) => set(o, v === "" ? undefined : v);

const SETTERS: Record<string, Setter> = {
  port: (o, v) => (o.port = atoi(v)),
  socket: str((o, v) => (o.socket = v)),
  "unix-socket": str((o, v) => (o.socket = v)),
  password: str((o, v) => (o.password = v)),
  passwd: str((o, v) => (o.password = v)),
  user: str((o, v) => (o.user = v)),
  host: str((o, v) => (o.host = v)),
  servername: str((o, v) => (o.host = v)),
  database: str((o, v) => (o.database = v)),
  db: str((o, v) => (o.database = v)),
  "default-character-set": str((o, v) => (o.charset = v)),
  timeout: (o, v) => (o.connectTimeout = atoi(v)),
  "connect-timeout": (o, v) => (o.connectTimeout = atoi(v)),
  protocol: (o, v) => (o.protocol = atoi(v)),
  "init-command": (o, v) => {
    if (v !== "") o.initCommands.push(v);
  },
  "ssl-key": str((o, v) => (o.sslKey = v)),
  "tls-key": str((o, v) => (o.sslKey = v)),
  "ssl-cert": str((o, v) => (o.sslCert = v)),
  "tls-cert": str((o, v) => (o.sslCert = v)),
  "ssl-ca": str((o, v) => (o.sslCa = v)),
  "tls-ca": str((o, v) => (o.sslCa = v)),
  "ssl-capath": str((o, v) => (o.sslCapath = v)),
  "tls-capath": str((o, v) => (o.sslCapath = v)),
  "ssl-cipher": str((o, v) => (o.sslCipher = v)),
  "tls-cipher": str((o, v) => (o.sslCipher = v)),
  "ssl-verify-server-cert": (o, v) => (o.sslVerifyServerCert = atoi(v) !== 0),
  "tls-verify-peer": (o, v) => (o.sslVerifyServerCert = atoi(v) !== 0),
  "ssl-enforce": (o, v) => (o.sslEnforce = atoi(v) !== 0),
  "tls-enforce": (o, v) => (o.sslEnforce = atoi(v) !== 0),
};

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";

function trimEnd(s: string): string {
  let e = s.length;
  while (e > 0 && isSpace(s[e - 1])) e--;
  return s.slice(0, e);
}

/** The value after '=', as the library cleans it up. */
function cleanValue(raw: string): string {
  let v = 0;
  while (v < raw.length && isSpace(raw[v])) v++;
  let end = raw.length;
  while (end > v && isSpace(raw[end - 1])) end--;
  if (raw[v] === "'" || raw[v] === '"') {
    v++;
    if (end > v && (raw[end - 1] === "'" || raw[end - 1] === '"')) end--;
  }
  if (end < v) end = v;
  let out = "";
  for (let i = v; i < end; i++) {
    if (raw[i] === "\\" && i !== end - 1) {
      const c = raw[++i];
      switch (c) {
        case "n":
          out += "\n";
          break;
        case "t":
          out += "\t";
          break;
        case "r":
          out += "\r";
          break;
        case "b":
          out += "\b";
          break;
        case "s":
          out += " ";
          break;
        case '"':
        case "'":
        case "\\":
          out += c;
          break;
        default:
          out += "\\" + c;
      }
    } else {
      out += raw[i];
    }
  }
  return out;
}

function readable(path: string): boolean {
  try {
    accessSync(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function readFileInto(opts: ClientOptions, path: string, groups: readonly string[], depth: number): void {
  let data: string;
  try {
    data = readFileSync(path, "latin1");
  } catch {
    return;
  }
  let foundGroup = false;
  let reading = false;
  for (const rawLine of data.split("\n")) {
    let p = 0;
    while (p < rawLine.length && isSpace(rawLine[p])) p++;
    const line = rawLine.slice(p);
    const c = line[0];
    if (c === "!") {
      const sp = line.indexOf(" ");
      if (sp < 0) continue;
      const directive = line.slice(1, sp);
      const arg = trimEnd(line.slice(sp + 1));
      if (directive === "includedir") readDir(opts, arg, groups, depth + 1);
      else if (directive === "include") readAny(opts, undefined, arg, groups, depth + 1);
      continue;
    }
    if (c === undefined || c === "#" || c === ";") continue;
    if (c === '"' || c === "'") continue; // the library toggles an unused "quoted" state here
    if (c === "[") {
      foundGroup = true;
      const close = line.indexOf("]", 1);
      if (close < 0) return;
      reading = groups.includes(trimEnd(line.slice(1, close)));
      continue;
    }
    if (!foundGroup) return;
    if (!reading) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = trimEnd(line.slice(0, eq)).replaceAll("_", "-");
    const setter = SETTERS[key];
    if (setter) setter(opts, cleanValue(line.slice(eq + 1)));
  }
}

function readDir(opts: ClientOptions, dir: string, groups: readonly string[], depth: number): void {
  if (depth >= MAX_RECURSION || dir === "") return;
  const file = `${dir}/my.cnf`;
  if (readable(file)) readFileInto(opts, file, groups, depth);
}

function readAny(opts: ClientOptions, dir: string | undefined, file: string | undefined, groups: readonly string[], depth: number): void {
  if (depth >= MAX_RECURSION) return;
  if (file) return readFileInto(opts, file, groups, depth);
  if (dir) return readDir(opts, dir, groups, depth);
  const dirs = ["/etc", "/etc/mysql"];
  const home = process.env.MARIADB_HOME ?? process.env.MYSQL_HOME;
  if (home && !dirs.includes(home)) dirs.push(home);
  for (const d of dirs) readDir(opts, d, groups, depth);
  const userHome = process.env.HOME;
  if (userHome) {
    const f = `${userHome}/.my.cnf`;
    if (readable(f)) readFileInto(opts, f, groups, depth);
  }
}

/**
 * The options a connection of a table with these option_file and
 * option_group settings gets from option files (see the file comment).
 */
export function readClientOptions(optionFile: string | null, optionGroup: string): ClientOptions {
  const opts: ClientOptions = { initCommands: [] };
  if (!optionFile && !optionGroup) return opts;
  const groups = ["client", "client-server", "client-mariadb"];
  if (optionGroup) groups.push(optionGroup);
  readAny(opts, undefined, optionFile ?? undefined, groups, 0);
  return opts;
}
