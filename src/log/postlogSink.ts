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
 * is tried relative to the jail (enterJail).
 *
 * The event loop never waits for the logger, yet no line is lost to a busy
 * postlogd: the kernel queues only a few datagrams per socket
 * (net.unix.max_dgram_qlen, 10 on Linux), and a burst of warnings (a table
 * file with many bad lines) is longer than that. The C client blocks until
 * postlogd takes each line; ours keeps the lines that would block, in order,
 * and sends them as postlogd catches up (retried every millisecond), up to
 * QUEUE_LIMIT lines; beyond that a line is dropped and the number dropped is
 * logged once the queue drains. At exit, queued lines get up to a second.
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
const EAGAIN = 11;
/** Lines held while postlogd is behind (about 2 MB at most). */
const QUEUE_LIMIT = 1000;
/** How long exit waits for postlogd to take queued lines. */
const EXIT_FLUSH_MS = 1000;

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
  const queue: Buffer[] = [];
  let dropped = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connect = () => {
    if (fd < 0) {
      const r = unixDgramConnect(path);
      if (r >= 0) fd = r;
    }
    return fd >= 0;
  };
  /** Send one record: true when it is gone (sent, or lost with the socket), false when postlogd is busy. */
  const sendOne = (data: Buffer): boolean => {
    if (!connect()) return true;
    let n = sendNow(fd, data);
    if (n === -ECONNREFUSED || n === -ENOTCONN) {
      // postlogd was restarted and bound a new socket: reconnect once.
      closeFd(fd);
      fd = -1;
      if (!connect()) return true;
      n = sendNow(fd, data);
    }
    return n !== -EAGAIN;
  };
  const record = (severity: Parameters<LogSink["write"]>[0], line: string) =>
    Buffer.from(postlogRecord(o, process.pid, severity, line, new Date()), "latin1");
  const flush = (): boolean => {
    while (queue.length > 0) {
      if (!sendOne(queue[0])) return false;
      queue.shift();
    }
    if (dropped > 0) {
      const lost = dropped;
      dropped = 0;
      queue.push(record("warning", `${lost} log lines lost: postlogd did not keep up`));
      return flush();
    }
    return true;
  };
  const retry = () => {
    timer = undefined;
    if (!flush()) schedule();
  };
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(retry, 1);
    // A pending log line must not keep an idle daemon alive: exit flushes.
    timer.unref?.();
  };
  process.once("exit", () => {
    const end = Date.now() + EXIT_FLUSH_MS;
    while (!flush() && Date.now() < end) Bun.sleepSync(1);
  });
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
      // Built now: the time stamp is when it happened, not when it was sent.
      const data = record(severity, line);
      if (queue.length === 0 && sendOne(data)) return;
      if (queue.length >= QUEUE_LIMIT) {
        dropped++;
        return;
      }
      queue.push(data);
      schedule();
    },
  };
}
