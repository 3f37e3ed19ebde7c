/**
 * setup.ts - choose where log lines go, once at start-up (Postfix's
 * maillog_client_init), and install those sinks into msg.ts.
 *
 * Exactly one of syslog or postlogd gets the lines (never both: postlogd
 * itself may log to syslog), plus standard error with -V.
 *   - before main.cf is read: postlogd when POSTLOG_SERVICE is in the
 *     environment (POSTLOG_HOSTNAME for the host name), else syslog with
 *     facility mail; the tag comes from MAIL_LOGTAG or "postfix".
 *   - after main.cf: postlogd when maillog_file is set (its value must start
 *     with one of maillog_file_prefixes, else fatal as in Postfix), else
 *     syslog with syslog_facility; the tag is syslog_name + "/" + process name.
 * "none" sends nothing to syslog/postlogd (the --listen and --demo modes log
 * to standard error only).
 *
 * Reads: the environment (MAIL_LOGTAG, POSTLOG_SERVICE, POSTLOG_HOSTNAME).
 * Logs: fatal on a maillog_file outside maillog_file_prefixes.
 */
import { msg, setLogSinks, type LogSink } from "./msg";
import { stderrSink } from "./stderrSink";
import { syslogSink } from "./syslogSink";
import { postlogSink, type PostlogSink } from "./postlogSink";
import { SYSLOG_FACILITIES } from "../sys/libc";

export interface LogChoice {
  /** syslog_name + "/" + process name, e.g. "postfix/proxymap". */
  tag: string;
  /** -V: also standard error. */
  stderr: boolean;
  /** smtputf8_enable: keep UTF-8 in log lines. */
  utf8: boolean;
  /** Where lines go besides standard error. */
  channel:
    | { kind: "syslog"; facility: number }
    | { kind: "postlog"; path: string; hostname: string }
    | { kind: "none" };
}

let jailAware: PostlogSink | undefined;

/** Install the sinks for a choice. */
export function applyLogChoice(c: LogChoice): void {
  const sinks: LogSink[] = [];
  jailAware = undefined;
  if (c.channel.kind === "syslog") {
    sinks.push(syslogSink(c.tag, c.channel.facility, c.utf8));
  } else if (c.channel.kind === "postlog") {
    jailAware = postlogSink({ progname: c.tag, hostname: c.channel.hostname, path: c.channel.path, utf8: c.utf8 });
    sinks.push(jailAware);
  }
  if (c.stderr) sinks.push(stderrSink(c.tag, c.utf8));
  setLogSinks(sinks);
}

/** The logging Postfix daemons use before they read main.cf. */
export function earlyLogChoice(procname: string, stderr: boolean, useSyslog: boolean, env = process.env): LogChoice {
  const tag = `${env.MAIL_LOGTAG || "postfix"}/${procname}`;
  const service = env.POSTLOG_SERVICE;
  let channel: LogChoice["channel"] = { kind: "none" };
  if (useSyslog) {
    channel = service
      ? { kind: "postlog", path: service, hostname: env.POSTLOG_HOSTNAME || "" }
      : { kind: "syslog", facility: SYSLOG_FACILITIES.mail };
  }
  return { tag, stderr, utf8: true, channel };
}

export interface ConfiguredLogging {
  procname: string;
  syslogName: string;
  syslogFacility: string;
  maillogFile: string;
  maillogFilePrefixes: string;
  queueDirectory: string;
  postlogServiceName: string;
  myhostname: string;
  utf8: boolean;
  /** "main.cf" location for error messages, e.g. /etc/postfix/main.cf. */
  mainCfPath: string;
}

/** The logging Postfix daemons use once main.cf and -o are known (fatal on bad values). */
export function configuredLogChoice(p: ConfiguredLogging, stderr: boolean, useSyslog: boolean): LogChoice {
  const facility = SYSLOG_FACILITIES[p.syslogFacility];
  if (facility === undefined)
    msg.fatal(`file ${p.mainCfPath}: parameter syslog_facility: unrecognized value: ${p.syslogFacility}`);
  const tag = `${p.syslogName}/${p.procname}`;
  let channel: LogChoice["channel"] = { kind: "none" };
  if (useSyslog) {
    if (p.maillogFile) {
      const prefixes = p.maillogFilePrefixes.split(/[, \t\r\n]+/).filter(Boolean);
      if (!prefixes.some((x) => p.maillogFile.startsWith(x)))
        msg.fatal(
          `maillog_file value '${p.maillogFile}' does not match any prefix in maillog_file_prefixes`,
        );
      channel = {
        kind: "postlog",
        path: `${p.queueDirectory}/public/${p.postlogServiceName}`,
        hostname: p.myhostname,
      };
    } else {
      channel = { kind: "syslog", facility };
    }
  }
  return { tag, stderr, utf8: p.utf8, channel };
}

/** After chroot: let the postlogd client reconnect relative to the jail. */
export function loggingEnteredJail(root: string): void {
  jailAware?.enterJail(root);
}
