/**
 * nss.ts - the system's user and group databases through libc (bun:ffi):
 * getpwnam(3), getgrnam(3), getpwuid(3), getgrgid(3), so answers come from
 * NSS (files, LDAP, sss, ... per nsswitch.conf) exactly as they do for
 * Postfix's unix: table. /etc/passwd is never parsed here. Also strerror(3)
 * of the same libc, for the reference's "%m" texts.
 *
 * Strings are byte strings (latin1): names and fields pass through as the
 * bytes libc holds. Layouts: struct passwd and struct group of glibc on
 * LP64 Linux (x86_64, aarch64).
 *
 * Calls are synchronous, as in the reference (a slow NSS backend stalls the
 * process there too). Reads: whatever NSS reads. Logs nothing.
 */
import { dlopen, FFIType, ptr, read, toArrayBuffer, toBuffer, type Pointer } from "bun:ffi";

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

type Libc = ReturnType<typeof openLibc>;

function openLibc() {
  return dlopen("libc.so.6", {
    getpwnam: { args: [FFIType.ptr], returns: FFIType.ptr },
    getgrnam: { args: [FFIType.ptr], returns: FFIType.ptr },
    getpwuid: { args: [FFIType.u32], returns: FFIType.ptr },
    getgrgid: { args: [FFIType.u32], returns: FFIType.ptr },
    strerror: { args: [FFIType.i32], returns: FFIType.ptr },
    strlen: { args: [FFIType.ptr], returns: FFIType.u64 },
    __errno_location: { args: [], returns: FFIType.ptr },
  }).symbols;
}

let libc: Libc | undefined;
let errnoCell: Int32Array | undefined;

function lib(): Libc {
  if (!libc) {
    libc = openLibc();
    const p = libc.__errno_location();
    if (p) errnoCell = new Int32Array(toArrayBuffer(p, 0, 4));
  }
  return libc;
}

/** The C string at p as a byte string; "" for a null pointer. */
function cstr(p: Pointer | null): string {
  if (!p) return "";
  const n = Number(lib().strlen(p));
  return n === 0 ? "" : toBuffer(p, 0, n).toString("latin1");
}

function keyBuffer(key: string): Buffer {
  return Buffer.from(key + "\0", "latin1");
}

/** Clear errno before a call whose failure is told only through errno. */
function clearErrno(): void {
  if (errnoCell) errnoCell[0] = 0;
}

/** errno as left by the last libc call made here. */
export function lastErrno(): number {
  return errnoCell ? errnoCell[0] : 0;
}

/** strerror(3) text of an errno value. */
export function strerror(errnum: number): string {
  return cstr(lib().strerror(errnum) as Pointer | null);
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

/** getpwnam(3); undefined when there is no such user (or NSS failed: see lastErrno). */
export function getpwnam(name: string): PasswdEntry | undefined {
  const k = keyBuffer(name);
  clearErrno();
  const p = lib().getpwnam(ptr(k)) as Pointer | null;
  return p ? passwdAt(p) : undefined;
}

/** getgrnam(3); undefined when there is no such group. */
export function getgrnam(name: string): GroupEntry | undefined {
  const k = keyBuffer(name);
  clearErrno();
  const p = lib().getgrnam(ptr(k)) as Pointer | null;
  return p ? groupAt(p) : undefined;
}

/** getpwuid(3); undefined when absent. errno is cleared first, as Postfix does. */
export function getpwuid(uid: number): PasswdEntry | undefined {
  clearErrno();
  const p = lib().getpwuid(uid) as Pointer | null;
  return p ? passwdAt(p) : undefined;
}

/** getgrgid(3); undefined when absent. */
export function getgrgid(gid: number): GroupEntry | undefined {
  clearErrno();
  const p = lib().getgrgid(gid) as Pointer | null;
  return p ? groupAt(p) : undefined;
}
