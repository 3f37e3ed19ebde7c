/**
 * syslogSink.ts - log lines through syslog(3), as Postfix's msg_syslog does.
 *
 * openlog(ident, LOG_PID|LOG_NDELAY, facility): NDELAY connects to /dev/log
 * at once, so logging still works after the process enters a chroot jail.
 * The ident is "<syslog_name>/<process name>" (postfix/proxymap); syslog adds
 * "[pid]". Severities map as in Postfix: info -> LOG_INFO, warning ->
 * LOG_WARNING, error -> LOG_ERR, fatal and panic -> LOG_CRIT. The text after
 * the "severity: " prefix is cut at 2000 bytes, like Postfix's MSG_SYSLOG_RECLEN.
 *
 * Reads: nothing. Logs: what it is given.
 */
import type { LogSink, Severity } from "./msg";
import { printable } from "./printable";
import { openlog, syslog, LOG_PID, LOG_NDELAY, LOG_INFO, LOG_WARNING, LOG_ERR, LOG_CRIT } from "../sys/libc";

/** Longest text Postfix hands to syslog, after the severity prefix. */
export const RECORD_LIMIT = 2000;

const LEVEL: Record<Severity, number> = {
  info: LOG_INFO,
  warning: LOG_WARNING,
  error: LOG_ERR,
  fatal: LOG_CRIT,
  panic: LOG_CRIT,
};

/** Cut the text part of "severity: text" (or of an info line) to the record limit. */
export function limitRecord(severity: Severity, line: string): string {
  const prefix = severity === "info" ? 0 : severity.length + 2;
  return line.length - prefix > RECORD_LIMIT ? line.slice(0, prefix + RECORD_LIMIT) : line;
}

export function syslogSink(ident: string, facility: number, utf8: boolean): LogSink {
  openlog(ident, LOG_PID | LOG_NDELAY, facility);
  return {
    write(severity, line) {
      syslog(facility | LEVEL[severity], printable(limitRecord(severity, line), utf8));
    },
  };
}
