/**
 * server-status.test.ts - the status record sent to master (12 bytes, host
 * byte order: pid, generation, avail), and the busy rule (busy.ts) driven
 * with a fake in-flight count.
 */
import { describe, expect, test } from "bun:test";
import { decodeStatus, encodeStatus, MASTER_STAT_AVAIL, MASTER_STAT_TAKEN } from "../../src/server/masterStatus";
import { BusyMonitor, saturated, TICK_MS, WINDOW_TICKS } from "../../src/server/busy";

describe("MASTER_STATUS record", () => {
  test("three native-endian 32-bit integers", () => {
    const b = encodeStatus(0x01020304, 0o17, MASTER_STAT_AVAIL);
    expect(b.length).toBe(12);
    // x86_64 and arm64 Linux are little-endian, like master on the same host.
    expect([...b]).toEqual([4, 3, 2, 1, 15, 0, 0, 0, 1, 0, 0, 0]);
    expect(decodeStatus(b)).toEqual({ pid: 0x01020304, generation: 0o17, avail: 1 });
    expect(decodeStatus(encodeStatus(7, 0xffffffff, MASTER_STAT_TAKEN))).toEqual({ pid: 7, generation: 0xffffffff, avail: 0 });
  });
});

describe("busy rule", () => {
  const limits = { lagMs: 50, cpuPercent: 90, requests: 10 };
  test("each condition alone saturates", () => {
    expect(saturated({ maxLagMs: 0, cpuPercent: 0, maxInFlight: 0 }, limits)).toBe(false);
    expect(saturated({ maxLagMs: 50, cpuPercent: 0, maxInFlight: 0 }, limits)).toBe(true);
    expect(saturated({ maxLagMs: 0, cpuPercent: 95, maxInFlight: 0 }, limits)).toBe(true);
    expect(saturated({ maxLagMs: 0, cpuPercent: 0, maxInFlight: 10 }, limits)).toBe(true);
  });
  test("a limit of 0 turns its condition off", () => {
    expect(saturated({ maxLagMs: 999, cpuPercent: 100, maxInFlight: 999 }, { lagMs: 0, cpuPercent: 0, requests: 0 })).toBe(false);
  });

  test("in-flight limit: taken at once, available after a quiet window, taken for good when draining", async () => {
    let inFlight = 0;
    const reports: boolean[] = [];
    const m = new BusyMonitor({ lagMs: 0, cpuPercent: 0, requests: 3 }, () => inFlight, (b) => reports.push(b));
    inFlight = 3;
    m.activity();
    expect(reports).toEqual([true]);
    inFlight = 0;
    // Two windows: the one that saw 3 in flight, then a quiet one.
    await Bun.sleep(TICK_MS * WINDOW_TICKS * 2 + 100);
    expect(reports).toEqual([true, false]);
    m.drain();
    m.activity();
    await Bun.sleep(TICK_MS * WINDOW_TICKS + 100);
    expect(reports).toEqual([true, false, true]);
    m.stop();
  });

  test("a blocked event loop reports taken", async () => {
    const reports: boolean[] = [];
    const m = new BusyMonitor({ lagMs: 50, cpuPercent: 0, requests: 0 }, () => 0, (b) => reports.push(b));
    m.activity();
    await Bun.sleep(10);
    const t = performance.now();
    while (performance.now() - t < 150) {
      // block the loop
    }
    await Bun.sleep(TICK_MS * 2);
    expect(reports[0]).toBe(true);
    m.stop();
  });

  test("no activity: the probe stops (no wake-ups for idle connections)", async () => {
    const reports: boolean[] = [];
    // A lag bound far above what a busy test machine can cause: this is about the probe's timer stopping.
    const m = new BusyMonitor({ lagMs: 1000, cpuPercent: 101, requests: 0 }, () => 0, (b) => reports.push(b));
    m.activity();
    await Bun.sleep(1600);
    expect((m as unknown as { timer: unknown }).timer).toBeUndefined();
    expect(reports).toEqual([]);
  });
});
