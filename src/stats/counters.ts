/**
 * counters.ts - what is counted for one table, or for one backend server
 * of a table: requests by operation and outcome, requests in flight, and
 * latency histograms since start, for the interval in progress and for
 * the last complete one.
 *
 * Intervals are aligned to the wall clock (multiples of the interval
 * length since the epoch), so that every process of an instance cuts them
 * at the same moments and `proxymap --status` can add them up. Counters
 * roll over lazily: each one compares its interval with `clock.index`
 * when it counts (and before every snapshot). The statistics clock
 * (reporter.ts) keeps `clock.index` current while requests come in and
 * sets it first thing when they start again after a pause; no timer per
 * counter and no allocation per request. A request touches only the
 * since-start numbers (and the interval's largest latency): the interval
 * in progress is their difference from a copy taken when it began.
 *
 * The same class serves table counts (kept by the dict layer, ops.ts) and
 * per-host counts (kept by a driver's pool and reported through the
 * optional Table.backends(), table.ts).
 *
 * Pure (no I/O).
 */
import { Histogram, type HistogramJson } from "./histogram";

/** Operations, as indexes into the counts. */
export const Op = { lookup: 0, update: 1, delete: 2, sequence: 3 } as const;
export type OpIndex = (typeof Op)[keyof typeof Op];
export const OP_NAMES = ["lookup", "update", "delete", "sequence"] as const;

/** Outcomes: OK, NOKEY (not found), RETRY, CONFIG. */
export const Outcome = { ok: 0, notfound: 1, retry: 2, config: 3 } as const;
export type OutcomeIndex = (typeof Outcome)[keyof typeof Outcome];
export const OUTCOME_NAMES = ["ok", "notfound", "retry", "config"] as const;

/** proxymap status code -> outcome index (BAD and DENY are not table outcomes: -1). */
const OUTCOME_OF_STATUS = [0, 1, 2, -1, -1, 3];

/** The interval in progress, shared by every counter of the process. */
export const clock = {
  /** Interval length, milliseconds. */
  lengthMs: 60_000,
  /** Index of the interval in progress: floor(now / lengthMs). */
  index: 0,
  /**
   * Called when the clock moves past interval `from`, before any counter
   * moves on: counters whose interval is `from` still hold it as
   * `current` (the interval log lines are made there). Must not call sync().
   */
  onAdvance: undefined as ((from: number) => void) | undefined,
  /** Set index from the wall clock; returns it. */
  sync(now = Date.now()): number {
    const index = Math.floor(now / this.lengthMs);
    if (index !== this.index) {
      const from = this.index;
      this.index = index;
      this.onAdvance?.(from);
    }
    return index;
  },
};

/** Cell of (op, outcome) in the counts array. */
const cell = (op: number, outcome: number) => op * 4 + outcome;

/** Counts of one period: requests by op and outcome, and their latency. */
export class Period {
  readonly counts = new Float64Array(16);
  readonly latency = new Histogram();

  clear(): void {
    this.counts.fill(0);
    this.latency.clear();
  }

  add(o: Period): void {
    for (let i = 0; i < 16; i++) this.counts[i] += o.counts[i];
    this.latency.add(o.latency);
  }

  count(op: number, outcome: number): number {
    return this.counts[cell(op, outcome)];
  }

  /** Requests of one operation, every outcome. */
  ops(op: number): number {
    const c = this.counts;
    const b = op * 4;
    return c[b] + c[b + 1] + c[b + 2] + c[b + 3];
  }

  /** Requests with this outcome, every operation. */
  outcomes(outcome: number): number {
    const c = this.counts;
    return c[outcome] + c[4 + outcome] + c[8 + outcome] + c[12 + outcome];
  }

  /** Any request at all. */
  get total(): number {
    let t = 0;
    for (let i = 0; i < 16; i++) t += this.counts[i];
    return t;
  }

  toJSON(): PeriodJson {
    return { c: Array.from(this.counts), l: this.latency.toJSON() };
  }

  static fromJSON(j: PeriodJson | undefined): Period {
    const p = new Period();
    if (!j) return p;
    for (let i = 0; i < 16 && i < j.c.length; i++) p.counts[i] = Number(j.c[i]) || 0;
    p.latency.add(Histogram.fromJSON(j.l));
    return p;
  }
}

export interface PeriodJson {
  /** counts[op * 4 + outcome] */
  c: number[];
  l: HistogramJson;
}

export class Counters {
  /** Since the process started: the only numbers a request touches. */
  readonly total = new Period();
  /** `total` when the interval in progress began; the interval is the difference. */
  private readonly base = new Period();
  /** Largest timed request of the interval in progress (ms), and when. */
  private curMax = 0;
  private curMaxAt = 0;
  /** The last complete interval (empty when nothing happened in it). */
  readonly last = new Period();
  /** Index of the interval in progress (time / interval length). */
  interval = -1;
  /** Requests that have started and not ended. */
  inflight = 0;

  /** Count one finished request; ms < 0 = not timed. */
  done(op: OpIndex, status: number, ms: number): void {
    const outcome = OUTCOME_OF_STATUS[status];
    if (outcome === undefined || outcome < 0) return;
    this.outcome(op, outcome as OutcomeIndex, ms);
  }

  /** Same as done() with an outcome index instead of a status code (pools, drivers). */
  outcome(op: OpIndex, outcome: OutcomeIndex, ms: number): void {
    if (this.interval !== clock.index) this.rotate(clock.index);
    this.total.counts[op * 4 + outcome]++;
    if (ms >= 0) {
      this.total.latency.record(ms);
      if (ms > this.curMax) {
        this.curMax = ms;
        this.curMaxAt = Date.now();
      }
    }
  }

  /** The interval in progress: what was counted since it began. */
  get current(): Period {
    const p = new Period();
    const t = this.total;
    const b = this.base;
    for (let i = 0; i < 16; i++) p.counts[i] = t.counts[i] - b.counts[i];
    const h = p.latency;
    for (let i = 0; i < h.counts.length; i++) h.counts[i] = t.latency.counts[i] - b.latency.counts[i];
    h.n = t.latency.n - b.latency.n;
    h.sumMs = t.latency.sumMs - b.latency.sumMs;
    h.maxMs = this.curMax;
    h.maxAt = this.curMaxAt;
    return p;
  }

  /**
   * Move to interval `index`: the interval in progress becomes the last
   * complete one when it is the one just before; after a longer pause the
   * last complete interval is empty.
   */
  rotate(index: number): void {
    if (index === this.interval) return;
    this.last.clear();
    if (this.interval >= 0 && index === this.interval + 1) this.last.add(this.current);
    this.base.clear();
    this.base.add(this.total);
    this.curMax = 0;
    this.curMaxAt = 0;
    this.interval = index;
  }

  toJSON(): CountersJson {
    return { interval: this.interval, total: this.total.toJSON(), current: this.current.toJSON(), last: this.last.toJSON(), inflight: this.inflight };
  }
}

export interface CountersJson {
  /** Index of the interval `current` belongs to. */
  interval: number;
  total: PeriodJson;
  current: PeriodJson;
  last: PeriodJson;
  inflight: number;
}

/**
 * The last complete interval before interval `index`, from a snapshot
 * taken earlier: its `last` when it was taken during `index`, its
 * `current` when taken during the interval before (the counts stopped
 * during it), else nothing.
 */
export function lastCompleteInterval(j: CountersJson, index: number): Period {
  if (j.interval === index) return Period.fromJSON(j.last);
  if (j.interval === index - 1) return Period.fromJSON(j.current);
  return new Period();
}

/** Outcome of a finished request from a proxymap status code (pools that know only statuses). */
export function outcomeOfStatus(status: number): number {
  return OUTCOME_OF_STATUS[status] ?? -1;
}
