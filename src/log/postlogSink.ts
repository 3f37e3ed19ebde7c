/**
 * postlogSink.ts - log lines to postlogd(8), as Postfix daemons do when
 * maillog_file is set (Postfix's msg_logger client).
 *
 * Each line is one datagram on a UNIX datagram socket connected to
 * $queue_directory/public/$postlog_service_name, formatted the way postlogd
 * expects to strip it:
 *     "Mon DD HH:MM:SS host progname[pid]: severity: text"
 * (local time, C-locale month, the first label of myhostname, no severity for
 * info; the text cut at 2000 bytes). Bun has no datagram UNIX socket, so the
 * socket comes from libc through bun:ffi.
 *
 * The socket is connected at once (before any chroot). If postlogd is not
 * there yet, each line tries to connect again; inside a chroot jail the path
 * is tried relative to the jail (enterJail). A line that cannot be sent
 * without blocking is dropped: the event loop never waits for the logger.
 *
 * Reads: nothing. Logs: what it is given.
 */
import type { LogSink } from "./msg";
import { printable } from "./printable";
import { limitRecord } from "./syslogSink";
import { unixDgramConnect, sendNow, closeFd } from "../sys/libc";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const ECONNREFUSED = 111;
const ENOTCONN = 107;

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** strftime("%b %d %H:%M:%S ") in the C locale, local time. */
export function postlogStamp(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} `;
}

export interface PostlogOptions {
  /** "postfix/proxymap" */
  progname: string;
  /** myhostname; only the first label is used ("amnesiac" when empty, like Postfix). */
  hostname: string;
  /** $queue_directory/public/$postlog_service_name */
  path: string;
  /** Keep 8-bit UTF-8 (smtputf8_enable). */
  utf8: boolean;
}

export interface PostlogSink extends LogSink {
  /** The process is now chrooted to root: reconnect relative to it. */
  enterJail(root: string): void;
  /** True when the socket is connected. */
  readonly connected: boolean;
}

/** The datagram Postfix's msg_logger sends for one line. */
export function postlogRecord(o: PostlogOptions, pid: number, severity: Parameters<LogSink["write"]>[0], line: string, now: Date): string {
  const host = (o.hostname || "amnesiac").split(".")[0];
  return `${postlogStamp(now)}${host} ${o.progname}[${pid}]: ${printable(limitRecord(severity, line), o.utf8)}`;
}

export function postlogSink(o: PostlogOptions): PostlogSink {
  let path = o.path;
  let fd = -1;
  const connect = () => {
    if (fd < 0) {
      const r = unixDgramConnect(path);
      if (r >= 0) fd = r;
    }
    return fd >= 0;
  };
  connect();
  return {
    get connected() {
      return fd >= 0;
    },
    enterJail(root: string) {
      const r = root.replace(/\/+$/, "");
      if (r && path.startsWith(r + "/")) path = path.slice(r.length);
    },
    write(severity, line) {
      if (!connect()) return;
      const data = Buffer.from(postlogRecord(o, process.pid, severity, line, new Date()), "latin1");
      const n = sendNow(fd, data);
      if (n === -ECONNREFUSED || n === -ENOTCONN) {
        // postlogd was restarted and bound a new socket: reconnect once.
        closeFd(fd);
        fd = -1;
        if (connect()) sendNow(fd, data);
      }
    },
  };
}
