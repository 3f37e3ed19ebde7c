/**
 * options.ts - the command line and environment of a Postfix daemon, parsed
 * the way Postfix's multi_server skeleton parses them.
 *
 * Postfix options (getopt "+cdDi:lm:n:o:s:St:uvVz": options end at the first
 * non-option word or at "--"; letters may be clustered, "-vv", and an argument
 * may be attached, "-ofoo=bar"):
 *   -c          chroot to queue_directory
 *   -d          do not insist that stdin is not a terminal
 *   -D          debug (Postfix runs debugger_command; accepted and ignored here)
 *   -i time     max_idle (same as -o max_idle=time)
 *   -l          process limit is 1 (accepted)
 *   -m count    max_use (same as -o max_use=count)
 *   -n name     service name (proxymap or proxywrite)
 *   -o n=v      parameter override, in command-line order with -i and -m
 *   -s count    number of listening sockets inherited from fd 6 on
 *   -S          stand-alone: one request on stdin, reply on stdout
 *   -t type     transport type (unix, inet; required under master)
 *   -u          drop privileges to mail_owner
 *   -v          more verbose logging (repeatable)
 *   -V          also log to standard error
 *   -z          process limit is 0 (accepted)
 * Our own options (long, anywhere among the options, before "--"):
 *   --listen PATH   serve on a UNIX socket of our own at PATH, without master
 *   --user NAME     with --listen: serve as NAME (-u: as mail_owner); as root,
 *                   --listen refuses to serve without one of the two
 *   --demo          build a throw-away configuration, answer a few lookups, print them
 *   --self-test     report which embedded native parts load, then exit
 *   --types         list the table types this executable serves, one a line
 *   --install-native DIR  write the native files it carries into DIR (packaging)
 *   --help          usage on standard output
 * Administration commands (their own small grammar: here -c takes the
 * configuration directory, as in postconf and postmap; parseAdminArgs()):
 *   --status [--json] [-c CONFIG_DIR]        statistics of the running processes
 *   --check [-c CONFIG_DIR] [--key KEY]      check the approved tables
 * Environment: MAIL_CONFIG (configuration directory, default /etc/postfix),
 * GENERATION (octal process generation from master), MAIL_VERBOSE, MAIL_DEBUG.
 *
 * Errors use Postfix's wording ("invalid option: x", "invalid socket_count: 0",
 * "invalid \"-o x\" option value: ...", "bad generation: x") and are returned,
 * not logged: the caller logs them once logging is set up.
 *
 * Reads: argv and the environment. Logs: nothing.
 */

export interface DaemonOptions {
  /** -c */
  chroot: boolean;
  /** false with -d */
  daemonMode: boolean;
  /** -D, or MAIL_DEBUG in the environment */
  debug: boolean;
  /** -l */
  solitary: boolean;
  /** -z */
  unlimited: boolean;
  /** -n, default the program name */
  serviceName: string;
  /** -o name=value, -i and -m, in command-line order (later wins) */
  overrides: Array<[string, string]>;
  /** -i was given */
  maxIdleGiven: boolean;
  /** -m was given */
  maxUseGiven: boolean;
  /** -s */
  socketCount: number;
  /** -S */
  standalone: boolean;
  /** -t */
  transport?: string;
  /** -u */
  dropPrivileges: boolean;
  /** number of -v, plus one for MAIL_VERBOSE */
  verbose: number;
  /** -V */
  stderr: boolean;
  /** words after the options (proxymap takes none: fatal later) */
  args: string[];
  /** --listen PATH */
  listenPath?: string;
  /** --user NAME (with --listen) */
  user?: string;
  /** --demo */
  demo: boolean;
  /** --types */
  types: boolean;
  /** --install-native DIR */
  installNative?: string;
  /** --self-test */
  selfTest: boolean;
  /** --help */
  help: boolean;
  /** MAIL_CONFIG or /etc/postfix */
  configDir: string;
  /** GENERATION from master, 0 when absent */
  generation: number;
}

export type ParseResult =
  | { ok: true; options: DaemonOptions }
  /** error: the fatal text; options: what was parsed up to the error (for -V). */
  | { ok: false; error: string; options: DaemonOptions };

export const USAGE = `usage: proxymap [generic Postfix daemon options]
       proxymap --listen PATH {-u | --user NAME} [-n proxymap|proxywrite] [-o name=value ...] [-v] [-i time] [-m count]
       proxymap --demo
       proxymap --self-test
       proxymap --status [--json] [-c config_dir]
       proxymap --check [-c config_dir] [--key canary_key]
       proxymap --types
       proxymap --install-native DIR
Postfix options: -c -d -D -i max_idle -l -m max_use -n service -o name=value -s count
                 -S -t transport -u -v -V -z (see master(5) and proxymap(8))
Environment: MAIL_CONFIG (default /etc/postfix), GENERATION
`;

const WITH_ARG = new Set(["i", "m", "n", "o", "s", "t"]);
const FLAGS = new Set(["c", "d", "D", "l", "S", "u", "v", "V", "z"]);

/** Postfix's ISSPACE: ASCII white space. */
const SPACE = /[ \t\n\v\f\r]/;

/** Postfix's split_nameval(): "name = value" with blanks trimmed. */
export function splitNameValue(text: string): [string, string] | string {
  let i = 0;
  while (i < text.length && SPACE.test(text[i])) i++;
  if (i === text.length || text[i] === "=") return "missing attribute name";
  const start = i;
  while (i < text.length && !SPACE.test(text[i]) && text[i] !== "=") i++;
  const name = text.slice(start, i);
  while (i < text.length && SPACE.test(text[i])) i++;
  if (text[i] !== "=") return "missing '=' after attribute name";
  i++;
  while (i < text.length && SPACE.test(text[i])) i++;
  let end = text.length;
  while (end > i && SPACE.test(text[end - 1])) end--;
  return [name, text.slice(i, end)];
}

/** The program name Postfix would use: basename of argv[0]. */
export function programName(argv0: string): string {
  const base = argv0.slice(argv0.lastIndexOf("/") + 1);
  return base || "proxymap";
}

/** C atoi(): leading blanks, optional sign, digits; anything else stops it. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  return m ? parseInt(m[1], 10) | 0 : 0;
}

/** Parse argv (without the program path) and the environment. */
export function parseDaemonArgs(
  args: readonly string[],
  env: Record<string, string | undefined> = process.env,
  procname = "proxymap",
): ParseResult {
  const o: DaemonOptions = {
    chroot: false,
    daemonMode: true,
    debug: !!env.MAIL_DEBUG,
    solitary: false,
    unlimited: false,
    serviceName: procname,
    overrides: [],
    maxIdleGiven: false,
    maxUseGiven: false,
    socketCount: 1,
    standalone: false,
    dropPrivileges: false,
    verbose: env.MAIL_VERBOSE ? 1 : 0,
    stderr: false,
    args: [],
    demo: false,
    types: false,
    selfTest: false,
    help: false,
    configDir: env.MAIL_CONFIG || "/etc/postfix",
    generation: 0,
  };
  const fail = (error: string): ParseResult => ({ ok: false, error, options: o });

  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i];
    if (word === "--") {
      i++;
      break;
    }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      switch (name) {
        case "listen": {
          const value = eq < 0 ? args[++i] : word.slice(eq + 1);
          if (!value) return fail("option --listen needs a socket path");
          o.listenPath = value;
          break;
        }
        case "user": {
          const value = eq < 0 ? args[++i] : word.slice(eq + 1);
          if (!value) return fail("option --user needs a user name");
          o.user = value;
          break;
        }
        case "demo":
          o.demo = true;
          break;
        case "types":
          o.types = true;
          break;
        case "install-native": {
          const value = eq < 0 ? args[++i] : word.slice(eq + 1);
          if (!value) return fail("option --install-native needs a directory");
          o.installNative = value;
          break;
        }
        case "self-test":
          o.selfTest = true;
          break;
        case "help":
          o.help = true;
          break;
        default:
          return fail(`invalid option: ${word}`);
      }
      continue;
    }
    if (word.length < 2 || word[0] !== "-") break; // first non-option word
    for (let j = 1; j < word.length; j++) {
      const c = word[j];
      if (WITH_ARG.has(c)) {
        let value: string | undefined;
        if (j + 1 < word.length) value = word.slice(j + 1);
        else value = args[++i];
        if (value === undefined) return fail(`invalid option: ${c}`);
        const err = applyWithArg(o, c, value);
        if (err) return fail(err);
        break;
      }
      if (!FLAGS.has(c)) return fail(`invalid option: ${c}`);
      applyFlag(o, c);
    }
  }
  o.args = args.slice(i);
  if (o.user !== undefined && o.listenPath === undefined) return fail("option --user is only for --listen");

  const gen = env.GENERATION;
  if (gen !== undefined) {
    if (!/^\d*$/.test(gen)) return fail(`bad generation: ${gen}`);
    // strtoul(gen, 0, 8): leading octal digits, wrapped to unsigned 32 bits.
    const m = /^[0-7]*/.exec(gen)![0];
    o.generation = m ? Number(BigInt.asUintN(32, BigInt("0o" + m))) : 0;
  }
  return { ok: true, options: o };
}

function applyFlag(o: DaemonOptions, c: string): void {
  switch (c) {
    case "c":
      o.chroot = true;
      break;
    case "d":
      o.daemonMode = false;
      break;
    case "D":
      o.debug = true;
      break;
    case "l":
      o.solitary = true;
      break;
    case "S":
      o.standalone = true;
      break;
    case "u":
      o.dropPrivileges = true;
      break;
    case "v":
      o.verbose++;
      break;
    case "V":
      o.stderr = true;
      break;
    case "z":
      o.unlimited = true;
      break;
  }
}

function applyWithArg(o: DaemonOptions, c: string, value: string): string | undefined {
  switch (c) {
    case "i":
      o.overrides.push(["max_idle", value]);
      o.maxIdleGiven = true;
      return;
    case "m":
      o.overrides.push(["max_use", value]);
      o.maxUseGiven = true;
      return;
    case "n":
      o.serviceName = value;
      return;
    case "o": {
      const nv = splitNameValue(value);
      if (typeof nv === "string") return `invalid "-o ${value}" option value: ${nv}`;
      o.overrides.push(nv);
      return;
    }
    case "s":
      if ((o.socketCount = atoi(value)) <= 0) return `invalid socket_count: ${value}`;
      return;
    case "t":
      o.transport = value;
      return;
  }
}

/** An administration command: --status or --check (not a daemon). */
export interface AdminOptions {
  mode: "status" | "check" | "check-service";
  /** -c DIR, else MAIL_CONFIG, else /etc/postfix. */
  configDir: string;
  /** --status --json */
  json: boolean;
  /** --check --key KEY: the canary lookup key. */
  key?: string;
  /** Internal: --check-service LINE (the child of --check for one master.cf line). */
  line?: number;
}

/**
 * argv of an administration command, or undefined when argv names none
 * (then it is a daemon's, parseDaemonArgs()). Errors are usage texts.
 */
export function parseAdminArgs(args: readonly string[], env: Record<string, string | undefined> = process.env): { ok: true; options: AdminOptions } | { ok: false; error: string } | undefined {
  const modes = args.filter((a) => a === "--status" || a === "--check" || a === "--check-service");
  if (modes.length === 0) return undefined;
  if (modes.length > 1) return { ok: false, error: "use one of --status and --check" };
  const o: AdminOptions = { mode: modes[0].slice(2) as AdminOptions["mode"], configDir: env.MAIL_CONFIG || "/etc/postfix", json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string | undefined => args[++i];
    if (a === "--status" || a === "--check") continue;
    if (a === "--check-service") {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v <= 0) return { ok: false, error: "--check-service needs a master.cf line number" };
      o.line = v;
    } else if (a === "--json" && o.mode === "status") o.json = true;
    else if (a === "-c" || a === "--config") {
      const v = value();
      if (!v) return { ok: false, error: `option ${a} needs a configuration directory` };
      o.configDir = v;
    } else if (a.startsWith("-c") && a.length > 2) o.configDir = a.slice(2);
    else if (a === "--key" && o.mode !== "status") {
      const v = value();
      if (v === undefined || v === "") return { ok: false, error: "option --key needs a key" };
      o.key = v;
    } else return { ok: false, error: `invalid option for --${o.mode}: ${a}` };
  }
  return { ok: true, options: o };
}
