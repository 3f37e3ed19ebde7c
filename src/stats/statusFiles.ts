/**
 * statusFiles.ts - where each proxymap/proxywrite process of an instance
 * leaves what it knows, and how `proxymap --status` finds it.
 *
 * The directory is $queue_directory/proxymap-status, mode 0700, owned by
 * mail_owner; each process writes PID.json there (mode 0600, mail_owner),
 * at most once a second while it has requests (reporter.ts), by writing
 * PID.json.tmp and renaming it, so that a reader never sees half a file.
 * Why the queue directory and not $data_directory: a process with
 * `chroot = y` in master.cf sees nothing but the queue directory, and a
 * path relative to it is the same inside and outside the jail (Postfix's
 * own private/, public/ and pid/ live there for that reason); each
 * instance has its own queue directory, so instances never mix. Only root
 * and mail_owner can read it (the files name tables and servers).
 *
 * The process creates the directory before it enters the jail and drops
 * its privileges (as root), and removes its own file when it exits. A
 * file whose process is gone (killed, crashed) is stale: a reader checks
 * the PID and, where /proc can be read, that the process with that PID
 * started when the file says (field 22 of /proc/PID/stat), so a recycled
 * PID does not bring a dead process back; stale files are skipped and
 * removed when the reader may.
 *
 * Reads and writes the status directory and /proc. Logs nothing (callers do).
 */
import { chmodSync, chownSync, closeSync, fchownSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { TableSnapshot } from "./collector";

export const STATUS_DIR_NAME = "proxymap-status";
const FILE_RE = /^([1-9][0-9]*)\.json$/;
/** writeAtomic()'s temporary name of a status file: PID.json.WRITER.tmp. */
const TMP_RE = /^[1-9][0-9]*\.json\.([1-9][0-9]*)\.tmp$/;

/** What one process writes. */
export interface ProcessStatus {
  /** Format version. */
  v: 1;
  pid: number;
  /** "proxymap" or "proxywrite". */
  service: string;
  /** Field 22 of /proc/PID/stat (start time in clock ticks since boot); "" when unknown. */
  startTicks: string;
  /** When the process started and when it wrote this, ms since the epoch. */
  started: number;
  written: number;
  /** Interval length (ms) of the counters' per-interval parts. */
  intervalMs: number;
  tables: TableSnapshot[];
}

/** The status directory of an instance whose queue directory is queueDir. */
export function statusDir(queueDir: string): string {
  return join(queueDir, STATUS_DIR_NAME);
}

/**
 * Create the directory if needed and give it to the mail owner, mode
 * 0700 (as root, before the jail). Returns why it could not, or undefined.
 */
export function prepareStatusDir(dir: string, owner: { uid: number; gid: number } | undefined): string | undefined {
  try {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const st = lstatSync(dir);
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if (owner && process.geteuid?.() === 0 && (st.uid !== owner.uid || st.gid !== owner.gid)) chownSync(dir, owner.uid, owner.gid);
    if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
    return undefined;
  } catch (e) {
    return `${dir}: ${(e as Error).message}`;
  }
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function processStartTicks(pid: number | "self"): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the parenthesised command name (which may hold spaces).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19];
  } catch {
    return undefined;
  }
}

/**
 * Write data to path atomically (path.tmp, then rename), mode `mode`;
 * owned by `owner` when the writer is root (a process that keeps root's
 * identity still leaves files the mail owner can read).
 */
export function writeAtomic(path: string, data: string | Uint8Array, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (owner && process.geteuid?.() === 0) fchownSync(fd, owner.uid, owner.gid);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // gone already
    }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** This process's status file in dir. */
export function ownStatusFile(dir: string): string {
  return join(dir, `${process.pid}.json`);
}

/** Whether a PID is a live process (kill 0: EPERM means it exists under another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Is the process that wrote s still running? The PID must be alive and,
 * where /proc shows it, have started when the file says.
 */
export function writerAlive(s: ProcessStatus): boolean {
  if (!pidAlive(s.pid)) return false;
  if (!s.startTicks) return true;
  const now = processStartTicks(s.pid);
  return now === undefined || now === s.startTicks;
}

export interface ReadResult {
  /** Files of live processes, by PID. */
  live: ProcessStatus[];
  /** Files of processes that are gone (removed when `prune` and permitted). */
  stale: number;
}

/**
 * Every status file in dir. Throws when the directory cannot be read (the
 * caller explains: not root or mail_owner, or no process has written yet).
 */
export function readStatusFiles(dir: string, opts: { prune: boolean; skipPid?: number }): ReadResult {
  const out: ReadResult = { live: [], stale: 0 };
  for (const name of readdirSync(dir)) {
    const t = TMP_RE.exec(name);
    if (t && opts.prune && !pidAlive(Number(t[1]))) {
      // Left by a writer that died between write and rename.
      try {
        unlinkSync(join(dir, name));
      } catch {
        // not ours to remove
      }
      continue;
    }
    const m = FILE_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === opts.skipPid) continue;
    const path = join(dir, name);
    let s: ProcessStatus;
    try {
      s = JSON.parse(readFileSync(path, "utf8")) as ProcessStatus;
    } catch {
      continue; // vanished between readdir and read (its process exited), or not ours
    }
    if (s.v !== 1 || s.pid !== pid || !Array.isArray(s.tables)) continue;
    if (!writerAlive(s)) {
      out.stale++;
      if (opts.prune) {
        try {
          unlinkSync(path);
        } catch {
          // not ours to remove
        }
      }
      continue;
    }
    out.live.push(s);
  }
  out.live.sort((a, b) => a.pid - b.pid);
  return out;
}
