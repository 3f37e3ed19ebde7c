/**
 * embeddedAddon.ts - where the compiled executable loads a native addon it
 * carries (lmdb's), instead of where Bun would put it.
 *
 * Left to itself, Bun writes an embedded .node file to $TMPDIR (/tmp) at
 * every start and dlopen()s it from there: as root, in a world-writable
 * directory, on every start, and not at all where /tmp is mounted noexec.
 * build.ts embeds the addon as a plain file instead, named with a hash of its
 * bytes, and lmdb reaches it through loadEmbeddedAddon(), which loads a copy
 * from the first of these places that holds it:
 *
 *   1. PACKAGE_DIR (/usr/lib/proxymap-bun/native): the Debian package
 *      installs the file there (scripts/package.ts, from --install-native);
 *   2. the private directory beside the executable (its real path, so a
 *      symbolic link in Postfix's daemon directory does not count):
 *      DIR/proxymap-bun.native (not for the package's own executable, whose
 *      directory belongs to dpkg: there only 1 counts). If it does not hold the file yet and the
 *      process runs as root (start-up, before the privilege drop), it is
 *      made once: directory mode 0755, file mode 0644, both root's, the
 *      file written under a temporary name and renamed into place. Later
 *      starts only read.
 * A copy is used only when it is trustworthy: a regular file (not a
 * symbolic link) of the embedded size, owned by root (or by the user running
 * the program, for a copy of one's own), writable by nobody else, in a
 * directory of which it and every directory above it are owned by root (or
 * that user) and writable by nobody else. So never /tmp, nor anything below
 * a world-writable directory.
 *
 * --install-native DIR (main.ts) writes the embedded files into DIR, for a
 * package or an administrator who prepares the directory by hand.
 *
 * Reads: the embedded file, the candidate directories. Writes: the private
 * directory, once. Logs nothing: failures are thrown with the reasons, and
 * surface as the lmdb table's open error and in --self-test.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { EMBEDDED, type EmbeddedFile } from "./embeddedFiles";

export type { EmbeddedFile };

/** Where the Debian package installs the native parts. */
export const PACKAGE_DIR = "/usr/lib/proxymap-bun/native";
/** Where it installs the executable. */
const PACKAGE_EXE_DIR = dirname(PACKAGE_DIR);
/** The private directory's name, beside the executable. */
export const PRIVATE_DIR_NAME = "proxymap-bun.native";


/** The name a copy of f has in a native directory. */
export function installedName(f: EmbeddedFile): string {
  return `${f.name}-${f.hash}.node`;
}

/** Where the last successful load found each file (for --self-test). */
export const loadedFrom = new Map<string, string>();

function uid(): number {
  return process.geteuid?.() ?? 0;
}

/** Owned by root or by whoever runs this, writable by nobody else. */
function trustedOwner(st: { uid: number; mode: number }): boolean {
  return (st.uid === 0 || st.uid === uid()) && (st.mode & 0o022) === 0;
}

/**
 * Why dir (and every directory above it) cannot be trusted, or undefined
 * when it can. A world-writable directory with the sticky bit (/tmp) is
 * acceptable above a trusted one: there nobody but its owner (or root) can
 * rename or remove that trusted entry, so the path cannot be swapped.
 */
export function untrustedDirectory(dir: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (e) {
    return `${dir}: ${(e as Error).message}`;
  }
  for (let d = real; ; d = dirname(d)) {
    const st = lstatSync(d);
    if (!st.isDirectory()) return `${d} is not a directory`;
    const stickyAbove = d !== real && (st.mode & 0o1000) !== 0;
    if (!trustedOwner(st) && !stickyAbove) return `${d} is ${st.mode & 0o002 ? "world-writable" : st.mode & 0o020 ? "group-writable" : `owned by uid ${st.uid}`}`;
    if (d === "/") return undefined;
  }
}

/** Why the copy at path is not usable, or undefined when it is. */
function untrustedFile(path: string, size: number): string | undefined {
  let fd = -1;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) return `${path} is not a regular file`;
    if (!trustedOwner(st)) return `${path} is writable by others or owned by uid ${st.uid}`;
    if (st.size !== size) return `${path} has ${st.size} bytes, not ${size}`;
    return undefined;
  } catch (e) {
    return `${path}: ${(e as Error).message}`;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Write bytes to dir/name atomically (temporary name, then rename), mode 0644. */
function writeInto(dir: string, name: string, bytes: Uint8Array): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    closeSync(fd);
    chmodSync(tmp, 0o644);
    renameSync(tmp, join(dir, name));
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    try {
      unlinkSync(tmp);
    } catch {
      // not there
    }
    throw e;
  }
}

/** The private directory beside the (real) executable. */
export function privateDir(): string {
  return join(dirname(realpathSync(process.execPath)), PRIVATE_DIR_NAME);
}

/**
 * The path of a trustworthy copy of f, made in the private directory when
 * there is none yet and this process may make it. Throws with every reason
 * when there is no usable copy.
 */
export function nativeCopy(f: EmbeddedFile, size: number, read: () => Uint8Array): string {
  const name = installedName(f);
  const reasons: string[] = [];
  for (const dir of [PACKAGE_DIR, privateDir()]) {
    const path = join(dir, name);
    if (!exists(path)) continue;
    const why = untrustedDirectory(dir) ?? untrustedFile(path, size);
    if (why === undefined) return path;
    reasons.push(why);
  }
  // None yet: make the private directory's copy (root, before the privilege drop).
  const dir = privateDir();
  const path = join(dir, name);
  if (dirname(dir) === PACKAGE_EXE_DIR) {
    // The package's own executable: dpkg's directory is not ours to write.
    if (!exists(join(PACKAGE_DIR, name))) reasons.push(`${join(PACKAGE_DIR, name)} is missing (apt-get install --reinstall proxymap-bun)`);
  } else if (!exists(path)) {
    try {
      if (!exists(dir)) {
        try {
          mkdirSync(dir, { mode: 0o755 });
          chmodSync(dir, 0o755); // whatever the umask
        } catch (e) {
          // Another process (proxymap and proxywrite start together) made it first.
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
      }
      const why = untrustedDirectory(dir);
      if (why !== undefined) throw new Error(why);
      writeInto(dir, name, read());
      const bad = untrustedFile(path, size);
      if (bad === undefined) return path;
      reasons.push(bad);
    } catch (e) {
      reasons.push(`cannot make ${path}: ${(e as Error).message}`);
    }
  }
  throw new Error(
    `no usable copy of the ${f.name} addon (${name}) in ${PACKAGE_DIR} or ${dir}: ${reasons.join("; ")}` +
      ` (run this executable once as root, or proxymap --install-native DIR)`,
  );
}

/** Load the embedded addon `name` (process.dlopen) from a trustworthy copy; its exports. */
export function loadEmbeddedAddon(name: string): unknown {
  const f = EMBEDDED.find((e) => e.name === name);
  if (!f) throw new Error(`internal error: no embedded ${name} addon in this executable`);
  const path = nativeCopy(f, statSync(f.embedded).size, () => new Uint8Array(readFileSync(f.embedded)));
  const mod = { exports: {} as unknown };
  process.dlopen(mod as { exports: object }, path);
  loadedFrom.set(f.name, path);
  return mod.exports;
}

/** --install-native DIR: write every embedded file into dir; the names written. */
export function installNative(dir: string): string[] {
  const out: string[] = [];
  for (const f of EMBEDDED) {
    writeInto(dir, installedName(f), new Uint8Array(readFileSync(f.embedded)));
    out.push(join(dir, installedName(f)));
  }
  return out;
}
