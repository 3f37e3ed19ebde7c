/**
 * format.ts - statistics as people and scripts read them: the interval
 * log lines, the --status table and the --status --json document.
 *
 * Log lines follow the statistics lines of Postfix's anvil(8) and
 * scache(8) ("statistics: max connection rate 3/60s for (smtp:10.0.0.1)
 * at Aug 21 10:00:37", "statistics: domain lookup hits=3 miss=1
 * success=75%"): the word "statistics:", then name=value pairs, a rate
 * as COUNT/INTERVAL, and the time of a peak as ctime's "Mmm dd hh:mm:ss":
 *
 *   statistics: table texthash:/etc/postfix/virtual lookups=5210/60s hits=5001 miss=209 retry=0 config=0 latency p50=0.031ms p99=0.094ms max=1.2ms at Aug 21 10:00:37
 *   statistics: table mysql:/etc/postfix/users.cf server inet:db1:3306 lookups=812/60s hits=800 miss=12 retry=0 config=0 latency p50=1.1ms p99=4.2ms max=9.8ms at Aug 21 10:00:12 connections busy=1 open=4 limit=16
 *
 * Pure (the time zone is the process's).
 */
import { OUTCOME_NAMES, Op, Outcome, type Period } from "./counters";
import type { MergedBackend, MergedTable } from "./merge";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = (n: number) => String(n).padStart(2, "0");

/** ctime()'s "Mmm dd hh:mm:ss" (the 15 characters after the weekday), local time. */
export function ctime15(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** A latency in milliseconds with a precision that suits its size. */
export function fmtMs(ms: number): string {
  if (ms === 0) return "0ms";
  // Two significant digits below 1 ms (in-memory tables answer in well under a microsecond).
  if (ms < 1) return `${Number(ms.toPrecision(2))}ms`;
  return `${ms.toFixed(ms < 10 ? 2 : ms < 100 ? 1 : 0)}ms`;
}

/** An interval length for "/60s": seconds, or minutes and hours when whole. */
export function fmtInterval(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60}m`;
  return `${s}s`;
}

/** Text of a byte string (latin1, one char per byte) read as UTF-8, for output. */
export function text(bytes: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(bytes) ? Buffer.from(bytes, "latin1").toString("utf8") : bytes;
}

/** The name=value pairs of one period, as the log lines show them. */
function periodPairs(p: Period, interval: string): string {
  const parts = [
    `lookups=${p.ops(Op.lookup)}/${interval}`,
    `hits=${p.count(Op.lookup, Outcome.ok)}`,
    `miss=${p.count(Op.lookup, Outcome.notfound)}`,
    `retry=${p.outcomes(Outcome.retry)}`,
    `config=${p.outcomes(Outcome.config)}`,
  ];
  if (p.ops(Op.update)) parts.push(`updates=${p.ops(Op.update)}`);
  if (p.ops(Op.delete)) parts.push(`deletes=${p.ops(Op.delete)}`);
  if (p.ops(Op.sequence)) parts.push(`sequence=${p.ops(Op.sequence)}`);
  const l = p.latency;
  if (l.n > 0) {
    parts.push(`latency p50=${fmtMs(l.quantile(0.5))} p99=${fmtMs(l.quantile(0.99))} max=${fmtMs(l.maxMs)}`);
    if (l.maxAt) parts.push(`at ${ctime15(l.maxAt)}`);
  }
  return parts.join(" ");
}

/** The interval log line of a table. */
export function tableLogLine(table: string, p: Period, intervalMs: number, inflight: number): string {
  const tail = inflight > 0 ? ` inflight=${inflight}` : "";
  return `statistics: table ${table} ${periodPairs(p, fmtInterval(intervalMs))}${tail}`;
}

/** The interval log line of one server of a table. */
export function backendLogLine(table: string, b: { host: string; busy: number; open: number; limit: number; downUntil: number }, p: Period | undefined, intervalMs: number, now: number): string {
  const parts = [`statistics: table ${table} server ${b.host}`];
  if (p) parts.push(periodPairs(p, fmtInterval(intervalMs)));
  parts.push(`connections busy=${b.busy} open=${b.open} limit=${b.limit}`);
  if (b.downUntil > now) parts.push(`set aside until ${ctime15(b.downUntil)}`);
  return parts.join(" ");
}

// ------------------------------------------------------------------ --status

/** Align columns: the first column left, the others right. */
function columns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd());
}

const lat = (p: Period) => (p.latency.n > 0 ? [fmtMs(p.latency.quantile(0.5)), fmtMs(p.latency.quantile(0.99)), fmtMs(p.latency.maxMs)] : ["-", "-", "-"]);
const writes = (p: Period) => p.ops(Op.update) + p.ops(Op.delete);

/** The --status table: one line per table, its servers indented below it. */
export function statusText(tables: readonly MergedTable[], intervalMs: number, now: number): string[] {
  const iv = fmtInterval(intervalMs);
  const head = ["TABLE", "SERVICE", "PROCS", "LOOKUPS", "HITS", "MISSES", "RETRY", "CONFIG", "WRITES", "INFLIGHT", "P50", "P99", "MAX", `LOOKUPS/${iv}`, `P50/${iv}`, `P99/${iv}`, `MAX/${iv}`];
  const rows: string[][] = [head];
  for (const t of tables) {
    rows.push([
      text(t.table),
      t.services.join(","),
      String(t.processes),
      String(t.total.ops(Op.lookup)),
      String(t.total.count(Op.lookup, Outcome.ok)),
      String(t.total.count(Op.lookup, Outcome.notfound)),
      String(t.total.outcomes(Outcome.retry)),
      String(t.total.outcomes(Outcome.config)),
      String(writes(t.total)),
      String(t.inflight),
      ...lat(t.total),
      String(t.last.ops(Op.lookup)),
      ...lat(t.last),
    ]);
  }
  const out = columns(rows);
  // Servers go under their table, after alignment (they have columns of their own).
  const result: string[] = [out[0]];
  tables.forEach((t, i) => {
    result.push(out[i + 1]);
    for (const b of t.backends) result.push(`  ${backendStatusText(b, iv, now)}`);
  });
  return result;
}

function backendStatusText(b: MergedBackend, iv: string, now: number): string {
  const parts = [`server ${text(b.host)}: connections busy ${b.busy} open ${b.open} limit ${b.limit}`];
  if (b.counted) {
    const [p50, p99, max] = lat(b.total);
    parts.push(
      `lookups ${b.total.ops(Op.lookup)} hits ${b.total.count(Op.lookup, Outcome.ok)} misses ${b.total.count(Op.lookup, Outcome.notfound)} retry ${b.total.outcomes(Outcome.retry)} config ${b.total.outcomes(Outcome.config)} p50 ${p50} p99 ${p99} max ${max}`,
    );
    const [l50, l99, lmax] = lat(b.last);
    parts.push(`last ${iv}: lookups ${b.last.ops(Op.lookup)} p50 ${l50} p99 ${l99} max ${lmax}`);
  }
  if (b.downUntil > now) parts.push(`set aside until ${ctime15(b.downUntil)} (in ${b.downIn} process${b.downIn === 1 ? "" : "es"})`);
  return parts.join("; ");
}

/** A period for --json. */
export function periodJson(p: Period): Record<string, unknown> {
  const byOp: Record<string, Record<string, number>> = {};
  for (const [name, op] of Object.entries(Op)) {
    if (op !== Op.lookup && p.ops(op) === 0) continue; // lookups always, other operations once used
    const o: Record<string, number> = {};
    OUTCOME_NAMES.forEach((oc, i) => (o[oc] = p.count(op, i)));
    byOp[name] = o;
  }
  const l = p.latency;
  return {
    lookups: p.ops(Op.lookup),
    hits: p.count(Op.lookup, Outcome.ok),
    misses: p.count(Op.lookup, Outcome.notfound),
    retry: p.outcomes(Outcome.retry),
    config: p.outcomes(Outcome.config),
    updates: p.ops(Op.update),
    deletes: p.ops(Op.delete),
    sequences: p.ops(Op.sequence),
    by_operation: byOp,
    latency_ms: {
      timed: l.n,
      p50: round(l.quantile(0.5)),
      p99: round(l.quantile(0.99)),
      max: round(l.maxMs),
      max_at: l.maxAt ? new Date(l.maxAt).toISOString() : null,
    },
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;
