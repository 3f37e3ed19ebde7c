/**
 * serviceCheck.ts - the tables of one proxymap service (a master.cf
 * entry), checked as that service's processes would use them: the part
 * of `proxymap --check` that runs in a child process of its own
 * (checkCommand.ts starts one per service).
 *
 * As the daemon (server/daemon.ts): main.cf with the entry's -o
 * overrides, the table drivers' main.cf settings, smtputf8; as root:
 * chdir to the queue directory, the pre-jail work, then chroot (-c) and
 * the drop to mail_owner (-u); after that, as the daemon does, the
 * approved set (proxy_read_maps or proxy_write_maps). Then each approved
 * table in turn:
 *   1. proxywrite and a type whose read-write open creates files
 *      (TableType.writeFiles: hash, btree, lmdb): each file must be
 *      readable and writable by this user, or, when missing, creatable in
 *      its directory ("will be created at the first update"); the table is
 *      then opened read-only, so nothing is created or changed;
 *   2. the open, through the dict layer with the flags of a typical
 *      client (LOCK, FOLD_FIX, UTF8_REQUEST): configuration files are
 *      parsed as the daemon parses them; a failed open logs its reason;
 *   3. a lookup of a canary key (--key, default
 *      proxymap-check@example.invalid): databases and directories connect
 *      and run their query; RETRY or CONFIG is a problem;
 * with at most CHECK_TIMEOUT_MS for steps 2 and 3. The problem is what the
 * daemon would log, in the reference's words (captured log lines).
 *
 * Output: one line on stdout, "PROXYMAP-CHECK " + JSON (ServiceReport).
 * Reads main.cf, master.cf, the tables. Logs nothing (captured).
 */
import { accessSync, constants as fsc, existsSync } from "node:fs";
import { dirname } from "node:path";
import { loadMainConfig, mailVersion } from "../config/mainCf";
import { atLeast } from "../config/declared";
import { errnoText } from "../util/errno";
import { FatalError, setLogSinks, type Severity } from "../log/msg";
import { DictFlag, Status } from "../protocol/constants";
import { getBool, getStr } from "../server/params";
import { chrootUid } from "../server/privileges";
import { approvedTableSet } from "../service/approval";
import { setStatsEnabled } from "../stats/collector";
import { preloadLibc } from "../sys/libc";
import { setTableMainConfig } from "../tables/dbCommon/mainConfig";
import { closeAllDicts, dictGet, openDict, setUtf8Enabled } from "../tables/dict/index";
import { findTableType } from "../tables/registry";
import { prepareTables } from "../tables/prepare";
import type { DaemonOptions } from "../server/options";

export const REPORT_MARK = "PROXYMAP-CHECK ";
export const DEFAULT_CANARY = "proxymap-check@example.invalid";
export const CHECK_TIMEOUT_MS = 15_000;
/** LOCK | FOLD_FIX | UTF8_REQUEST: what Postfix's maps_create() clients send (never OPEN_LOCK: a live proxywrite holds it). */
const CLIENT_FLAGS = DictFlag.LOCK | DictFlag.FOLD_FIX | DictFlag.UTF8_REQUEST;

export interface TableReport {
  table: string;
  ok: boolean;
  /** The problem, or a note for an OK table ("" when there is nothing to say). */
  text: string;
}

export interface ServiceReport {
  service: string;
  /** How the tables were opened: "as postfix, chrooted to /var/spool/postfix". */
  as: string;
  /** Problems of the service itself (start-up, configuration). */
  errors: string[];
  approved: string[];
  tables: TableReport[];
}

/** Log lines, captured while one step runs. */
class Capture {
  lines: Array<[Severity, string]> = [];
  start(): void {
    this.lines = [];
    setLogSinks([{ write: (severity, line) => this.lines.push([severity, line]) }]);
  }
  /**
   * Warnings and errors without their severity prefix (the reference's
   * words); a line repeated (tcp's ten attempts) once, with its count.
   */
  problems(): string[] {
    const counts = new Map<string, number>();
    for (const [s, l] of this.lines) {
      if (s === "info") continue;
      const text = l.startsWith(`${s}: `) ? l.slice(s.length + 2) : l;
      counts.set(text, (counts.get(text) ?? 0) + 1);
    }
    return [...counts].map(([text, n]) => (n > 1 ? `${text} (${n} times)` : text));
  }
}

function withTimeout<T>(p: T | Promise<T>, ms: number): Promise<T | "timeout"> {
  if (!(p instanceof Promise)) return Promise.resolve(p);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Step 1: the files a proxywrite open would create or change. */
function writeFilesProblem(files: string[], user: string): { problem?: string; missing: string[] } {
  const missing: string[] = [];
  for (const f of files) {
    if (existsSync(f)) {
      try {
        accessSync(f, fsc.R_OK | fsc.W_OK);
      } catch (e) {
        return { problem: `${f}: not writable by ${user}: ${errnoText(e)}`, missing };
      }
      continue;
    }
    const dir = dirname(f);
    try {
      accessSync(dir, fsc.W_OK | fsc.X_OK);
    } catch (e) {
      return { problem: `cannot create ${f} as ${user}: ${dir}: ${errnoText(e)}`, missing };
    }
    missing.push(f);
  }
  return { missing };
}

async function checkTable(name: string, writer: boolean, key: string, gen: "classic" | "instance", user: string, cap: Capture): Promise<TableReport> {
  const colon = name.indexOf(":");
  const type = name.slice(0, colon);
  const tt = findTableType(type);
  let openWrite = writer;
  let note = "";
  if (writer && tt?.writeFiles) {
    const { problem, missing } = writeFilesProblem(tt.writeFiles(name.slice(colon + 1)), user);
    if (problem) return { table: name, ok: false, text: problem };
    if (missing.length > 0) return { table: name, ok: true, text: `${missing.join(", ")} will be created at the first update` };
    openWrite = false;
    note = "opened read-only; writable";
  }
  cap.start();
  const opened = await withTimeout(openDict(name, openWrite, CLIENT_FLAGS, gen), CHECK_TIMEOUT_MS);
  if (opened === "timeout") return { table: name, ok: false, text: `not opened within ${CHECK_TIMEOUT_MS / 1000}s` };
  const openProblems = cap.problems();
  if (opened.driver === undefined) return { table: name, ok: false, text: openProblems.join("; ") || "cannot be opened" };
  const r = await withTimeout(dictGet(opened, key, CLIENT_FLAGS), CHECK_TIMEOUT_MS);
  const problems = cap.problems();
  if (r === "timeout") return { table: name, ok: false, text: [...problems, `lookup of "${key}" not answered within ${CHECK_TIMEOUT_MS / 1000}s`].join("; ") };
  if (r.status === Status.RETRY || r.status === Status.CONFIG) {
    const what = r.status === Status.RETRY ? "temporary failure" : "configuration error";
    return { table: name, ok: false, text: problems.join("; ") || `lookup of "${key}": ${what}` };
  }
  // Warnings of an open that worked (a database older than its source) are worth showing.
  const extra = [note, ...problems].filter(Boolean).join("; ");
  return { table: name, ok: true, text: extra };
}

/** Check one service's tables; the report is printed by the caller. */
export async function checkService(configDir: string, o: DaemonOptions, key: string): Promise<ServiceReport> {
  const report: ServiceReport = { service: o.serviceName, as: "", errors: [], approved: [], tables: [] };
  const cap = new Capture();
  cap.start();
  setStatsEnabled(false);
  try {
    const config = loadMainConfig({ configDir, overrides: o.overrides, processName: "proxymap", serviceName: o.serviceName, settleWait: false });
    setTableMainConfig(config);
    setUtf8Enabled(getBool(config, "smtputf8_enable", true));
    const writer = o.serviceName === "proxywrite";
    const queueDir = getStr(config, "queue_directory", "/var/spool/postfix");
    const mailOwner = getStr(config, "mail_owner", "postfix");
    const root = process.geteuid?.() === 0;
    preloadLibc();
    await prepareTables(config.get(writer ? "proxy_write_maps" : "proxy_read_maps"), { jailed: root && o.chroot });
    if (root) {
      process.chdir(queueDir);
      chrootUid(o.chroot ? queueDir : undefined, o.dropPrivileges ? mailOwner : undefined);
      report.as = `as ${o.dropPrivileges ? mailOwner : "root"}${o.chroot ? `, chrooted to ${queueDir}` : ""}`;
    } else {
      report.as = `as uid ${process.geteuid?.()} (not root: no chroot, no switch to ${mailOwner})`;
    }
    const user = o.dropPrivileges && root ? mailOwner : root ? "root" : `uid ${process.geteuid?.()}`;
    // The daemon's own check, after the jail (server/daemon.ts), with its words.
    if (o.serviceName !== "proxymap" && o.serviceName !== "proxywrite") {
      report.errors.push("service name must be one of proxymap or proxymap");
      return report;
    }
    const approved = [...approvedTableSet(config, writer)].sort();
    report.errors.push(...cap.problems());
    report.approved = approved;
    const gen = atLeast(mailVersion(config), 3, 11) ? "instance" : "classic";
    for (const name of approved) report.tables.push(await checkTable(name, writer, key, gen, user, cap));
  } catch (e) {
    report.errors.push(...cap.problems());
    if (!(e instanceof FatalError)) report.errors.push((e as Error)?.message ?? String(e));
  }
  try {
    await withTimeout(closeAllDicts(), 2000);
  } catch {
    // leaving anyway
  }
  return report;
}
