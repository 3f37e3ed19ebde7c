/**
 * collector.ts - the statistics of this process: one Counters per table
 * (type:name, every instance of it together), filled by the dict layer
 * (ops.ts) as each lookup, update, delete and sequence ends, and a
 * snapshot of them with the backend servers the open tables' pools
 * report (Table.backends()).
 *
 * The hot path is measure(): it counts a request that has ended at once
 * (in-memory and file tables), or counts it in flight and hooks its end
 * (tables that answer later). Timing costs two clock reads (about 40-90 ns
 * on the development machine, as much as the counting itself), so
 * requests answered at once are timed one in SYNC_SAMPLE; every request
 * answered later is timed (its Promise costs far more than the clock).
 * Counts are exact either way. Nothing is allocated per request.
 *
 * The first request after a pause wakes the statistics clock
 * (reporter.ts), which writes status files and log lines while requests
 * come in and sleeps again when they stop.
 *
 * Reads nothing; logs nothing.
 */
import type { BackendStats, OpResult } from "../tables/table";
import { openInstances } from "../tables/dict/cache";
import { clock, Counters, Period, type CountersJson, type OpIndex } from "./counters";
import { mergeCounters } from "./merge";

/** Requests answered at once are timed one in this many (a power of two). */
export const SYNC_SAMPLE = 16;
const SAMPLE_MASK = SYNC_SAMPLE - 1;

let enabled = false;
const tables = new Map<string, Counters>();

/** Activity since the clock last looked; `awake` while the clock runs. */
export const activity = { seq: 0, awake: false };
let onWake: () => void = () => {};
let sampleSeq = 0;

/** Turn counting on or off (proxymap_stats_enable); tables opened later follow it. */
export function setStatsEnabled(on: boolean): void {
  enabled = on;
}

export function statsEnabled(): boolean {
  return enabled;
}

/** Called by the statistics clock: what to do on the first request after a pause. */
export function setWakeHandler(f: () => void): void {
  onWake = f;
}

/** The counters of a table (shared by its instances); undefined when statistics are off. */
export function tableCounters(type: string, name: string): Counters | undefined {
  if (!enabled) return undefined;
  const label = `${type}:${name}`;
  let c = tables.get(label);
  if (c === undefined) {
    c = new Counters();
    tables.set(label, c);
  }
  return c;
}

function wake(): void {
  activity.awake = true;
  clock.sync();
  onWake();
}

/** Start of a request: the clock reading to pass to measure(), or -1 when it is not timed. */
export function startOf(): number {
  return (++sampleSeq & SAMPLE_MASK) === 0 ? performance.now() : -1;
}

/**
 * Count a request whose result r (a value or a Promise) has just come
 * back from the dict layer; started = startOf()'s reading. Returns r, or
 * for a Promise one that settles with the same value after counting.
 */
export function measure<R extends OpResult>(c: Counters, op: OpIndex, started: number, r: R | Promise<R>): R | Promise<R> {
  activity.seq++;
  if (!activity.awake) wake();
  if (!(r instanceof Promise)) {
    c.done(op, r.status, started < 0 ? -1 : performance.now() - started);
    return r;
  }
  const t0 = started < 0 ? performance.now() : started;
  c.inflight++;
  return r.then((x) => {
    c.inflight--;
    activity.seq++;
    if (!activity.awake) wake();
    c.done(op, x.status, performance.now() - t0);
    return x;
  });
}

/** A table's counters and backends, as the status files carry them. */
export interface TableSnapshot {
  table: string;
  counters: CountersJson;
  backends: BackendSnapshot[];
}

export interface BackendSnapshot {
  host: string;
  busy: number;
  open: number;
  limit: number;
  downUntil: number;
  counters?: CountersJson;
}

/**
 * Every table this process has counted, with what the pools of its open
 * instances report (tables sharing a pool report it once).
 */
export function snapshotTables(): TableSnapshot[] {
  const index = clock.sync();
  const backends = new Map<string, { seen: Set<object>; list: BackendSnapshot[] }>();
  for (const d of openInstances()) {
    const f = d.driver?.backends;
    if (!f) continue;
    let reported: readonly BackendStats[];
    try {
      reported = f.call(d.driver);
    } catch {
      continue; // a driver's defect must not stop the statistics
    }
    const label = `${d.type}:${d.name}`;
    let entry = backends.get(label);
    if (!entry) backends.set(label, (entry = { seen: new Set(), list: [] }));
    for (const b of reported) {
      // Instances of one table sharing a pool report the same servers: once.
      const key: object = b.counters ?? b;
      if (entry.seen.has(key)) continue;
      entry.seen.add(key);
      b.counters?.rotate(index);
      entry.list.push({ host: b.host, busy: b.busy, open: b.open, limit: b.limit, downUntil: b.downUntil, counters: b.counters?.toJSON() });
    }
  }
  const out: TableSnapshot[] = [];
  for (const [table, c] of tables) {
    c.rotate(index);
    out.push({ table, counters: c.toJSON(), backends: mergeHosts(backends.get(table)?.list ?? []) });
  }
  return out;
}

/** One table's part of an interval that has just ended (the interval log lines). */
export interface IntervalTable {
  table: string;
  period: Period;
  inflight: number;
  backends: Array<{ host: string; busy: number; open: number; limit: number; downUntil: number; period: Period | undefined }>;
}

/**
 * The tables that had requests in interval `from`, which the clock has
 * just left (clock.onAdvance): their counters still hold it as `current`.
 */
export function intervalTables(from: number): IntervalTable[] {
  const out: IntervalTable[] = [];
  const byLabel = new Map<string, IntervalTable>();
  for (const [table, c] of tables) {
    if (c.interval !== from) continue;
    const period = c.current;
    if (period.total === 0) continue;
    const t: IntervalTable = { table, period, inflight: c.inflight, backends: [] };
    out.push(t);
    byLabel.set(table, t);
  }
  const seen = new Map<IntervalTable, Set<object>>();
  for (const d of openInstances()) {
    const t = byLabel.get(`${d.type}:${d.name}`);
    const f = d.driver?.backends;
    if (!t || !f) continue;
    let reported: readonly BackendStats[];
    try {
      reported = f.call(d.driver);
    } catch {
      continue;
    }
    let keys = seen.get(t);
    if (!keys) seen.set(t, (keys = new Set()));
    for (const b of reported) {
      const key: object = b.counters ?? b;
      if (keys.has(key)) continue;
      keys.add(key);
      const period = b.counters && b.counters.interval === from ? b.counters.current : undefined;
      t.backends.push({ host: b.host, busy: b.busy, open: b.open, limit: b.limit, downUntil: b.downUntil, period });
    }
  }
  return out;
}

/** Entries for the same host from different pools of one table: one entry, numbers added. */
function mergeHosts(list: BackendSnapshot[]): BackendSnapshot[] {
  const byHost = new Map<string, BackendSnapshot>();
  const out: BackendSnapshot[] = [];
  for (const b of list) {
    const prev = byHost.get(b.host);
    if (!prev) {
      byHost.set(b.host, b);
      out.push(b);
      continue;
    }
    prev.busy += b.busy;
    prev.open += b.open;
    prev.limit += b.limit;
    prev.downUntil = Math.max(prev.downUntil, b.downUntil);
    if (b.counters) prev.counters = prev.counters ? mergeCounters([prev.counters, b.counters]) : b.counters;
  }
  return out;
}

/** Forget every table (tests). */
export function resetStats(): void {
  tables.clear();
  activity.seq = 0;
  activity.awake = false;
}
