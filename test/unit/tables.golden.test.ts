/**
 * The golden files of the table drivers (test/golden/<type>/*.in, .map,
 * .ref): each case runs through our dict layer and must give its .ref text
 * byte for byte. The .ref files were written from the real C proxymap by
 * test/golden/generate.ts; this test needs no Postfix.
 */
import { describe, expect, test } from "bun:test";
import { loadCases, readRef, runOurs, withoutReference } from "../golden/lib/golden";
import { patternPool, setInlineWalks } from "../../src/tables/pattern/regexRules";

const cases = loadCases();

describe("golden files", () => {
  test("the corpus covers every driver type", () => {
    const types = new Set(cases.map((c) => c.type));
    for (const t of ["texthash", "inline", "static", "fail", "unix", "dict"]) expect(types.has(t)).toBe(true);
  });
  for (const c of cases) {
    test(`${c.type}/${c.name}`, async () => {
      const ref = readRef(c);
      if (ref === undefined) throw new Error(`test/golden/${c.type}/${c.name}.ref is missing: run bun test/golden/generate.ts ${c.type}/${c.name}`);
      expect(await runOurs(c)).toBe(withoutReference(ref));
    });
  }
});

// regexp and pcre walks run on the main thread when their time is bounded,
// else on a worker thread (src/tables/pattern/regexRules.ts): the same
// cases with every walk on a worker must give the same bytes.
describe("golden files, regexp and pcre walks all on a worker thread", () => {
  for (const c of cases.filter((c) => c.type === "regexp" || c.type === "pcre")) {
    test(`${c.type}/${c.name}`, async () => {
      setInlineWalks(false);
      try {
        const calls = patternPool.stats.calls;
        expect(await runOurs(c)).toBe(withoutReference(readRef(c)!));
        if (!c.writer && c.requests.some((r) => r.op === "lookup")) expect(patternPool.stats.calls).toBeGreaterThan(calls);
      } finally {
        setInlineWalks(true);
      }
    });
  }
});
