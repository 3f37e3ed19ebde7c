/**
 * busy.ts - when an event-driven proxymap tells master it is "taken".
 *
 * Postfix's multi_server reports itself taken only while it runs one
 * client's request, and available again right after: master starts another
 * process when every process is in the middle of a request while a new client
 * waits. This process serves many clients at once, so being in a request is no
 * sign of load. The aim is that master starts more processes only when this
 * one is saturated, i.e. when a new client would be served late here.
 *
 * THE RULE. While clients are active, a probe timer ticks every 50 ms and
 * closes a sampling window every 250 ms. The process is saturated when any of:
 *   1. lag: a tick came later than proxymap_busy_lag (default 50ms): the event
 *      loop was blocked (CPU-bound work, a synchronous table, a GC pause), so
 *      a new client would wait that long for its first byte;
 *   2. cpu: over the last window the process used at least proxymap_busy_cpu
 *      percent of one core (default 90): the single JavaScript thread is
 *      full, another process would use another core;
 *   3. requests: requests in flight (received, reply not yet written) reach
 *      proxymap_busy_requests (default 0 = never): for sites that want extra
 *      processes (and so extra database pools) when a slow backend queues work.
 *   4. stalled: lookups wait for a worker thread while every worker of their
 *      pool is stuck in a blocking call (tables/offload/pool.ts: a hostile
 *      regexp, an NSS source that does not answer): this process cannot
 *      serve that table type for now, another process could.
 * It reports "taken" as soon as one condition holds (on a late tick, or when a
 * request arrives over the in-flight limit), and "available" again only after
 * a whole window in which none held, so the state does not flap faster than
 * four times a second. A process that stops accepting (max_use reached, table
 * changed) stays "taken" until it exits. Only changes are reported.
 *
 * With no activity for a second and nothing in flight the probe stops, so idle
 * persistent connections cost no wake-ups.
 *
 * Reads: the limits it is given, process.cpuUsage(). Logs: verbose changes.
 */
import { msg } from "../log/msg";

export interface BusyLimits {
  /** proxymap_busy_lag, milliseconds (0 = off) */
  lagMs: number;
  /** proxymap_busy_cpu, percent of one core (0 = off) */
  cpuPercent: number;
  /** proxymap_busy_requests (0 = off) */
  requests: number;
}

export const TICK_MS = 50;
export const WINDOW_TICKS = 5;
/** Stop probing after this many quiet ticks (one second). */
const QUIET_TICKS = 20;

/** One sampling window's measurements. */
export interface BusySample {
  maxLagMs: number;
  cpuPercent: number;
  maxInFlight: number;
  /** Some blocking-call pool was stalled at a tick. */
  stalled?: boolean;
}

/** Rule conditions 1-3 on one window. */
export function saturated(s: BusySample, l: BusyLimits): boolean {
  return (
    (l.lagMs > 0 && s.maxLagMs >= l.lagMs) ||
    (l.cpuPercent > 0 && s.cpuPercent >= l.cpuPercent) ||
    (l.requests > 0 && s.maxInFlight >= l.requests) ||
    s.stalled === true
  );
}

export class BusyMonitor {
  private busy = false;
  private draining = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private ticks = 0;
  private quiet = 0;
  private active = false;
  private windowStart = 0;
  private cpuStart = 0;
  private sample: BusySample = { maxLagMs: 0, cpuPercent: 0, maxInFlight: 0 };

  constructor(
    private readonly limits: BusyLimits,
    private readonly inFlight: () => number,
    private readonly report: (busy: boolean) => void,
    /** Condition 4: calls wait behind worker threads that are all stuck. */
    private readonly stalled: () => boolean = () => false,
  ) {}

  get isBusy(): boolean {
    return this.busy;
  }

  /** Called when a client sent data: start probing, check the in-flight limit at once. */
  activity(): void {
    this.active = true;
    if (!this.timer) this.startProbe();
    if (this.limits.requests > 0) {
      const n = this.inFlight();
      if (n > this.sample.maxInFlight) this.sample.maxInFlight = n;
      if (n >= this.limits.requests) this.set(true);
    }
  }

  /** No more clients will be accepted: stay taken until exit. */
  drain(): void {
    this.draining = true;
    this.set(true);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private startProbe(): void {
    const now = performance.now();
    this.lastTick = now;
    this.windowStart = now;
    this.cpuStart = cpuMicros();
    this.ticks = 0;
    this.quiet = 0;
    this.sample = { maxLagMs: 0, cpuPercent: 0, maxInFlight: this.inFlight() };
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  private tick(): void {
    const now = performance.now();
    const lag = now - this.lastTick - TICK_MS;
    this.lastTick = now;
    const s = this.sample;
    if (lag > s.maxLagMs) s.maxLagMs = lag;
    const n = this.inFlight();
    if (n > s.maxInFlight) s.maxInFlight = n;
    if (this.limits.lagMs > 0 && lag >= this.limits.lagMs) this.set(true);
    if (this.stalled()) {
      s.stalled = true;
      this.set(true);
    }

    if (++this.ticks < WINDOW_TICKS) return;
    const cpu = cpuMicros();
    const wallUs = (now - this.windowStart) * 1000;
    s.cpuPercent = wallUs > 0 ? ((cpu - this.cpuStart) / wallUs) * 100 : 0;
    const full = saturated(s, this.limits);
    if (msg.verbose > 1)
      msg.info(`busy probe: lag ${s.maxLagMs.toFixed(1)}ms cpu ${s.cpuPercent.toFixed(0)}% in flight ${s.maxInFlight}`);
    this.set(full);
    this.ticks = 0;
    this.windowStart = now;
    this.cpuStart = cpu;
    this.sample = { maxLagMs: 0, cpuPercent: 0, maxInFlight: n };

    // Stop probing when nothing happens, so idle connections cost nothing.
    if (this.active || n > 0) {
      this.active = false;
      this.quiet = 0;
    } else if ((this.quiet += WINDOW_TICKS) >= QUIET_TICKS && !this.busy) {
      this.stop();
    }
  }

  private set(busy: boolean): void {
    if (this.draining) busy = true;
    if (busy === this.busy) return;
    this.busy = busy;
    if (msg.verbose) msg.info(`process is ${busy ? "saturated: reporting taken" : "no longer saturated: reporting available"}`);
    this.report(busy);
  }
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
