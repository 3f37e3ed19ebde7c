/**
 * Differential test against the real C proxymap (Postfix 3.7.11 here): every
 * golden case is sent to /usr/lib/postfix/sbin/proxymap, run without
 * master(8) by test/golden/lib/runpm.pl, and its replies and log lines
 * must equal ours byte for byte, except where the reference process exits
 * (requests marked "!" in the .in file: deliberate differences, where we
 * answer instead). It also checks that the golden .ref files are current.
 *
 * Needs Postfix installed (fails with the install hint otherwise) and root.
 */
import { describe, expect, test } from "bun:test";
import { loadCases, readRef, requireOracle, runOracle, runOurs, withoutReference } from "../golden/lib/golden";

const cases = loadCases();

describe("C proxymap oracle", () => {
  test("the oracle is installed", () => {
    requireOracle();
  });
  for (const c of cases) {
    test(`${c.type}/${c.name}`, async () => {
      const { ref, diedAt } = await runOracle(c);
      // The reference exits exactly where the case says it does.
      expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
      expect(await runOurs(c)).toBe(withoutReference(ref));
      expect(readRef(c)).toBe(ref);
    });
  }
});
