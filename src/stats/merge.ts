/**
 * merge.ts - adding up statistics: the same table in several processes
 * of an instance (proxymap --status), the same server in several pools
 * of a table. Counts and histogram buckets add; in-flight requests and
 * connections add (each process has its own pool); the largest latency
 * and the latest "set aside until" win.
 *
 * Pure.
 */
import { lastCompleteInterval, Period, type CountersJson } from "./counters";
import type { BackendSnapshot, TableSnapshot } from "./collector";

/** Several snapshots of counters of the same interval length as one. */
export function mergeCounters(list: readonly CountersJson[]): CountersJson {
  const interval = Math.max(-1, ...list.map((j) => j.interval));
  const total = new Period();
  const current = new Period();
  const last = new Period();
  let inflight = 0;
  for (const j of list) {
    total.add(Period.fromJSON(j.total));
    // Bring each to the newest interval before adding the per-interval parts.
    if (j.interval === interval) {
      current.add(Period.fromJSON(j.current));
      last.add(Period.fromJSON(j.last));
    } else {
      last.add(lastCompleteInterval(j, interval));
    }
    inflight += j.inflight;
  }
  return { interval, total: total.toJSON(), current: current.toJSON(), last: last.toJSON(), inflight };
}

/** One table as --status shows it: counted over every process that has it. */
export interface MergedTable {
  table: string;
  /** The services whose processes have it ("proxymap", "proxywrite"). */
  services: string[];
  /** Processes that have it. */
  processes: number;
  total: Period;
  /** The last complete interval. */
  last: Period;
  inflight: number;
  backends: MergedBackend[];
}

export interface MergedBackend {
  host: string;
  busy: number;
  open: number;
  limit: number;
  /** Latest "set aside until" (ms since the epoch), 0 = in use everywhere. */
  downUntil: number;
  /** Processes that have set it aside now. */
  downIn: number;
  total: Period;
  last: Period;
  counted: boolean;
}

/** A process's snapshot as merge() needs it. */
export interface ProcessTables {
  service: string;
  tables: readonly TableSnapshot[];
}

/**
 * Tables of every process, added up by table name; `index` is the
 * interval in progress now (the "last" columns are the interval before
 * it), `now` the time for "set aside until" (past dates do not count).
 */
export function mergeProcesses(procs: readonly ProcessTables[], index: number, now: number): MergedTable[] {
  const byTable = new Map<string, MergedTable>();
  for (const p of procs) {
    for (const t of p.tables) {
      let m = byTable.get(t.table);
      if (!m) {
        m = { table: t.table, services: [], processes: 0, total: new Period(), last: new Period(), inflight: 0, backends: [] };
        byTable.set(t.table, m);
      }
      if (!m.services.includes(p.service)) m.services.push(p.service);
      m.processes++;
      m.total.add(Period.fromJSON(t.counters.total));
      m.last.add(lastCompleteInterval(t.counters, index));
      m.inflight += t.counters.inflight;
      for (const b of t.backends) addBackend(m.backends, b, index, now);
    }
  }
  return [...byTable.values()].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
}

function addBackend(list: MergedBackend[], b: BackendSnapshot, index: number, now: number): void {
  let m = list.find((x) => x.host === b.host);
  if (!m) {
    m = { host: b.host, busy: 0, open: 0, limit: 0, downUntil: 0, downIn: 0, total: new Period(), last: new Period(), counted: false };
    list.push(m);
  }
  m.busy += b.busy;
  m.open += b.open;
  m.limit += b.limit;
  if (b.downUntil > now) {
    m.downIn++;
    m.downUntil = Math.max(m.downUntil, b.downUntil);
  }
  if (b.counters) {
    m.counted = true;
    m.total.add(Period.fromJSON(b.counters.total));
    m.last.add(lastCompleteInterval(b.counters, index));
  }
}
