/**
 * generate.ts - (re)write the golden .ref files from the real C proxymap.
 *
 *   bun test/golden/generate.ts [TYPE[/CASE]]...
 *
 * Runs each case of test/golden/<type>/<case>.in against the installed
 * Postfix's proxymap (see lib/golden.ts) and writes <case>.ref. Also prints
 * where our dict layer differs from it, so a new case shows at once whether
 * it passes. Needs Postfix and root (the C proxymap reads main.cf and the
 * tables as any daemon would).
 */
import { writeFileSync } from "node:fs";
import { loadCases, readRef, refPath, runOracle, runOurs, withoutReference } from "./lib/golden";

const filters = process.argv.slice(2);
let differ = 0;
for (const c of loadCases()) {
  const id = `${c.type}/${c.name}`;
  if (filters.length && !filters.some((f) => f === c.type || f === id)) continue;
  const { ref: full, diedAt } = await runOracle(c);
  const expectDeath = c.requests.findIndex((r) => r.dies);
  if (diedAt !== expectDeath) {
    console.log(`${id}: the reference exited at request ${diedAt + 1}, the case says ${expectDeath + 1} (0 = never): not written`);
    differ++;
    continue;
  }
  const old = readRef(c);
  writeFileSync(refPath(c), Buffer.from(full, "latin1"));
  const ref = withoutReference(full);
  const ours = await runOurs(c);
  const status = ours === ref ? "ok" : "DIFFERS";
  if (ours !== ref) differ++;
  console.log(`${id}: ${old === full ? "unchanged" : "written"}, ours ${status}`);
  if (ours !== ref) {
    const a = ref.split("\n");
    const b = ours.split("\n");
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] !== b[i]) console.log(`  line ${i + 1}\n    ref:  ${a[i]}\n    ours: ${b[i]}`);
    }
  }
}
process.exit(differ ? 1 : 0);
