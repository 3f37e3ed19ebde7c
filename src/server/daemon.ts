/**
 * daemon.ts - start-up of a proxymap process, in the order of Postfix's
 * multi_server_main():
 *
 *   1. logging first (syslog, or postlogd from POSTLOG_SERVICE), so that
 *      even option errors are logged; -V adds standard error;
 *   2. options (options.ts); errors are fatal with Postfix's wording;
 *   3. main.cf, -o, -i, -m (loadMainConfig), then logging again with the
 *      configured syslog_name/syslog_facility/maillog_file;
 *   4. mail_owner sanity checks; "do not run this command by hand" when
 *      stdin is a terminal (unless -d or -S); transport type; GENERATION;
 *   5. chdir(queue_directory), pre-jail work (libc, time zone, what the
 *      table types of the approved lists load: src/tables/prepare.ts; the
 *      statistics directory under master:
 *      src/stats/reporter.ts), then chroot and privilege drop (-c, -u);
 *   6. post-jail: the service name must be proxymap or proxywrite, the
 *      service is built (approved tables), proxywrite detaches from
 *      master's signals with setsid(); a left-over argument is fatal;
 *   7. -S: one request on stdin/stdout; otherwise the statistics clock
 *      (src/stats/reporter.ts) and the multi-client loop (skeleton.ts) on
 *      the inherited sockets, or on --listen PATH.
 *
 * Modes of our own: --listen PATH runs the same daemon on a UNIX socket it
 * binds itself, without master: no status channel, no chdir, no tty check,
 * logging to standard error only, and max_idle/max_use apply only when -i/-m
 * are given. It serves as the user named by --user NAME, or mail_owner with
 * -u; started as root without either it refuses to serve (a table server
 * running as root is not what anyone should get by accident). The socket
 * is mode 0600, owned by that user: connecting takes that user (or root);
 * to open it to others, change its mode or put it in a directory of their
 * own. --demo and --self-test: demo.ts, selfTest.ts.
 *
 * Reads: argv, the environment, main.cf. Logs: fatal errors with Postfix's
 * texts, verbose "daemon started" and "process generation".
 */
import { chmodSync, chownSync, lstatSync, unlinkSync } from "node:fs";
import { loadMainConfig, mailVersion, type MainConfig } from "../config/mainCf";
import { atLeast } from "../config/declared";
import { setStrictUtf8 } from "../log/printable";
import { msg } from "../log/msg";
import { applyLogChoice, configuredLogChoice, loggingEnteredJail } from "../log/setup";
import { stderrSink } from "../log/stderrSink";
import { createService, type ProxymapService } from "../service/proxymap";
import { setUtf8Enabled } from "../tables/utf8";
import { prepareTables } from "../tables/prepare";
import { setTableMainConfig } from "../tables/dbCommon/mainConfig";
import { setStatsEnabled } from "../stats/collector";
import { prepareStatusPlace, startStatistics, statsSettings } from "../stats/reporter";
import { getpwnam, isatty, preloadLibc, setsid, strerror, unixListen } from "../sys/libc";
import { MasterStatus, MASTER_LISTEN_FD } from "./masterStatus";
import type { DaemonOptions } from "./options";
import { getBool, getStr, readServerParams } from "./params";
import { checkMailOwner, chrootUid } from "./privileges";
import { MultiServer } from "./skeleton";
import { serveOneRequest } from "./standalone";

export const SERVICE_READ = "proxymap";
export const SERVICE_WRITE = "proxywrite";

export interface Started {
  config: MainConfig;
  service: ProxymapService;
  /** Absent in -S mode (already served and done). */
  server?: MultiServer;
}

/** %m of a Node/Bun system error. */
function sysText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return typeof err.errno === "number" ? strerror(Math.abs(err.errno)) : String(err.message);
}

/**
 * Run the daemon with parsed options. Resolves once it is serving (or, with
 * -S, once the request is answered). Fatal errors throw FatalError.
 */
export async function runDaemon(o: DaemonOptions, procname: string): Promise<Started> {
  const own = o.listenPath !== undefined;
  const underMaster = !own && !o.standalone;
  msg.verbose = o.verbose;
  // Postfix logs this before it parses -v: only MAIL_VERBOSE turns it on.
  if (process.env.MAIL_VERBOSE) msg.info("daemon started");

  // 3. Configuration, then logging as configured.
  const config = loadMainConfig({
    configDir: o.configDir,
    overrides: o.overrides,
    processName: procname,
    serviceName: o.serviceName,
    defaultsCache: underMaster,
  });
  // Table drivers that read main.cf (sqlite/mysql main.cf forms,
  // lmdb_map_size) see the same configuration, -o overrides included; the
  // UTF-8 layer follows smtputf8_enable as Postfix's util_utf8_enable does.
  setTableMainConfig(config);
  setUtf8Enabled(getBool(config, "smtputf8_enable", true));
  setStrictUtf8(atLeast(mailVersion(config), 3, 11));
  const stats = statsSettings(config);
  setStatsEnabled(stats.enabled && !o.standalone);
  const queueDir = getStr(config, "queue_directory", "/var/spool/postfix");
  const mailOwner = getStr(config, "mail_owner", "postfix");
  const mainCf = `${o.configDir}/main.cf`;
  applyLogChoice(
    configuredLogChoice(
      {
        procname,
        syslogName: getStr(config, "syslog_name", "postfix"),
        syslogFacility: getStr(config, "syslog_facility", "mail"),
        maillogFile: config.get("maillog_file"),
        maillogFilePrefixes: getStr(config, "maillog_file_prefixes", "/var, /dev/stdout"),
        queueDirectory: queueDir,
        postlogServiceName: getStr(config, "postlog_service_name", "postlog"),
        myhostname: config.get("myhostname"),
        utf8: getBool(config, "smtputf8_enable", true),
        mainCfPath: mainCf,
      },
      o.stderr || own,
      !own,
    ),
  );

  // 4. Sanity checks Postfix makes before serving.
  const params = readServerParams(config);
  if (!own || o.dropPrivileges) checkMailOwner(mailOwner, mainCf);
  const runAs = own && o.user !== undefined ? o.user : o.dropPrivileges ? mailOwner : undefined;
  if (own && runAs === undefined && process.getuid?.() === 0)
    msg.fatal(
      `refusing to serve --listen ${o.listenPath} as root: give -u (serve as mail_owner, ${mailOwner}) or --user NAME (--user root if you really mean it)`,
    );
  if (o.daemonMode && underMaster && isatty(0)) {
    // Postfix also prints this one on stderr, tagged with the bare program name.
    if (!o.stderr) stderrSink(procname, true).write("fatal", "fatal: do not run this command by hand");
    msg.fatal("do not run this command by hand");
  }
  if (underMaster) {
    const t = o.transport;
    if (t === undefined) return msg.fatal("no transport type specified");
    if (t.toLowerCase() !== "unix" && t.toLowerCase() !== "inet") msg.fatal(`unsupported transport type: ${t}`);
  }
  if (msg.verbose && process.env.GENERATION !== undefined)
    msg.info(`process generation: ${process.env.GENERATION} (${o.generation.toString(8)})`);

  // 5. Pre-jail work, then the jail.
  if (!own) {
    try {
      process.chdir(queueDir);
    } catch (e) {
      msg.fatal(`chdir("${queueDir}"): ${sysText(e)}`);
    }
  }
  let listenFd = -1;
  if (own) listenFd = bindOwnSocket(o.listenPath!, runAs);
  preloadLibc();
  // Local time (maillog_file stamps) needs /etc/localtime, which a chroot
  // hides: read it now then. Without a jail it loads on first use, which
  // keeps ~4 ms of time zone set-up off every start.
  if (o.chroot) new Date().getTimezoneOffset();
  const approved = config.get(o.serviceName === SERVICE_WRITE ? "proxy_write_maps" : "proxy_read_maps");
  await prepareTables(approved, { jailed: o.chroot });
  // Statistics files of an instance live under its queue directory (seen
  // inside the jail too); the directory is made for mail_owner now, as root.
  const statusPlace = underMaster && stats.enabled ? prepareStatusPlace(queueDir, mailOwner, o.chroot) : undefined;
  const root = o.chroot ? queueDir : undefined;
  chrootUid(root, runAs);

  if (root) loggingEnteredJail(root);

  // 6. Post-jail: the service.
  if (o.serviceName !== SERVICE_READ && o.serviceName !== SERVICE_WRITE)
    msg.fatal(`service name must be one of ${SERVICE_READ} or ${SERVICE_READ}`);
  const service = createService({
    serviceName: o.serviceName,
    config,
    // Postfix names the client stream "<service> socket"; stdin has no name.
    streamName: o.standalone ? "unknown_stream" : `${o.serviceName} socket`,
  });
  if (o.serviceName === SERVICE_WRITE) setsid(); // never killed by master's signals mid-update
  if (o.args.length > 0) msg.fatal(`unexpected command-line argument: ${o.args[0]}`);

  // 7. Serve.
  if (o.standalone) {
    await serveOneRequest(service);
    return { config, service };
  }
  startStatistics({ settings: stats, service: o.serviceName, statusDir: statusPlace?.dir, owner: statusPlace?.owner, startTicks: statusPlace?.startTicks ?? "" });
  let server: MultiServer | undefined;
  const status = underMaster ? new MasterStatus(o.generation, () => server?.masterGone()) : undefined;
  server = new MultiServer({
    service,
    params,
    serviceName: o.serviceName,
    idleExit: underMaster || o.maxIdleGiven,
    useExit: underMaster || o.maxUseGiven,
    status,
  });
  if (own) server.listenFd(listenFd);
  else for (let fd = MASTER_LISTEN_FD; fd < MASTER_LISTEN_FD + o.socketCount; fd++) server.listenFd(fd);
  await server.start();
  if (own) msg.info(`listening on ${o.listenPath} as service ${o.serviceName}`);
  return { config, service, server };
}

/** Bind --listen's socket before any chroot (replacing a stale socket file): mode 0600, owned by the serving user. */
function bindOwnSocket(path: string, user: string | undefined): number {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // not there: fine
  }
  const fd = unixListen(path);
  if (fd < 0) return msg.fatal(`bind ${path}: ${strerror(-fd)}`);
  // Only the serving user (and root) may connect until an administrator says otherwise.
  chmodSync(path, 0o600);
  if (user !== undefined) {
    const pw = getpwnam(user);
    if (!pw) return msg.fatal(`unknown user: ${user}`);
    try {
      chownSync(path, pw.uid, pw.gid);
    } catch (e) {
      msg.fatal(`chown ${path}: ${sysText(e)}`);
    }
  }
  return fd;
}
