/**
 * startup.ts - start-up of the C proxymap and ours under master(8), in one
 * run: connect to the first reply with a fresh process each time
 * (max_use=1, so master forks and execs a new one per connection), and the
 * resident memory of that process right after its first reply; for a small
 * table (static:x) and for a 10,000-key texthash table.
 *
 *   bun bench/startup.ts [--runs 20] [--keys 10000] [--ours PATH] [--no-floor]
 *
 * Private Postfix instances (test/helpers/postfix-instance.ts), one per
 * binary and table; the runs take turns between them. Two yardsticks of
 * Bun's own, built here with the bun of node_modules:
 *   - a compiled Bun hello-world (`console.log`, then it waits): its
 *     resident memory, which issue 16's memory target is relative to;
 *   - "bun floor": a compiled Bun program that master runs as proxymap and
 *     that does nothing but greet, answer one lookup with a fixed reply and
 *     exit: the least time any Bun program takes to a first reply under
 *     master (process start of the Bun runtime included), so how much of
 *     ours is Bun's and how much is our own work.
 * Prints, per table, the median with p10/p90 and the ratios: start-up
 * ours/C (target <= 2.0x) and RSS ours/hello-world (target <= 1.5x).
 * Needs root, Postfix, and dist/proxymap (npm run build).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { REPO_ROOT, requireOurBinary, requirePostfix } from "../test/helpers/require";
import { WireClient } from "../test/helpers/wire";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const RUNS = Number(arg("--runs", "20"));
const NKEYS = Number(arg("--keys", "10000"));
const OURS = arg("--ours", "");
const FLOOR = !process.argv.includes("--no-floor");
const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun");

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))];

/** Compile a one-file Bun program into dir/name (the same bun and options as build.ts's). */
function compile(dir: string, name: string, source: string): string {
  writeFileSync(join(dir, `${name}.ts`), source);
  const out = join(dir, name);
  const r = Bun.spawnSync([BUN, "build", "--compile", "--minify", "--bytecode", join(dir, `${name}.ts`), "--outfile", out], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun build ${name}: ${r.stderr.toString()}`);
  return out;
}

/** Resident memory of a compiled hello-world once it has printed (median of 5 runs). */
async function helloWorldRss(exe: string): Promise<number> {
  const kb: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p = Bun.spawn([exe], { stdout: "pipe", stderr: "ignore" });
    const reader = p.stdout.getReader();
    await reader.read(); // "hello" printed: started
    await Bun.sleep(200);
    kb.push(rssKb(p.pid));
    p.kill();
    await p.exited;
  }
  return q(kb, 0.5);
}

/** Connect, look up, time it; the serving process's RSS while the connection is still open. */
async function once(inst: PostfixInstance, table: string): Promise<[number, number]> {
  const t = Date.now();
  while (inst.servicePids("proxymap").length && Date.now() - t < 5000) await Bun.sleep(2);
  const t0 = performance.now();
  const cl = await WireClient.connect(inst.socket("proxymap"));
  const r = await cl.request([["request", "lookup"], ["table", table], ["flags", "524353"], ["key", "user1@example.com"]]);
  const ms = performance.now() - t0;
  const rss = inst.servicePids("proxymap").map(rssKb).reduce((a, b) => Math.max(a, b), 0);
  cl.close();
  if (r.kind !== "reply") throw new Error(`start-up probe: ${r.kind}`);
  return [ms, rss];
}

requirePostfix();
requireOurBinary();
const dir = mkdtempSync(join("/tmp", "bench-startup-"));
chmodSync(dir, 0o755);
const texthash = join(dir, "virtual");
writeFileSync(texthash, Array.from({ length: NKEYS }, (_, i) => `user${i}@example.com\tmailbox-${i}@store.example.com\n`).join(""), { mode: 0o644 });
const tables = ["static:x", `texthash:${texthash}`];
const hello = compile(dir, "hello", `console.log("hello"); setTimeout(() => {}, 60_000);\n`);
const impls: [string, ProxymapImpl][] = [
  ["C", "c"],
  ["ours", OURS ? { path: OURS } : "ours"],
];
if (FLOOR) {
  const floor = compile(
    dir,
    "floor",
    `// Greet, answer one lookup with a fixed reply, exit: no configuration, no table.
const greet = Buffer.from("protocol\\x00proxymap_protocol\\x00\\x00", "latin1");
const reply = Buffer.from("status\\x000\\x00value\\x00x\\x00\\x00", "latin1");
Bun.listen({ fd: 6, socket: { open(s) { s.write(greet); }, data(s) { s.write(reply); s.end(); setTimeout(() => process.exit(0), 5); } } } as any);
`,
  );
  impls.push(["bun floor", { path: floor }]);
}
const insts = new Map<string, PostfixInstance>();
const ms = new Map<string, number[]>();
const rss = new Map<string, number[]>();
const key = (impl: string, table: string) => `${impl} ${table}`;
let helloKb = 0;
try {
  helloKb = await helloWorldRss(hello);
  for (const table of tables)
    for (const [name, impl] of impls) {
      const inst = await PostfixInstance.start({ impl, label: `start-${name.replace(" ", "-")}`, mainCf: { proxy_read_maps: `proxy:${table}` }, proxymapArgs: ["-o", "max_use=1"] });
      insts.set(key(name, table), inst);
      await once(inst, table); // first start: caches, page cache
      ms.set(key(name, table), []);
      rss.set(key(name, table), []);
    }
  for (let i = 0; i < RUNS; i++)
    for (const table of tables)
      for (const [name] of i % 2 ? [...impls].reverse() : impls) {
        const [t, r] = await once(insts.get(key(name, table))!, table);
        ms.get(key(name, table))!.push(t);
        rss.get(key(name, table))!.push(r);
      }
} finally {
  for (const i of insts.values()) i.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`start-up to the first reply under master, a fresh process each time: median (p10, p90) of ${RUNS} runs each, taking turns`);
for (const table of tables) {
  const shown = table.startsWith("texthash:") ? `texthash, ${NKEYS} keys` : table;
  for (const [name] of impls) {
    const k = key(name, table);
    console.log(
      `${shown.padEnd(22)} ${name.padEnd(9)} ${q(ms.get(k)!, 0.5).toFixed(1).padStart(6)} ms (${q(ms.get(k)!, 0.1).toFixed(1)}, ${q(ms.get(k)!, 0.9).toFixed(1)}); RSS after it ${(q(rss.get(k)!, 0.5) / 1024).toFixed(1)} MB`,
    );
  }
  const m = (n: string) => q(ms.get(key(n, table))!, 0.5);
  const r = (n: string) => q(rss.get(key(n, table))!, 0.5);
  console.log(
    `${shown.padEnd(22)} ratios: start-up ours/C ${(m("ours") / m("C")).toFixed(2)}x (target <= 2.0x)${FLOOR ? `, bun floor/C ${(m("bun floor") / m("C")).toFixed(2)}x` : ""}; ` +
      `RSS ours/hello-world ${(r("ours") / helloKb).toFixed(2)}x (target <= 1.5x), ours/C ${(r("ours") / r("C")).toFixed(1)}x`,
  );
}
console.log(`compiled Bun hello-world: RSS ${(helloKb / 1024).toFixed(1)} MB (median of 5)`);
