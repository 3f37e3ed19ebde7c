/**
 * masterCf.ts - the master.cf services that run proxymap, with the
 * command line master(8) gives each of them (master/master_ent.c), so that
 * `proxymap --check` sees each service as its processes will: service
 * name, chroot (-c), privilege drop (-u) and -o overrides.
 *
 * master.cf is read as master reads it: logical lines (continuations start
 * with white space, '#' comments), seven blank-separated fields (service,
 * type, private, unpriv, chroot, wakeup, maxproc), then the command and
 * its arguments, where "{ text }" is one argument without its braces.
 * master adds, before the arguments: -l (maxproc 1), -z (maxproc 0),
 * "-n SERVICE" when the service name differs from the command, "-t TYPE",
 * -u (unpriv, default y) and -c (chroot, default n since Postfix 3.0).
 * The -o values also feed the "used but not approved" scan (used.ts).
 *
 * Reads CONFIG_DIR/master.cf. Logs nothing; a missing master.cf gives
 * Debian's two default entries.
 */
import { readFileSync } from "node:fs";
import { logicalLines } from "../config/logicalLines";
import { Cursor, mystrtok, mystrtokq } from "../util/mystrtok";
import { CHARS_BRACE, CHARS_SPACE } from "../util/ctype";
import { extpar } from "../util/stringops";
import { parseDaemonArgs, type DaemonOptions } from "../server/options";

const BLANKS = CHARS_SPACE; // master_blanks

export interface MasterEntry {
  /** The service name (first field). */
  service: string;
  type: string;
  /** The command (eighth field). */
  command: string;
  /** Arguments after the command, braces removed. */
  args: string[];
  /** The command line master builds (without the program). */
  argv: string[];
  /** Line number in master.cf. */
  line: number;
}

/** Debian's master.cf lines for the two services (when master.cf cannot be read). */
const DEFAULT_LINES = [
  "proxymap   unix  -       -       n       -       -       proxymap",
  "proxywrite unix  -       -       n       -       1       proxymap -n proxywrite",
];

/** Every service of a master.cf text, with master's command line. */
export function parseMasterCf(content: string, path = "master.cf"): MasterEntry[] {
  const out: MasterEntry[] = [];
  for (const ll of logicalLines(content, path)) {
    const cur = new Cursor(ll.text);
    const f: string[] = [];
    for (let i = 0; i < 7; i++) {
      const w = mystrtok(cur, BLANKS);
      if (w === undefined) break;
      f.push(w);
    }
    const command = mystrtok(cur, BLANKS);
    if (f.length < 7 || command === undefined) continue; // master: fatal "missing field"; not ours to judge
    const args: string[] = [];
    for (let w = mystrtokq(cur, BLANKS, CHARS_BRACE); w !== undefined; w = mystrtokq(cur, BLANKS, CHARS_BRACE)) {
      args.push(w[0] === CHARS_BRACE[0] ? extpar(w, true, CHARS_BRACE).text : w);
    }
    const [service, type, , unpriv, chroot, , maxproc] = f;
    const argv: string[] = [];
    if (maxproc === "1") argv.push("-l");
    if (maxproc === "0") argv.push("-z");
    const base = command.slice(command.lastIndexOf("/") + 1);
    if (base !== service) argv.push("-n", service);
    argv.push("-t", type);
    if (unpriv !== "n") argv.push("-u");
    if (chroot === "y") argv.push("-c");
    argv.push(...args);
    out.push({ service, type, command, args, argv, line: ll.lineno });
  }
  return out;
}

/** The services whose command is proxymap, parsed as their processes parse their options. */
export interface ProxymapService {
  entry: MasterEntry;
  options: DaemonOptions;
}

export function readMasterCf(configDir: string): MasterEntry[] {
  let content: string;
  try {
    content = readFileSync(`${configDir}/master.cf`, "latin1");
  } catch {
    content = DEFAULT_LINES.join("\n") + "\n";
  }
  return parseMasterCf(content, `${configDir}/master.cf`);
}

/** The proxymap/proxywrite services of a master.cf, with their options; errors as text. */
export function proxymapServices(entries: readonly MasterEntry[], configDir: string): Array<ProxymapService | { entry: MasterEntry; error: string }> {
  const out: Array<ProxymapService | { entry: MasterEntry; error: string }> = [];
  for (const e of entries) {
    if (e.command.slice(e.command.lastIndexOf("/") + 1) !== "proxymap") continue;
    const r = parseDaemonArgs(e.argv, { MAIL_CONFIG: configDir }, "proxymap");
    out.push(r.ok ? { entry: e, options: r.options } : { entry: e, error: r.error });
  }
  return out;
}
