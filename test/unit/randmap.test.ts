/**
 * randmap.test.ts - randmap:{...} beyond the golden cases (one-member
 * lists, syntax errors and -F files are compared with the C proxymap in
 * test/golden/randmap): every answer is one of the members, the pick is
 * spread over all of them, and the C proxymap's answers for the same list
 * are members too (its pick cannot be compared byte for byte).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { parseIn, runOracle } from "../golden/lib/golden";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { DictFlag, Status } from "../../src/protocol/constants";

afterAll(closeAllDicts);

describe("randmap", () => {
  test("answers are members, spread over all of them, whatever the key", async () => {
    const d = await openDict("randmap:{a, {b c}, d}", false, 0);
    expect(d.flags & DictFlag.PATTERN).toBe(DictFlag.PATTERN);
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const r = await dictGet(d, `key${i % 7}`, 0);
      expect(r.status).toBe(Status.OK);
      counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["a", "d", "{b c}"]);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(800); // expected 1000 each; 800 is > 7 standard deviations away
      expect(n).toBeLessThan(1200);
    }
  });

  test("the C proxymap also answers only members, and not always the same one", async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `lookup "randmap:{a, {b c}, d}" 0 "k${i}"`).join("\n");
    const { ref } = await runOracle(parseIn("randmap", "live", lines));
    const values = [...ref.matchAll(/^< status="0" value="(.*)"$/gm)].map((m) => m[1]);
    expect(values.length).toBe(30);
    for (const v of values) expect(["a", "{b c}", "d"]).toContain(v);
    expect(new Set(values).size).toBeGreaterThan(1);
  }, 30_000);
});
