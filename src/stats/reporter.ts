/**
 * reporter.ts - the statistics clock of a proxymap process: what it does
 * with the counts (collector.ts) while requests come in.
 *
 * Settings (main.cf or master.cf -o; ours, the C proxymap has none):
 *   proxymap_stats_enable (yes)        count at all; "no" leaves every table
 *                                      uncounted and writes nothing
 *   proxymap_stats_interval (0)        every interval, one log line per
 *                                      table that had requests in it (and
 *                                      one per server of such a table); 0 =
 *                                      no log lines. The "last interval"
 *                                      figures of --status and the JSON
 *                                      use it too (60s when it is 0)
 *   proxymap_stats_prometheus_file ()  write the statistics of every live
 *                                      process of the instance there in
 *                                      Prometheus's text format, atomically
 *
 * The clock sleeps while there are no requests. The first request after a
 * pause wakes it (collector.ts); then at most once a second it writes this
 * process's status file (statusFiles.ts) and the Prometheus file, if
 * anything changed, and just after each interval boundary (it also looks
 * then, so that no interval is skipped) it moves the counters on and logs
 * the interval that just ended. A second without requests puts it back to sleep, with
 * one wake-up left at the end of the interval when that interval's lines
 * are still to be logged. One timer per process, none per request.
 *
 * Reads: the status directory (other processes' files, for the Prometheus
 * file). Writes: its status file, the Prometheus file. Logs: the
 * statistics lines (info); a warning, once per kind, when a file cannot be
 * written.
 */
import { unlinkSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { MainConfig } from "../config/mainCf";
import { msg } from "../log/msg";
import { getBool, getTime } from "../server/params";
import { activity, intervalTables, setWakeHandler, snapshotTables, statsEnabled } from "./collector";
import { clock } from "./counters";
import { backendLogLine, tableLogLine } from "./format";
import { renderPrometheus } from "./prometheus";
import { getpwnam } from "../sys/libc";
import { ownStatusFile, prepareStatusDir, processStartTicks, readStatusFiles, statusDir, STATUS_DIR_NAME, writeAtomic, type ProcessStatus } from "./statusFiles";

/** Window of the "last interval" figures when proxymap_stats_interval is 0. */
export const DEFAULT_WINDOW_MS = 60_000;
const TICK_MS = 1000;
/** "At most once a second", with room for timers that fire a little early. */
const MIN_WRITE_GAP_MS = 900;

export interface StatsSettings {
  enabled: boolean;
  /** proxymap_stats_interval in ms; 0 = no log lines. */
  intervalMs: number;
  /** proxymap_stats_prometheus_file; "" = none. */
  prometheusFile: string;
}

/** The statistics settings of a configuration (Postfix's wording for bad values: fatal). */
export function statsSettings(config: MainConfig): StatsSettings {
  return {
    enabled: getBool(config, "proxymap_stats_enable", true),
    intervalMs: getTime(config, "proxymap_stats_interval", "0s") * 1000,
    prometheusFile: config.get("proxymap_stats_prometheus_file").trim(),
  };
}

export interface ReporterOptions {
  settings: StatsSettings;
  /** "proxymap" or "proxywrite". */
  service: string;
  /** The status directory as this process sees it (inside its jail); undefined = no status file. */
  statusDir?: string;
  /** Owner of the files when the process is root (the mail owner). */
  owner?: { uid: number; gid: number };
  /** This process's start time in clock ticks (/proc/self/stat, read before the jail). */
  startTicks: string;
}

/** Where a daemon under master keeps its status file, prepared before the jail. */
export interface StatusPlace {
  /** The directory as the process sees it after entering its jail. */
  dir: string;
  owner: { uid: number; gid: number } | undefined;
  startTicks: string;
}

/**
 * Before the jail and the privilege drop (as root): create the instance's
 * status directory for the mail owner, read this process's start time.
 * undefined (with a warning) when the directory cannot be made.
 */
export function prepareStatusPlace(queueDir: string, mailOwner: string, jailed: boolean): StatusPlace | undefined {
  const pw = getpwnam(mailOwner);
  const owner = pw ? { uid: pw.uid, gid: pw.gid } : undefined;
  const outside = statusDir(queueDir);
  const err = prepareStatusDir(outside, owner);
  if (err !== undefined) {
    msg.warn(`cannot prepare the statistics directory: ${err}; proxymap --status will not show this process`);
    return undefined;
  }
  return { dir: jailed ? `/${STATUS_DIR_NAME}` : outside, owner, startTicks: processStartTicks("self") ?? "" };
}

export interface Reporter {
  /** Write the files now (tests, shutdown). */
  flush(): void;
  /** Stop the clock and remove this process's status file. */
  stop(): void;
}

/** Start the statistics clock of this process (nothing when statistics are off). */
export function startStatistics(o: ReporterOptions): Reporter {
  const s = o.settings;
  clock.lengthMs = s.intervalMs > 0 ? s.intervalMs : DEFAULT_WINDOW_MS;
  if (!statsEnabled()) return { flush() {}, stop() {} };
  const ownFile = o.statusDir === undefined ? undefined : ownStatusFile(o.statusDir);
  const started = Math.round(performance.timeOrigin);
  const warned = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastSeq = -1;
  /** The latest interval in which requests were counted. */
  let activeInterval = -1;
  let lastPrometheus = 0;
  /** When this process last wrote its status file. */
  let lastWrite = 0;
  /** A Prometheus write was left to another process: make sure the last state gets out. */
  let prometheusPending = false;

  const warnOnce = (kind: string, text: string) => {
    if (warned.has(kind)) return;
    warned.add(kind);
    msg.warn(text);
  };

  function snapshot(now: number): ProcessStatus {
    return { v: 1, pid: process.pid, service: o.service, startTicks: o.startTicks, started, written: now, intervalMs: clock.lengthMs, tables: snapshotTables() };
  }

  function writeStatus(st: ProcessStatus): void {
    if (ownFile === undefined) return;
    try {
      writeAtomic(ownFile, JSON.stringify(st), 0o600, o.owner);
    } catch (e) {
      warnOnce("status", `cannot write statistics file ${ownFile}: ${(e as Error).message}`);
    }
  }

  function writePrometheus(st: ProcessStatus, now: number, force: boolean): void {
    const path = s.prometheusFile;
    if (!path) return;
    // Every process of the instance writes the same merged file; one write a second is enough.
    let recent = !force && now - lastPrometheus < MIN_WRITE_GAP_MS;
    if (!force && !recent) {
      try {
        recent = now - statSync(path).mtimeMs < MIN_WRITE_GAP_MS;
      } catch {
        // not written yet
      }
    }
    prometheusPending = recent;
    if (recent) return;
    lastPrometheus = now;
    const procs = [st];
    if (o.statusDir !== undefined) {
      try {
        procs.push(...readStatusFiles(o.statusDir, { prune: false, skipPid: process.pid }).live);
      } catch {
        // only this process then
      }
    }
    try {
      writeAtomic(path, renderPrometheus(procs), 0o644, o.owner);
    } catch (e) {
      warnOnce("prometheus", `cannot write ${path} (proxymap_stats_prometheus_file; directory ${dirname(path)}): ${(e as Error).message}`);
    }
  }

  /** The log lines of interval `from`, which the clock has just left. */
  function logInterval(from: number): void {
    const now = Date.now();
    for (const t of intervalTables(from)) {
      msg.info(tableLogLine(t.table, t.period, clock.lengthMs, t.inflight));
      for (const b of t.backends) {
        if ((b.period && b.period.total > 0) || b.downUntil > now || b.busy > 0) msg.info(backendLogLine(t.table, b, b.period, clock.lengthMs, now));
      }
    }
  }

  /**
   * When to look again while requests come in: in a second, or just after
   * the interval boundary if that comes first, so that counts move to the
   * new interval within milliseconds of it and no interval is skipped.
   */
  function arm(now: number): void {
    const toBoundary = (clock.index + 1) * clock.lengthMs - now;
    timer = setTimeout(tick, Math.max(5, Math.min(TICK_MS, toBoundary + 2)));
    timer.unref?.();
  }

  function tick(): void {
    timer = undefined;
    const now = Date.now();
    const index = clock.sync(now); // logs the interval it leaves (onAdvance)
    const changed = activity.seq !== lastSeq;
    if (changed) activeInterval = index;
    if (changed && now - lastWrite >= MIN_WRITE_GAP_MS) {
      const st = snapshot(now);
      lastSeq = activity.seq;
      lastWrite = now;
      writeStatus(st);
      writePrometheus(st, now, false);
    }
    if (changed) arm(now);
    else sleep(now, index);
  }

  /** No requests for a second: sleep, waking once more to log an interval that had requests. */
  function sleep(now: number, index: number): void {
    activity.awake = false;
    if (prometheusPending) writePrometheus(snapshot(now), now, true);
    if (s.intervalMs > 0 && activeInterval === index) {
      const end = (index + 1) * clock.lengthMs;
      timer = setTimeout(tick, Math.max(10, end - now + 5));
      timer.unref?.();
      // Requests before then wake the clock again (wake() re-arms the one-second tick).
    }
  }

  if (s.intervalMs > 0) clock.onAdvance = logInterval;
  setWakeHandler(() => {
    if (timer !== undefined) clearTimeout(timer);
    arm(Date.now());
  });

  const removeOwn = () => {
    if (ownFile === undefined) return;
    try {
      unlinkSync(ownFile);
    } catch {
      // never written, or gone
    }
  };
  process.on("exit", removeOwn);

  return {
    flush() {
      const now = Date.now();
      const st = snapshot(now);
      writeStatus(st);
      writePrometheus(st, now, true);
    },
    stop() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      setWakeHandler(() => {});
      clock.onAdvance = undefined;
      process.off("exit", removeOwn);
      removeOwn();
    },
  };
}
