/**
 * The golden files of the table drivers (test/golden/<type>/*.in, .map,
 * .ref): each case runs through our dict layer and must give its .ref text
 * byte for byte. The .ref files were written from the real C proxymap by
 * test/golden/generate.ts; this test needs no Postfix.
 */
import { describe, expect, test } from "bun:test";
import { loadCases, readRef, runOurs, withoutReference } from "../golden/lib/golden";

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
