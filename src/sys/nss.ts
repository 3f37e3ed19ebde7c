/**
 * nss.ts - the system's user and group databases through libc (bun:ffi):
 * getpwnam(3), getgrnam(3), getpwuid(3), getgrgid(3), so answers come from
 * NSS (files, LDAP, sss, ... per nsswitch.conf) exactly as they do for
 * Postfix's unix: table. /etc/passwd is never parsed here.
 *
 * Strings are byte strings (latin1): names and fields pass through as the
 * bytes libc holds. Layouts: struct passwd and struct group of glibc on
 * LP64 Linux (x86_64, aarch64).
 *
 * The reentrant forms (getpwnam_r, ...) are used, each call with buffers of
 * its own, so that several threads may ask at once: the unix table makes
 * these calls on worker threads (src/tables/unix/jobs.ts), because a slow
 * NSS source (LDAP, sssd) would otherwise stall every client of the
 * process, where the reference stalls one process.
 *
 * Reads: whatever NSS reads. Logs nothing.
 */
import { FFIType, ptr, read, toBuffer, type Pointer } from "bun:ffi";
import { libcSymbols } from "./libc";

export interface PasswdEntry {
  name: string;
  passwd: string;
  uid: number;
  gid: number;
  gecos: string;
  dir: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  passwd: string;
  gid: number;
  members: string[];
}

const lib = libcSymbols({
  getpwnam_r: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  getgrnam_r: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  getpwuid_r: { args: [FFIType.u32, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  getgrgid_r: { args: [FFIType.u32, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  strlen: { args: [FFIType.ptr], returns: FFIType.u64 },
});

/** The C string at p as a byte string; "" for a null pointer. */
function cstr(p: Pointer | null): string {
  if (!p) return "";
  const n = Number(lib().strlen(p));
  return n === 0 ? "" : toBuffer(p, 0, n).toString("latin1");
}

function keyBuffer(key: string): Buffer {
  return Buffer.from(key + "\0", "latin1");
}

/**
 * The error number of the last lookup made here on this thread, as errno
 * is after the non-reentrant call (glibc sets it to the _r call's result:
 * 0 when the entry simply does not exist).
 */
let lastError = 0;

/** errno as the last lookup left it (see lastError). */
export function lastErrno(): number {
  return lastError;
}


function passwdAt(p: Pointer): PasswdEntry {
  // struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; gid_t pw_gid;
  //                 char *pw_gecos; char *pw_dir; char *pw_shell; }
  return {
    name: cstr(read.ptr(p, 0) as Pointer),
    passwd: cstr(read.ptr(p, 8) as Pointer),
    uid: read.u32(p, 16),
    gid: read.u32(p, 20),
    gecos: cstr(read.ptr(p, 24) as Pointer),
    dir: cstr(read.ptr(p, 32) as Pointer),
    shell: cstr(read.ptr(p, 40) as Pointer),
  };
}

function groupAt(p: Pointer): GroupEntry {
  // struct group { char *gr_name; char *gr_passwd; gid_t gr_gid; char **gr_mem; }
  const members: string[] = [];
  const mem = read.ptr(p, 24) as Pointer;
  if (mem) {
    for (let off = 0; ; off += 8) {
      const m = read.ptr(mem, off) as Pointer;
      if (!m) break;
      members.push(cstr(m));
    }
  }
  return { name: cstr(read.ptr(p, 0) as Pointer), passwd: cstr(read.ptr(p, 8) as Pointer), gid: read.u32(p, 16), members };
}

const ERANGE = 34;
/** Start size of the string buffer (glibc's _SC_GETPW_R_SIZE_MAX); doubled on ERANGE. */
const FIRST_BUFFER = 1024;
/** Give up growing there: no sane entry is larger. */
const LAST_BUFFER = 64 * 1024 * 1024;

type ReentrantCall = (out: Pointer, buf: Pointer, size: number, result: Pointer) => number;

/**
 * Run one *_r call with fresh buffers (grown while it says ERANGE); the
 * entry's address, or null when there is none (lastError tells why).
 */
function reentrant(structSize: number, call: ReentrantCall, read: (p: Pointer) => PasswdEntry | GroupEntry): PasswdEntry | GroupEntry | undefined {
  const out = new Uint8Array(structSize);
  const result = new BigUint64Array(1);
  for (let size = FIRST_BUFFER; ; size *= 2) {
    const buf = new Uint8Array(size);
    const rc = call(ptr(out), ptr(buf), size, ptr(result));
    if (rc === ERANGE && size < LAST_BUFFER) continue;
    lastError = rc;
    // The entry's strings point into buf, which lives until read() returns.
    return rc === 0 && result[0] !== 0n ? read(ptr(out)) : undefined;
  }
}

/** getpwnam(3); undefined when there is no such user (or NSS failed: see lastErrno). */
export function getpwnam(name: string): PasswdEntry | undefined {
  const k = keyBuffer(name);
  return reentrant(48, (o, b, n, r) => lib().getpwnam_r(ptr(k), o, b, n, r), passwdAt) as PasswdEntry | undefined;
}

/** getgrnam(3); undefined when there is no such group. */
export function getgrnam(name: string): GroupEntry | undefined {
  const k = keyBuffer(name);
  return reentrant(32, (o, b, n, r) => lib().getgrnam_r(ptr(k), o, b, n, r), groupAt) as GroupEntry | undefined;
}

/** getpwuid(3); undefined when absent. */
export function getpwuid(uid: number): PasswdEntry | undefined {
  return reentrant(48, (o, b, n, r) => lib().getpwuid_r(uid, o, b, n, r), passwdAt) as PasswdEntry | undefined;
}

/** getgrgid(3); undefined when absent. */
export function getgrgid(gid: number): GroupEntry | undefined {
  return reentrant(32, (o, b, n, r) => lib().getgrgid_r(gid, o, b, n, r), groupAt) as GroupEntry | undefined;
}
