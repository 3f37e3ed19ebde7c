/**
 * libc.ts - the few C library calls that Bun and Node do not offer, through bun:ffi.
 *
 * What: chroot(2), setsid(2), alarm(2), isatty(3), getpwnam(3)/getpwuid(3), syslog(3),
 * UNIX-domain datagram and listening sockets (socket/bind/listen/connect/send),
 * close(2), fcntl(2) F_DUPFD_CLOEXEC, read-only mmap(2)/munmap(2), and errno/strerror for Postfix-style
 * "%m" messages.
 *
 * Why by hand: Bun has no chroot, no setsid, no syslog and no UNIX datagram
 * socket; these are thin wrappers with no logic of their own.
 *
 * The library is opened lazily on first use, and must be opened before the
 * process enters a chroot jail (libc.so.6 is not inside the jail):
 * preloadLibc() does that, the server skeleton calls it before chroot.
 *
 * This is the one place that names the C library: modules with C calls of
 * their own (NSS, POSIX regex, inet_pton, fcntl and flock locks) bind their
 * symbols through libcSymbols(), lazily, so that a process binds only what
 * its tables use.
 *
 * Reads: nothing. Logs: nothing (callers turn errors into log lines).
 */
import { dlopen, read, toArrayBuffer, CString, type FFIFunction, type Pointer } from "bun:ffi";

const LIBC = "libc.so.6";

/**
 * A getter for C library functions, bound on its first call (bun:ffi
 * binds each set once). Call it before a chroot if the calls are needed
 * inside the jail.
 */
export function libcSymbols<const S extends Record<string, FFIFunction>>(symbols: S): () => ReturnType<typeof dlopen<S>>["symbols"] {
  let bound: ReturnType<typeof dlopen<S>>["symbols"] | undefined;
  return () => (bound ??= dlopen(LIBC, symbols).symbols);
}

const symbols = {
  chroot: { args: ["ptr"], returns: "i32" },
  setsid: { args: [], returns: "i32" },
  alarm: { args: ["u32"], returns: "u32" },
  getpwnam: { args: ["ptr"], returns: "ptr" },
  getpwuid: { args: ["u32"], returns: "ptr" },
  openlog: { args: ["ptr", "i32", "i32"], returns: "void" },
  // syslog(3) is variadic; it is always called with the fixed format "%s".
  syslog: { args: ["i32", "ptr", "ptr"], returns: "void" },
  closelog: { args: [], returns: "void" },
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  send: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  // fcntl(2) is variadic; only called here with an int third argument.
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  getppid: { args: [], returns: "i32" },
  isatty: { args: ["i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "ptr" },
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "ptr" },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>;
let lib: Lib | undefined;

function libc(): Lib["symbols"] {
  if (!lib) lib = dlopen(LIBC, symbols);
  return lib.symbols;
}

/** Open libc now (before chroot: the jail has no libc.so.6). */
export function preloadLibc(): void {
  libc();
}

/** A NUL-terminated copy of a byte string (char codes 0..255). */
function cstr(s: string): Buffer {
  return Buffer.from(s + "\0", "latin1");
}

/** errno of the last failed call (read at once, before anything else runs). */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

/** strerror(3) text, as Postfix's %m prints it. */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p ? new CString(p).toString() : `Unknown error ${code}`;
}

/** 0 or the errno of the failure. */
export function chroot(dir: string): number {
  return libc().chroot(cstr(dir)) < 0 ? errno() : 0;
}

/** 0 or the errno of the failure (EPERM when already a group leader). */
export function setsid(): number {
  return libc().setsid() < 0 ? errno() : 0;
}

/** Arm (or with 0 cancel) SIGALRM; returns the seconds left on the old alarm. */
export function alarm(seconds: number): number {
  return libc().alarm(seconds);
}

export function getppid(): number {
  return libc().getppid();
}

/** isatty(3); here rather than node:tty, whose module costs a start-up several milliseconds. */
export function isatty(fd: number): boolean {
  return libc().isatty(fd) === 1;
}

export interface Passwd {
  name: string;
  uid: number;
  gid: number;
  dir: string;
  shell: string;
}

// struct passwd on 64-bit Linux: name@0, passwd@8, uid@16, gid@20, gecos@24, dir@32, shell@40.
function passwdAt(p: Pointer | null): Passwd | undefined {
  if (!p) return undefined;
  const str = (off: number) => {
    const q = read.ptr(p, off);
    return q ? new CString(q as Pointer).toString() : "";
  };
  return { name: str(0), uid: read.u32(p, 16), gid: read.u32(p, 20), dir: str(32), shell: str(40) };
}

/** getpwnam(3) through the system's NSS. */
export function getpwnam(name: string): Passwd | undefined {
  return passwdAt(libc().getpwnam(cstr(name)) as Pointer | null);
}

/** getpwuid(3) through the system's NSS. */
export function getpwuid(uid: number): Passwd | undefined {
  return passwdAt(libc().getpwuid(uid) as Pointer | null);
}

// syslog(3) keeps the ident pointer: the buffer must outlive the process.
let syslogIdent: Buffer | undefined;
const percentS = cstr("%s");

export const LOG_PID = 0x01;
export const LOG_NDELAY = 0x08;
export const LOG_CRIT = 2;
export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;

/** Facility names as Postfix's syslog_facility accepts them (Linux values). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  auth: 4 << 3,
  authpriv: 10 << 3,
  cron: 9 << 3,
  daemon: 3 << 3,
  ftp: 11 << 3,
  kern: 0 << 3,
  lpr: 6 << 3,
  mail: 2 << 3,
  news: 7 << 3,
  syslog: 5 << 3,
  user: 1 << 3,
  uucp: 8 << 3,
  local0: 16 << 3,
  local1: 17 << 3,
  local2: 18 << 3,
  local3: 19 << 3,
  local4: 20 << 3,
  local5: 21 << 3,
  local6: 22 << 3,
  local7: 23 << 3,
};

export function openlog(ident: string, option: number, facility: number): void {
  syslogIdent = cstr(ident);
  libc().openlog(syslogIdent, option, facility);
}

/** syslog(priority, "%s", text): text is a byte string. */
export function syslog(priority: number, text: string): void {
  libc().syslog(priority, percentS, cstr(text));
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;

/** struct sockaddr_un and its length, or undefined when the path is too long. */
function sockaddrUn(path: string): [Buffer, number] | undefined {
  const bytes = Buffer.from(path, "latin1");
  if (bytes.length >= SUN_PATH_MAX) return undefined;
  const sa = Buffer.alloc(2 + SUN_PATH_MAX);
  sa.writeUInt16LE(AF_UNIX, 0); // sa_family_t is host order; x86_64 and arm64 are little-endian
  bytes.copy(sa, 2);
  return [sa, 2 + bytes.length + 1];
}

const ENAMETOOLONG = 36;

/**
 * A UNIX socket of `type` for `path`, made ready by `use` (connect, bind,
 * listen; false on failure, errno set): its fd, or -errno with the socket
 * closed again.
 */
function unixSocket(path: string, type: number, use: (c: Lib["symbols"], fd: number, addr: Buffer, len: number) => boolean): number {
  const sa = sockaddrUn(path);
  if (!sa) return -ENAMETOOLONG;
  const c = libc();
  const fd = c.socket(AF_UNIX, type, 0);
  if (fd < 0) return -errno();
  if (!use(c, fd, sa[0], sa[1])) {
    const e = errno();
    c.close(fd);
    return -e;
  }
  return fd;
}

/** A connected UNIX datagram socket (close-on-exec), or -errno. */
export function unixDgramConnect(path: string): number {
  return unixSocket(path, SOCK_DGRAM | SOCK_CLOEXEC, (c, fd, sa, len) => c.connect(fd, sa, len) >= 0);
}

/** A listening UNIX stream socket bound to path (not close-on-exec: it is meant to be inherited), or -errno. */
export function unixListen(path: string, backlog = 100): number {
  return unixSocket(path, SOCK_STREAM, (c, fd, sa, len) => c.bind(fd, sa, len) >= 0 && c.listen(fd, backlog) >= 0);
}

/** A UNIX datagram socket bound to path (a postlogd stand-in for tests), or -errno. */
export function unixDgramBind(path: string): number {
  return unixSocket(path, SOCK_DGRAM | SOCK_CLOEXEC, (c, fd, sa, len) => c.bind(fd, sa, len) >= 0);
}

/** recv(2) one datagram without blocking: its bytes, or undefined when none is waiting. */
export function recvNow(fd: number, max = 65536): Uint8Array | undefined {
  const buf = new Uint8Array(max);
  const n = Number(libc().recv(fd, buf, max, MSG_DONTWAIT));
  return n < 0 ? undefined : buf.subarray(0, n);
}

/** send(2) without blocking and without SIGPIPE: bytes sent, or -errno. */
export function sendNow(fd: number, data: Uint8Array): number {
  const n = Number(libc().send(fd, data, data.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  return n < 0 ? -errno() : n;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

const F_DUPFD_CLOEXEC = 1030;

/** A close-on-exec duplicate of fd (the same open socket or file), or -errno. */
export function dupFd(fd: number): number {
  const n = libc().fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return n < 0 ? -errno() : n;
}

const PROT_READ = 1;
const MAP_SHARED = 1;

/** A read-only mapping of a whole file; unmap() ends it (the view must not be used after). */
export interface FileMap {
  view: Buffer;
  unmap(): void;
}

/**
 * mmap(2) an open file read-only and shared, as tinycdb maps a cdb file:
 * lookups then cost no system call. (Bun.mmap opens the file O_RDWR, which a
 * daemon without write permission cannot.) undefined when mapping fails.
 */
export function mapFileReadOnly(fd: number, size: number): FileMap | undefined {
  if (size <= 0) return undefined;
  const c = libc();
  const p = c.mmap(null, size, PROT_READ, MAP_SHARED, fd, 0);
  // MAP_FAILED is (void *)-1: as a JavaScript number, 2^64 (or null/0 on oddities).
  if (!p || (p as number) >= 2 ** 63) return undefined;
  const view = Buffer.from(toArrayBuffer(p, 0, size));
  let mapped = true;
  return {
    view,
    unmap() {
      if (mapped) c.munmap(p, size);
      mapped = false;
    },
  };
}
