/**
 * stats-micro.ts - the statistics' cost per operation in the dict layer,
 * without sockets or other processes: dictGet() on a texthash table with
 * statistics on and off, alternating, many rounds; prints ns per lookup
 * of CPU time for each and the difference (median and range over the
 * rounds; CPU time, so that time spent descheduled on a shared machine
 * does not count).
 * Together with the CPU per lookup that bench/stats-cost.ts measures for
 * the whole daemon, the difference gives the share the statistics take.
 *
 *   bun bench/stats-micro.ts [--rounds 15] [--ops 2000000]
 *
 * Runs from the sources (no build, no root). Logs nothing but its result.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resetStats, setStatsEnabled } from "../src/stats/collector";
import { closeAllDicts, dictGet, openDict, type Dict } from "../src/tables/dict/index";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const ROUNDS = Number(arg("--rounds", "15"));
const OPS = Number(arg("--ops", "2000000"));
const FLAGS = 524353;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), "pm-statsmicro-"));
const keys = Array.from({ length: 10000 }, (_, i) => `user${i}@example.com`);
writeFileSync(join(dir, "t"), keys.map((k, i) => `${k}\tmailbox-${i}@store.example.com`).join("\n") + "\n");

async function open(on: boolean): Promise<Dict> {
  setStatsEnabled(on);
  // A distinct instance per setting: the counters are attached when an instance is made.
  return openDict(`texthash:${join(dir, "t")}`, false, on ? FLAGS : FLAGS | 0x4000, "instance");
}

/** ns of CPU time (user + system, this process) per lookup: time spent descheduled does not count. */
function run(d: Dict): number {
  const t = process.cpuUsage();
  let found = 0;
  for (let i = 0; i < OPS; i++) if ((dictGet(d, keys[(i * 7) % 10000], FLAGS) as { status: number }).status === 0) found++;
  if (found !== OPS) throw new Error("lookups failed");
  const u = process.cpuUsage(t);
  return ((u.user + u.system) * 1000) / OPS;
}

const on = await open(true);
const off = await open(false);
run(on);
run(off); // warm up
const ns: Record<string, number[]> = { on: [], off: [] };
const diff: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = r % 2 ? run(off) : run(on);
  const b = r % 2 ? run(on) : run(off);
  const [o, f] = r % 2 ? [b, a] : [a, b];
  ns.on.push(o);
  ns.off.push(f);
  diff.push(o - f);
}
console.log(
  `dictGet on texthash, ${ROUNDS} rounds of ${OPS}: on ${median(ns.on).toFixed(1)} ns, off ${median(ns.off).toFixed(1)} ns; ` +
    `statistics add ${median(diff).toFixed(1)} ns per lookup (median; range ${Math.min(...diff).toFixed(1)}..${Math.max(...diff).toFixed(1)})`,
);
await closeAllDicts();
resetStats();
rmSync(dir, { recursive: true, force: true });
