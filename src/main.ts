/**
 * main.ts - entry point of the proxymap executable.
 *
 * Parses the command line (server/options.ts) and runs one mode:
 *   (Postfix options)   the daemon under master(8), or -S on stdin/stdout (server/daemon.ts)
 *   --listen PATH       the daemon on a UNIX socket of its own, without master
 *   --demo              a self-contained demonstration (server/demo.ts)
 *   --self-test         which embedded native parts load (server/selfTest.ts)
 *   --status [--json]   statistics of the instance's processes (stats/statusCommand.ts)
 *   --check             the approved tables checked before going live (check/checkCommand.ts)
 *   --types             the table types it serves, one a line (tables/registry.ts)
 *   --install-native DIR  the native files it carries, written into DIR (sys/embeddedAddon.ts)
 *   --help              usage
 * A fatal error (msg.fatal) ends the process with status 1 after a pause of
 * one second, as Postfix's msg_fatal does (our own modes skip the pause);
 * any other exception that escapes start-up is logged as fatal too.
 *
 * Reads: argv, the environment. Logs: through src/log (set up first thing).
 */
import { FatalError, msg } from "./log/msg";
import { applyLogChoice, earlyLogChoice } from "./log/setup";
import { runDaemon } from "./server/daemon";
import { runDemo } from "./server/demo";
import { parseAdminArgs, parseDaemonArgs, programName, USAGE, type AdminOptions } from "./server/options";
import { selfTest } from "./server/selfTest";
import { runStatus } from "./stats/statusCommand";
import { runCheck, runCheckService } from "./check/checkCommand";
import { DEFAULT_CANARY } from "./check/serviceCheck";
import { installNative } from "./sys/embeddedAddon";
import { tableTypeNames } from "./tables/registry";

/**
 * The name Postfix would use (argv[0]'s base name) when this is the compiled
 * executable; "proxymap" when the sources run under bun.
 */
function processName(): string {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? programName(process.argv0 || process.execPath) : "proxymap";
}

/** Postfix's msg_fatal sleeps a second before exit, so master cannot restart a broken daemon in a tight loop. */
let fatalPause = true;

/** --status, --check: commands for the administrator, logging to stderr. */
async function runAdmin(o: AdminOptions): Promise<number> {
  switch (o.mode) {
    case "status":
      return runStatus({ configDir: o.configDir, json: o.json });
    case "check":
      return runCheck({ configDir: o.configDir, key: o.key });
    case "check-service":
      return runCheckService(o.configDir, o.line ?? 0, o.key ?? DEFAULT_CANARY);
  }
}

async function main(): Promise<number | undefined> {
  const procname = processName();
  const admin = parseAdminArgs(process.argv.slice(2), process.env);
  if (admin !== undefined) {
    applyLogChoice(earlyLogChoice(procname, true, false));
    fatalPause = false;
    if (!admin.ok) {
      process.stderr.write(`${procname}: ${admin.error}\n${USAGE}`);
      return 2;
    }
    return runAdmin(admin.options);
  }
  const parsed = parseDaemonArgs(process.argv.slice(2), process.env, procname);
  const o = parsed.options;
  const own = o.listenPath !== undefined || o.demo || o.selfTest || o.help || o.types || o.installNative !== undefined;
  // Logging before anything else, like Postfix; our own modes log to stderr.
  applyLogChoice(earlyLogChoice(procname, o.stderr || own, !own));
  fatalPause = !own;
  msg.verbose = o.verbose;
  if (!parsed.ok) return msg.fatal(parsed.error);
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (o.selfTest) return selfTest();
  if (o.types) {
    process.stdout.write(tableTypeNames().join("\n") + "\n");
    return 0;
  }
  if (o.installNative !== undefined) {
    for (const path of installNative(o.installNative)) process.stdout.write(`${path}\n`);
    return 0;
  }
  if (o.demo) return runDemo(procname);
  const started = await runDaemon(o, procname);
  return started.server ? undefined : 0; // serving: the event loop keeps the process
}

function die(e: unknown): never {
  if (!(e instanceof FatalError)) {
    try {
      msg.fatal(`${(e as Error)?.stack ?? String(e)}`);
    } catch {
      // logged
    }
  }
  if (fatalPause) Bun.sleepSync(1000);
  process.exit(1);
}

// After start-up, an exception that escapes an event handler: msg.fatal ends
// the process as in Postfix; anything else is logged and the other clients
// keep being served (request handling never throws by contract).
const escaped = (e: unknown) => {
  if (e instanceof FatalError) die(e);
  try {
    msg.error(`internal error: ${(e as Error)?.stack ?? String(e)}`);
  } catch {
    // a broken log channel must not take the daemon down
  }
};
process.on("uncaughtException", escaped);
process.on("unhandledRejection", escaped);
process.on("SIGXFSZ", () => {}); // Postfix ignores it: a too-large file is an error, not death
main().then((code) => {
  if (code !== undefined) process.exit(code);
}, die);
