/**
 * statusCommand.ts - `proxymap --status [--json] [-c CONFIG_DIR]`: what
 * every running proxymap and proxywrite process of an instance knows,
 * added up per table, one table per line (its servers indented below).
 *
 * The instance is CONFIG_DIR (-c, else MAIL_CONFIG, else /etc/postfix):
 * its main.cf names the queue directory whose proxymap-status/ holds one
 * file per process (statusFiles.ts). Files of processes that are gone are
 * skipped and removed. Only root and mail_owner can read the directory;
 * anyone else gets a message saying so. The numbers are those of each
 * process's last write: at most a second old for a process with
 * requests; an idle process's file is as it left it (its counts have not
 * changed since).
 *
 * The "last interval" columns are the interval of proxymap_stats_interval
 * (60s when it is 0) before the one in progress, aligned to the clock, so
 * all processes' intervals are the same.
 *
 * Output: the table (format.ts statusText()) or, with --json, a JSON
 * document (one object; see the README). Exit status 0, or 1 when the
 * status directory cannot be read.
 *
 * Reads main.cf and the status directory. Logs nothing (writes to stdout
 * and stderr).
 */
import { loadMainConfig } from "../config/mainCf";
import { clock } from "./counters";
import { ctime15, fmtInterval, periodJson, statusText, text } from "./format";
import { mergeProcesses } from "./merge";
import { DEFAULT_WINDOW_MS, statsSettings } from "./reporter";
import { readStatusFiles, statusDir, type ProcessStatus } from "./statusFiles";

export interface StatusOptions {
  configDir: string;
  json: boolean;
  out?: (s: string) => void;
  err?: (s: string) => void;
}

export function runStatus(o: StatusOptions): number {
  const out = o.out ?? ((s: string) => process.stdout.write(s));
  const err = o.err ?? ((s: string) => process.stderr.write(s));
  const config = loadMainConfig({ configDir: o.configDir, overrides: [], settleWait: false });
  const queueDir = config.get("queue_directory") || "/var/spool/postfix";
  const owner = config.get("mail_owner") || "postfix";
  const dir = statusDir(queueDir);
  const settings = statsSettings(config);
  let procs: ProcessStatus[];
  let stale = 0;
  try {
    const r = readStatusFiles(dir, { prune: true });
    procs = r.live;
    stale = r.stale;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      procs = []; // no process of this instance has had statistics yet
    } else if (code === "EACCES" || code === "EPERM") {
      err(`proxymap: cannot read ${dir}: permission denied: run proxymap --status as root or as ${owner} (mail_owner)\n`);
      return 1;
    } else {
      err(`proxymap: cannot read ${dir}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const intervalMs = procs[0]?.intervalMs ?? (settings.intervalMs > 0 ? settings.intervalMs : DEFAULT_WINDOW_MS);
  const now = Date.now();
  clock.lengthMs = intervalMs;
  const index = clock.sync(now);
  const tables = mergeProcesses(procs, index, now);
  const lastStart = (index - 1) * intervalMs;

  if (o.json) {
    const doc = {
      config_directory: o.configDir,
      status_directory: dir,
      time: new Date(now).toISOString(),
      interval_seconds: intervalMs / 1000,
      last_interval: { start: new Date(lastStart).toISOString(), end: new Date(lastStart + intervalMs).toISOString() },
      processes: procs.map((p) => ({ pid: p.pid, service: p.service, started: new Date(p.started).toISOString(), written: new Date(p.written).toISOString(), tables: p.tables.length })),
      stale_files_removed: stale,
      tables: tables.map((t) => ({
        table: text(t.table),
        services: t.services,
        processes: t.processes,
        inflight: t.inflight,
        total: periodJson(t.total),
        last_interval: periodJson(t.last),
        servers: t.backends.map((b) => ({
          server: text(b.host),
          connections: { busy: b.busy, open: b.open, limit: b.limit },
          set_aside_until: b.downUntil > now ? new Date(b.downUntil).toISOString() : null,
          set_aside_in_processes: b.downIn,
          total: b.counted ? periodJson(b.total) : null,
          last_interval: b.counted ? periodJson(b.last) : null,
        })),
      })),
    };
    out(JSON.stringify(doc, null, 2) + "\n");
    return 0;
  }

  const byService = new Map<string, number[]>();
  for (const p of procs) byService.set(p.service, [...(byService.get(p.service) ?? []), p.pid]);
  const who = [...byService].map(([svc, pids]) => `${svc} ${pids.join(" ")}`).join("; ");
  out(
    `proxymap status of ${o.configDir}: ${procs.length} process${procs.length === 1 ? "" : "es"}${who ? ` (${who})` : ""}; ` +
      `last ${fmtInterval(intervalMs)} = ${ctime15(lastStart)} to ${ctime15(lastStart + intervalMs).slice(7)}` +
      `${stale ? `; ${stale} file${stale === 1 ? "" : "s"} of ended processes removed` : ""}\n`,
  );
  if (tables.length === 0) {
    out("no table has been used yet\n");
    return 0;
  }
  out(statusText(tables, intervalMs, now).join("\n") + "\n");
  return 0;
}
