/**
 * memory-bounds.test.ts - the OK-reply cache is bounded by bytes (whatever
 * the size of the values) and still serves popular short values; the idle
 * collector runs one full collection after a burst of traffic once the
 * process is quiet, and none for small traffic or while busy.
 */
import { describe, expect, test } from "bun:test";
import { lookupReply, okReplyCacheUsage, OK_CACHE_BYTES } from "../../src/protocol/reply";
import { IdleCollector } from "../../src/server/idleGc";

describe("OK-reply cache", () => {
  test("1,000 distinct 1 MB values: the cache stays within its byte bound, replies are right", () => {
    const big = "v".repeat(1 << 20);
    for (let i = 0; i < 1000; i++) {
      const value = `${i}${big}`;
      const r = lookupReply("classic", 0, 0, value);
      expect(r.length).toBe(value.length + 17);
    }
    expect(okReplyCacheUsage().bytes).toBeLessThanOrEqual(OK_CACHE_BYTES);
  });

  test("100,000 distinct short values: within the byte bound; a popular value is the same reply object", () => {
    for (let i = 0; i < 100_000; i++) lookupReply("classic", 0, 0, `value-${i}`);
    expect(okReplyCacheUsage().bytes).toBeLessThanOrEqual(OK_CACHE_BYTES);
    expect(okReplyCacheUsage().entries).toBeGreaterThan(1000);
    const a = lookupReply("classic", 0, 0, "popular");
    expect(lookupReply("classic", 0, 0, "popular")).toBe(a);
    expect(a.toString("latin1")).toBe("status\x000\x00value\x00popular\x00\x00");
  });

  test("a short value sliced from a huge string is cached as its own copy", () => {
    const huge = "k".repeat(1 << 20) + "tail";
    const value = huge.slice(-8);
    const r = lookupReply("classic", 0, 0, value);
    expect(lookupReply("classic", 0, 0, "kkkktail")).toBe(r);
  });
});

describe("idle collector", () => {
  test("collects once after a burst, when nothing moved for the quiet time", async () => {
    let runs = 0;
    const gc = new IdleCollector(() => runs++, 1000, 50);
    gc.moved(600);
    await Bun.sleep(100);
    expect(runs).toBe(0); // below the threshold
    gc.moved(600);
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(20); // still busy: no collection yet
      gc.moved(10);
    }
    expect(runs).toBe(0);
    await Bun.sleep(150);
    expect(runs).toBe(1);
    await Bun.sleep(100);
    expect(runs).toBe(1); // once per burst
    gc.stop();
  });
});
