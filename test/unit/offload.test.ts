/**
 * offload.test.ts - the worker pools that run blocking calls off the event
 * loop (src/tables/offload/pool.ts): lazy start, answers and errors, a
 * stuck call that does not delay the next one (another worker starts), a
 * pool whose workers are all stuck (calls queue, the busy rule reports the
 * process taken), a worker that dies, calls queued behind a busy worker
 * sent together (one table's per message). The stuck calls are real: a POSIX
 * back-reference that glibc needs a few hundred milliseconds for.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { MAX_BATCH, OffloadPool, OffloadError, STALL_MS, offloadStalled } from "../../src/tables/offload/pool";
import type { MatchProgram, WalkAnswer } from "../../src/tables/pattern/matchJobs";
import { REG_EXTENDED } from "../../src/sys/regex";
import { BusyMonitor, TICK_MS } from "../../src/server/busy";
import { setLogSinks } from "../../src/log/msg";

/** One rule whose walk takes glibc a while on SLOW_KEY (polynomial in its length). */
const PROGRAM: MatchProgram = {
  key: "offload-test",
  type: "regexp",
  rules: [{ op: 1, endifAt: -1, first: { text: "(.*)(.*)(.*)(.*)(.*)\\5\\4\\3\\2\\1x", options: REG_EXTENDED }, firstMatch: true, secondMatch: true, nsub: 0 }],
};
const SLOW_KEY = "ab".repeat(16);
const LOAD = { key: PROGRAM.key, job: "match.load", arg: JSON.stringify(PROGRAM) };

function slowWalk(pool: OffloadPool, subject = SLOW_KEY): Promise<WalkAnswer> {
  return pool.call<WalkAnswer>("match.walk", { key: PROGRAM.key, from: 0, subject }, LOAD);
}

/** Wait until cond() holds (workers start in 100-250 ms from source, more on a busy machine). */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await Bun.sleep(5);
}

/** The error a promise rejects with (expect().rejects does not settle on these in Bun 1.4.5). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("resolved where a rejection was expected");
}

const pools: OffloadPool[] = [];
function pool(max: number, retireMs?: number): OffloadPool {
  const p = new OffloadPool("test", max, retireMs);
  pools.push(p);
  return p;
}

afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

describe("offload pools", () => {
  test("no worker before the first call; answers and job errors come back", async () => {
    const p = pool(2);
    expect(p.workers).toBe(0);
    expect(await p.call("offload.ping", null)).toBe("pong");
    expect(p.workers).toBe(1);
    const e = await rejection(p.call("no.such.job", null));
    expect(e).toBeInstanceOf(OffloadError);
    expect((e as Error).message).toBe("unknown job no.such.job");
    // Calls one after the other never find the worker busy: one worker.
    for (let i = 0; i < 200; i++) await p.call("offload.ping", null);
    expect(p.workers).toBe(1);
  });

  test("calls queued behind a busy worker go to it in one message, one job and table per batch, each with its own answer", async () => {
    const p = pool(1);
    await p.call("offload.ping", null);
    await slowWalk(p, "a"); // the walk's rules loaded
    const sent = p.stats.messages;
    // The first call finds the worker free and goes alone, at once.
    const first = slowWalk(p, "ab".repeat(8));
    const pings = Array.from({ length: MAX_BATCH + 4 }, () => p.call("offload.ping", null));
    const bad = p.call("no.such.job", null);
    const walks = [slowWalk(p, "y"), slowWalk(p, "z")]; // no "x": no match
    const more = Array.from({ length: 3 }, () => p.call("offload.ping", null));
    expect(p.stats.messages).toBe(sent + 1);
    expect(await first).toEqual({ at: -1, offsets: [], errors: [] });
    expect(await Promise.all([...pings, ...more])).toEqual(Array(MAX_BATCH + 7).fill("pong"));
    expect(((await rejection(bad)) as Error).message).toBe("unknown job no.such.job");
    expect(await Promise.all(walks)).toEqual([
      { at: -1, offsets: [], errors: [] },
      { at: -1, offsets: [], errors: [] },
    ]);
    // The first walk; MAX_BATCH pings; the other 4 pings with the 3 queued
    // after the others; the unknown job; the two walks.
    expect(p.stats.messages).toBe(sent + 5);
    expect(p.workers).toBe(1);
  });

  test("a stuck call does not delay the next: another worker starts after STALL_MS", async () => {
    const p = pool(2);
    // Both workers up first: a worker's start (modules loaded from source
    // here, 100-250 ms) is not what this test measures.
    await Promise.all([slowWalk(p), Bun.sleep(STALL_MS * 2).then(() => p.call("offload.ping", null))]);
    expect(p.workers).toBe(2);
    expect(p.stats.started).toBe(2);
    let slowDone = false;
    const slow = slowWalk(p).then((a) => {
      slowDone = true;
      return a;
    });
    await Bun.sleep(STALL_MS);
    const t1 = performance.now();
    expect(await p.call("offload.ping", null)).toBe("pong");
    expect(performance.now() - t1).toBeLessThan(50);
    // The slow call really was still running (else this test proves nothing).
    expect(slowDone).toBe(false);
    expect(await slow).toEqual({ at: -1, offsets: [], errors: [] });
  });

  test("every worker stuck: calls queue, offloadStalled() is true and the busy rule reports taken", async () => {
    const p = pool(2);
    // Both workers up, then two walks that take a couple of seconds.
    await Promise.all([slowWalk(p, "ab"), Bun.sleep(STALL_MS).then(() => slowWalk(p, "ab"))]);
    const stuck = [slowWalk(p, "ab".repeat(19)), slowWalk(p, "ab".repeat(19))];
    const queued = p.call("offload.ping", null);
    await until(() => p.stalled);
    expect(p.workers).toBe(2);
    expect(p.stalled).toBe(true);
    expect(offloadStalled()).toBe(true);
    const reports: boolean[] = [];
    const m = new BusyMonitor({ lagMs: 0, cpuPercent: 0, requests: 0 }, () => 1, (b) => reports.push(b), offloadStalled);
    m.activity();
    await Bun.sleep(TICK_MS * 3);
    expect(reports).toEqual([true]);
    m.stop();
    await Promise.all(stuck);
    expect(await queued).toBe("pong");
    expect(p.stalled).toBe(false);
    expect(offloadStalled()).toBe(false);
  });

  test("an extra worker that stays idle is stopped again; the first stays", async () => {
    const p = pool(2, 300);
    await Promise.all([slowWalk(p), Bun.sleep(STALL_MS * 2).then(() => p.call("offload.ping", null))]);
    expect(p.stats.started).toBe(2);
    await Bun.sleep(1000);
    expect(p.workers).toBe(1);
    expect(await p.call("offload.ping", null)).toBe("pong");
  });

  test("a worker that dies fails its call; the next call starts another", async () => {
    const logs: string[] = [];
    setLogSinks([{ write: (_s, line) => logs.push(line) }]);
    try {
      const p = pool(1);
      const slow = slowWalk(p);
      await Bun.sleep(20);
      (p as unknown as { slots: Array<{ worker: Worker }> }).slots[0].worker.terminate();
      expect(await rejection(slow)).toBeInstanceOf(OffloadError);
      expect(await p.call("offload.ping", null)).toBe("pong");
      expect(logs).toEqual(["warning: test worker: worker exited"]);
    } finally {
      setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
    }
  });
});
