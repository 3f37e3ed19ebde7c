/**
 * defaultsCache.ts - a saved copy of `postconf -d` output, so that a
 * proxymap start (master starts one after every max_idle / max_use cycle)
 * reads a file instead of running postconf: about 5 ms of a ~25 ms start.
 *
 * Written by hand: it is a few lines of file handling no library does.
 *
 * The copy is used only when it is certainly what postconf would print now.
 * Its first line is a key made of everything the output depends on:
 *   - the postconf program (path, inode, size, mtime, ctime): a Postfix
 *     upgrade replaces it, and with it every compiled-in default;
 *   - the configuration directory (config_directory's default);
 *   - the host name and the interface addresses and masks, from which
 *     Postfix computes myhostname, mydomain and mynetworks.
 * (postconf -d also prints its own process_id; no table list uses that.)
 *
 * Where: data_directory (root-owned file, mode 0644), one file per
 * configuration directory. data_directory belongs to the postfix account, so
 * a file there is trusted only when root owns it and nobody else can write
 * it: a replacement made by the postfix account is ignored, and overwritten.
 * Written only by root, atomically (temporary file, then rename).
 *
 * It is read as root, before the privilege drop, from a directory the
 * postfix account controls, so the read never trusts the name: only a plain
 * file is opened (lstat first, so no device is ever opened), with O_NOFOLLOW
 * (a symbolic link is refused by the kernel, not followed) and O_NONBLOCK (a
 * FIFO planted meanwhile cannot make open() wait for a writer), and what was
 * opened is checked again with fstat before a byte is read: a regular file,
 * the one lstat saw, one link (no hard link to another root-owned file),
 * owned by root, writable by nobody else, of a sane size.
 *
 * Logs nothing: any failure means "run postconf", as without the cache.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";

/** The key of postconf's output on this machine now, or undefined when postconf cannot be examined. */
export function defaultsKey(postconf: string, configDir: string): string | undefined {
  try {
    const st = statSync(postconf);
    const nets: string[] = [];
    for (const [name, addrs] of Object.entries(networkInterfaces()))
      for (const a of addrs ?? []) nets.push(`${name}=${a.address}/${a.netmask}`);
    nets.sort();
    return JSON.stringify([postconf, st.ino, st.size, st.mtimeMs, st.ctimeMs, configDir, hostname(), nets]);
  } catch {
    return undefined;
  }
}

function cacheFile(dataDir: string, configDir: string): string {
  return join(dataDir, `proxymap-defaults.${Bun.hash(configDir).toString(16)}`);
}

/** postconf -d prints about 100 KB; anything much larger is not ours. */
const MAX_SIZE = 4 * 1024 * 1024;
const SAFE_OPEN = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The saved output for this key, if there is a trustworthy one. */
export function readDefaultsCache(dataDir: string, configDir: string, key: string): string | undefined {
  let fd = -1;
  try {
    const file = cacheFile(dataDir, configDir);
    const before = lstatSync(file);
    if (!before.isFile()) return undefined;
    fd = openSync(file, SAFE_OPEN);
    const st = fstatSync(fd);
    if (!st.isFile() || st.dev !== before.dev || st.ino !== before.ino || st.nlink !== 1) return undefined;
    if (st.uid !== 0 || (st.mode & 0o022) !== 0 || st.size > MAX_SIZE) return undefined;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    const text = buf.toString("latin1", 0, got);
    const nl = text.indexOf("\n");
    if (nl < 0 || text.slice(0, nl) !== key) return undefined;
    return text.slice(nl + 1);
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Save postconf's output under its key (root only; failures ignored). */
export function writeDefaultsCache(dataDir: string, configDir: string, key: string, output: string): void {
  if (process.getuid?.() !== 0 || key.includes("\n")) return;
  const file = cacheFile(dataDir, configDir);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${key}\n${output}`, { encoding: "latin1", mode: 0o644, flag: "wx" });
    renameSync(tmp, file);
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
  }
}
