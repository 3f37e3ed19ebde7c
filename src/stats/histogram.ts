/**
 * histogram.ts - a fixed-size latency histogram with logarithmic buckets,
 * the one shape every statistic of this process uses (tables, backend
 * hosts, since start and per interval).
 *
 * Durations are counted in units of 1/16 microsecond (62.5 ns), as an
 * unsigned 32-bit number: up to 268 s, longer ones land in the last
 * bucket. Units 0..7 have a bucket each; above that each power of two is
 * cut into 8 equal buckets (3 bits of mantissa), so a bucket is at most
 * 12.5% wide and a percentile read from it is within about 6% of the true
 * value. That makes 240 buckets (960 bytes): recording is a clz32, a shift
 * and an increment, no allocation, whatever the number of samples (HDR
 * histograms use the same idea; no library is needed for 20 lines).
 *
 * Histograms add bucket by bucket, so merging processes (proxymap
 * --status) gives the same percentiles as one histogram of all samples.
 *
 * Pure.
 */

/** Units per millisecond: one unit is 1/16 microsecond. */
export const UNITS_PER_MS = 16_000;
export const BUCKETS = 240;
const MAX_UNITS = 0xffffffff;

/** The bucket of a duration in units. */
export function bucketOf(units: number): number {
  const x = units >= MAX_UNITS ? MAX_UNITS : units >>> 0;
  if (x < 8) return x;
  const shift = 28 - Math.clz32(x); // = floor(log2 x) - 3
  return shift * 8 + (x >>> shift);
}

/** The smallest duration (units) of a bucket. */
export function bucketLow(idx: number): number {
  if (idx < 8) return idx;
  const shift = (idx >> 3) - 1;
  return (8 + (idx & 7)) * 2 ** shift;
}

/** The first duration (units) past a bucket. */
export function bucketHigh(idx: number): number {
  return idx + 1 >= BUCKETS ? 2 ** 32 : bucketLow(idx + 1);
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  /** Samples recorded. */
  n = 0;
  /** Sum of the samples, milliseconds. */
  sumMs = 0;
  /** Largest sample, milliseconds, and when it was taken (ms since the epoch; 0 = unknown). */
  maxMs = 0;
  maxAt = 0;

  /** Record one duration in milliseconds. */
  record(ms: number): void {
    this.counts[bucketOf(ms * UNITS_PER_MS)]++;
    this.n++;
    this.sumMs += ms;
    if (ms > this.maxMs) {
      this.maxMs = ms;
      this.maxAt = Date.now();
    }
  }

  clear(): void {
    this.counts.fill(0);
    this.n = 0;
    this.sumMs = 0;
    this.maxMs = 0;
    this.maxAt = 0;
  }

  /** Add another histogram's samples to this one. */
  add(o: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
    this.sumMs += o.sumMs;
    if (o.maxMs > this.maxMs) {
      this.maxMs = o.maxMs;
      this.maxAt = o.maxAt;
    }
  }

  /**
   * The q-quantile (0 < q <= 1) in milliseconds: the middle of the bucket
   * holding the sample of that rank, never above the largest sample; 0
   * without samples.
   */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const mid = (bucketLow(i) + bucketHigh(i)) / 2 / UNITS_PER_MS;
        return Math.min(mid, this.maxMs);
      }
    }
    return this.maxMs;
  }

  /** Samples of at most `ms` milliseconds, counting a bucket when all of it fits (Prometheus `le`). */
  countUpTo(ms: number): number {
    const limit = ms * UNITS_PER_MS;
    let c = 0;
    for (let i = 0; i < BUCKETS && bucketHigh(i) <= limit; i++) c += this.counts[i];
    return c;
  }

  /** Compact form for the status files: [bucket, count] pairs of the non-empty buckets. */
  toJSON(): HistogramJson {
    const b: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] !== 0) b.push(i, this.counts[i]);
    return { n: this.n, sum: this.sumMs, max: this.maxMs, maxAt: this.maxAt, b };
  }

  static fromJSON(j: HistogramJson | undefined): Histogram {
    const h = new Histogram();
    if (!j) return h;
    for (let i = 0; i + 1 < j.b.length; i += 2) if (j.b[i] >= 0 && j.b[i] < BUCKETS) h.counts[j.b[i]] = j.b[i + 1];
    h.n = j.n;
    h.sumMs = j.sum;
    h.maxMs = j.max;
    h.maxAt = j.maxAt;
    return h;
  }
}

export interface HistogramJson {
  n: number;
  sum: number;
  max: number;
  maxAt: number;
  /** bucket, count, bucket, count, ... */
  b: number[];
}
