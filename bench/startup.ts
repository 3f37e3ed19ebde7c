/**
 * startup.ts - start-up of the C proxymap and ours under master(8), in one
 * run: connect to the first reply with a fresh process each time
 * (max_use=1, so master forks and execs a new one per connection), and the
 * resident memory of that process right after its first reply.
 *
 *   bun bench/startup.ts [--runs 20] [--table static:x] [--ours PATH]
 *
 * Two private Postfix instances (test/helpers/postfix-instance.ts); runs
 * alternate between them. Prints the median and the spread per binary and
 * the ratio. Needs root, Postfix, and dist/proxymap (npm run build).
 */
import { readFileSync } from "node:fs";
import { PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { WireClient } from "../test/helpers/wire";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const RUNS = Number(arg("--runs", "20"));
const TABLE = arg("--table", "static:x");
const OURS = arg("--ours", "");

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Connect, look up, time it; the serving process's RSS while the connection is still open. */
async function once(inst: PostfixInstance): Promise<[number, number]> {
  const t = Date.now();
  while (inst.servicePids("proxymap").length && Date.now() - t < 5000) await Bun.sleep(2);
  const t0 = performance.now();
  const cl = await WireClient.connect(inst.socket("proxymap"));
  const r = await cl.request([["request", "lookup"], ["table", TABLE], ["flags", "524353"], ["key", "k"]]);
  const ms = performance.now() - t0;
  const rss = inst.servicePids("proxymap").map(rssKb).reduce((a, b) => Math.max(a, b), 0);
  cl.close();
  if (r.kind !== "reply") throw new Error(`start-up probe: ${r.kind}`);
  return [ms, rss];
}

const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))];

requirePostfix();
requireOurBinary();
const impls: [string, ProxymapImpl][] = [["C", "c"], ["ours", OURS ? { path: OURS } : "ours"]];
const insts = new Map<string, PostfixInstance>();
const ms: Record<string, number[]> = { C: [], ours: [] };
const rss: Record<string, number[]> = { C: [], ours: [] };
try {
  for (const [name, impl] of impls)
    insts.set(name, await PostfixInstance.start({ impl, label: `start-${name}`, mainCf: { proxy_read_maps: `proxy:${TABLE}` }, proxymapArgs: ["-o", "max_use=1"] }));
  for (const [name] of impls) await once(insts.get(name)!); // first start: caches, page cache
  for (let i = 0; i < RUNS; i++)
    for (const [name] of i % 2 ? [...impls].reverse() : impls) {
      const [t, r] = await once(insts.get(name)!);
      ms[name].push(t);
      rss[name].push(r);
    }
} finally {
  for (const i of insts.values()) i.stop();
}
for (const [name] of impls)
  console.log(
    `${name.padEnd(4)} start-up to first reply: median ${q(ms[name], 0.5).toFixed(1)} ms (p10 ${q(ms[name], 0.1).toFixed(1)}, p90 ${q(ms[name], 0.9).toFixed(1)}); RSS after it: median ${(q(rss[name], 0.5) / 1024).toFixed(1)} MB`,
  );
console.log(`ratio ours/C: start-up ${(q(ms.ours, 0.5) / q(ms.C, 0.5)).toFixed(2)}x, RSS ${(q(rss.ours, 0.5) / q(rss.C, 0.5)).toFixed(2)}x (${RUNS} runs each, table ${TABLE})`);
