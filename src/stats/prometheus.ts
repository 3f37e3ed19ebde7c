/**
 * prometheus.ts - the statistics in Prometheus's text exposition format
 * (version 0.0.4), for node_exporter's textfile collector
 * (proxymap_stats_prometheus_file; reporter.ts writes it atomically).
 *
 * One series per process (labels service and pid), as Prometheus client
 * libraries do for multi-process servers: a process's counters only grow
 * while it lives, so rate() stays right when master starts and ends
 * processes; `sum by (table) (rate(proxymap_table_requests_total[5m]))`
 * adds them up. Metrics:
 *
 *   proxymap_process_start_time_seconds{service,pid}                  gauge
 *   proxymap_table_requests_total{service,pid,table,operation,result}  counter
 *   proxymap_table_inflight{service,pid,table}                         gauge
 *   proxymap_table_latency_seconds{service,pid,table}                  histogram
 *   proxymap_backend_requests_total{...,server,operation,result}      counter
 *   proxymap_backend_latency_seconds{...,server}                       histogram
 *   proxymap_backend_connections{...,server,state="busy"|"open"}       gauge
 *   proxymap_backend_connection_limit{...,server}                      gauge
 *   proxymap_backend_set_aside_until_seconds{...,server}               gauge (0 = in use)
 *
 * result is ok, notfound, retry or config. The latency histograms count
 * the timed requests (every request of a table that answers later, one in
 * 16 of those answered at once; collector.ts), so their _count is not the
 * request count: use proxymap_table_requests_total for rates.
 *
 * Pure.
 */
import { OP_NAMES, OUTCOME_NAMES, Period, type CountersJson } from "./counters";
import { Histogram } from "./histogram";
import { text } from "./format";
import type { ProcessStatus } from "./statusFiles";

/** Histogram bucket bounds, seconds. */
const LE = [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A label value escaped as the format requires (backslash, quote, newline). */
export function labelValue(v: string): string {
  return text(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}="${labelValue(v)}"`)
    .join(",")}}`;
}

/** The samples of one metric family. */
class Writer {
  readonly lines: string[] = [];

  sample(name: string, l: Record<string, string>, value: number): void {
    this.lines.push(`${name}${labels(l)} ${Number.isFinite(value) ? String(value) : "0"}`);
  }
}

/** Families in the order they are written (each family's samples must be together). */
const FAMILIES: Array<[string, string, string]> = [
  ["proxymap_process_start_time_seconds", "gauge", "Start time of the proxymap process, seconds since the epoch."],
  ["proxymap_table_requests_total", "counter", "Requests to a table, by operation and result (ok, notfound, retry, config)."],
  ["proxymap_table_inflight", "gauge", "Requests to a table that have started and not ended."],
  ["proxymap_table_latency_seconds", "histogram", "Time to answer timed requests to a table (all that answer later, 1 in 16 of those answered at once)."],
  ["proxymap_backend_requests_total", "counter", "Requests a table sent to one server, by operation and result."],
  ["proxymap_backend_latency_seconds", "histogram", "Time one server took to answer a table's requests."],
  ["proxymap_backend_connections", "gauge", "Connections of a table's pool to one server: busy (carrying a request) and open."],
  ["proxymap_backend_connection_limit", "gauge", "The most connections the pool opens to one server."],
  ["proxymap_backend_set_aside_until_seconds", "gauge", "Until when a failed server is set aside, seconds since the epoch; 0 when in use."],
];

function requests(w: Writer, name: string, base: Record<string, string>, c: CountersJson): void {
  const p = Period.fromJSON(c.total);
  OP_NAMES.forEach((op, oi) => {
    if (oi !== 0 && p.ops(oi) === 0) return; // lookups always, other operations once used
    OUTCOME_NAMES.forEach((result, ri) => w.sample(name, { ...base, operation: op, result }, p.count(oi, ri)));
  });
}

function histogram(w: Writer, name: string, base: Record<string, string>, h: Histogram): void {
  for (const le of LE) w.sample(`${name}_bucket`, { ...base, le: String(le) }, h.countUpTo(le * 1000));
  w.sample(`${name}_bucket`, { ...base, le: "+Inf" }, h.n);
  w.sample(`${name}_sum`, base, h.sumMs / 1000);
  w.sample(`${name}_count`, base, h.n);
}

/** The exposition text of these processes' statistics. */
export function renderPrometheus(procs: readonly ProcessStatus[]): string {
  // Collect per family first: the format wants each family's samples together.
  const per = new Map<string, Writer>(FAMILIES.map(([n]) => [n, new Writer()]));
  const w = (n: string) => per.get(n)!;
  for (const s of procs) {
    const proc = { service: s.service, pid: String(s.pid) };
    w("proxymap_process_start_time_seconds").sample("proxymap_process_start_time_seconds", proc, Math.floor(s.started / 1000));
    for (const t of s.tables) {
      const tl = { ...proc, table: t.table };
      requests(w("proxymap_table_requests_total"), "proxymap_table_requests_total", tl, t.counters);
      w("proxymap_table_inflight").sample("proxymap_table_inflight", tl, t.counters.inflight);
      histogram(w("proxymap_table_latency_seconds"), "proxymap_table_latency_seconds", tl, Histogram.fromJSON(t.counters.total.l));
      for (const b of t.backends) {
        const bl = { ...tl, server: b.host };
        if (b.counters) {
          requests(w("proxymap_backend_requests_total"), "proxymap_backend_requests_total", bl, b.counters);
          histogram(w("proxymap_backend_latency_seconds"), "proxymap_backend_latency_seconds", bl, Histogram.fromJSON(b.counters.total.l));
        }
        w("proxymap_backend_connections").sample("proxymap_backend_connections", { ...bl, state: "busy" }, b.busy);
        w("proxymap_backend_connections").sample("proxymap_backend_connections", { ...bl, state: "open" }, b.open);
        w("proxymap_backend_connection_limit").sample("proxymap_backend_connection_limit", bl, b.limit);
        w("proxymap_backend_set_aside_until_seconds").sample("proxymap_backend_set_aside_until_seconds", bl, b.downUntil > Date.now() ? Math.ceil(b.downUntil / 1000) : 0);
      }
    }
  }
  const out: string[] = [];
  for (const [name, type, help] of FAMILIES) {
    const fw = per.get(name)!;
    if (fw.lines.length === 0) continue;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...fw.lines);
  }
  return out.join("\n") + "\n";
}
