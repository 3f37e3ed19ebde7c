/**
 * compare.ts - the C proxymap against ours, in one run, on the same texthash
 * table: lookups/s and p50/p99 at 1, 8 and 32 persistent clients, start-up
 * time to the first reply, and resident memory.
 *
 *   bun bench/compare.ts [--seconds 5] [--rounds 3] [--clients 1,8,32] [--keys 10000] [--procs 1]
 *                        [--pin SERVER_CPU,CLIENT_CPU] [--json FILE]
 *
 * Two private Postfix instances (test/helpers/postfix-instance.ts), one per
 * binary, default master.cf limits. Runs alternate between the two (C first
 * in odd rounds, ours first in even ones) and the median of the rounds is
 * reported, because a 2-core machine shared with other work is noisy.
 * --pin puts each master (hence every proxymap it starts) on one CPU and the
 * load on another (taskset): on a small virtual machine, whether a client
 * and its server happen to share a CPU changes a one-client round trip by a
 * factor of five (a wake-up on another CPU is an inter-processor interrupt),
 * for both implementations alike; pinning takes that lottery out. Pinned,
 * ours runs as one process (busy reporting off): a second one on the same
 * CPU would only compete with the first.
 * Memory is the resident set of the service's processes, sampled while the
 * load runs (the reference's processes exit after max_use=100 connections),
 * over the whole run and by number of clients.
 * Start-up is measured twice: under master with max_use=1 (connect to the
 * first reply, a fresh process each time: master's fork+exec included) and
 * stand-alone (`proxymap -S`: exec to the reply on stdout).
 *
 * Needs root, Postfix, and dist/proxymap (npm run build). Prints a table.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chmodSync, readFileSync } from "node:fs";
import { C_PROXYMAP, OUR_PROXYMAP, PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { WireClient } from "../test/helpers/wire";
import { runLoad, type LoadResult } from "./load";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const SECONDS = Number(arg("--seconds", "5"));
const ROUNDS = Number(arg("--rounds", "3"));
const CLIENTS = arg("--clients", "1,8,32").split(",").map(Number);
const NKEYS = Number(arg("--keys", "10000"));
const PROCS = Number(arg("--procs", "1"));
const JSON_OUT = process.argv.includes("--json") ? arg("--json", "") : "";
const PIN = process.argv.includes("--pin") ? arg("--pin", "1,0").split(",") : undefined;

/** Our busy reporting off (the C proxymap ignores these settings). */
const ONE_PROCESS = { proxymap_busy_cpu: "0", proxymap_busy_lag: "0" };

/** taskset a process and all its threads (children started later inherit it). */
function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function status(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function timeFirstReply(inst: PostfixInstance, table: string, key: string): Promise<number> {
  // Wait until the previous process has gone (max_use=1), so master forks a new one for us.
  const t = Date.now();
  while (inst.servicePids("proxymap").length && Date.now() - t < 5000) await Bun.sleep(5);
  const t0 = performance.now();
  const cl = await WireClient.connect(inst.socket("proxymap"));
  const r = await cl.request([["request", "lookup"], ["table", table], ["flags", "524353"], ["key", key]]);
  const ms = performance.now() - t0;
  cl.close();
  if (r.kind !== "reply") throw new Error(`start-up probe: ${r.kind}`);
  return ms;
}

async function timeStandalone(binary: string, configDir: string, table: string, key: string): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn([binary, "-S", "-o", `proxy_read_maps=proxy:${table}`], {
    env: { MAIL_CONFIG: configDir, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "ignore",
  });
  p.stdin.write(Buffer.from(`request\0lookup\0table\0${table}\0flags\x00524353\0key\0${key}\0\0`, "latin1"));
  p.stdin.flush();
  const reader = p.stdout.getReader();
  let got = Buffer.alloc(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    got = Buffer.concat([got, Buffer.from(value)]);
    if (got.includes(Buffer.from("\0\0"))) break;
  }
  const ms = performance.now() - t0;
  p.stdin.end();
  p.kill();
  await p.exited;
  if (!got.length) throw new Error(`${binary} -S gave no reply`);
  return ms;
}

async function main(): Promise<void> {
  requirePostfix();
  requireOurBinary();
  const dir = mkdtempSync(join(tmpdir(), "pfx-bench-"));
  chmodSync(dir, 0o755);
  const keys = Array.from({ length: NKEYS }, (_, i) => `user${i}@example.com`);
  writeFileSync(join(dir, "table"), keys.map((k, i) => `${k}\tmailbox-${i}@store.example.com`).join("\n") + "\n", { mode: 0o644 });
  const table = `texthash:${join(dir, "table")}`;
  // Pinned to one CPU, a second process of ours (started when the first
  // reports busy) would only compete with the first: one process each.
  const mainCf = { proxy_read_maps: `proxy:${table}`, ...(PIN ? ONE_PROCESS : {}) };
  const impls: [string, ProxymapImpl][] = [["C", "c"], ["ours", "ours"]];
  const insts = new Map<string, PostfixInstance>();
  const results: Record<string, Record<number, LoadResult[]>> = { C: {}, ours: {} };
  const mem: Record<string, { procs: number; maxRss: number; sumRss: number }> = {};
  /** Largest RSS of one process while the load of N clients ran, per implementation. */
  const memAt: Record<string, Record<number, number>> = { C: {}, ours: {} };
  /** The same, private (anonymous) memory only: RSS less the executable's and libraries' clean file pages. */
  const anonAt: Record<string, Record<number, number>> = { C: {}, ours: {} };
  try {
    for (const [name, impl] of impls) insts.set(name, await PostfixInstance.start({ impl, label: `bench-${name}`, mainCf }));
    if (PIN) {
      for (const i of insts.values()) pin(i.masterPid, PIN[0]);
      pin(process.pid, PIN[1]);
    }
    // Warm up: table loaded, processes running.
    for (const [name] of impls) await runLoad({ socket: insts.get(name)!.socket("proxymap"), table, keys, clients: 8, seconds: 1, procs: PROCS });
    for (const n of CLIENTS) {
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? impls : [...impls].reverse();
        for (const [name] of order) {
          const inst = insts.get(name)!;
          // Memory is sampled while the load runs: processes may exit after it (max_use).
          const m = (mem[name] ??= { procs: 0, maxRss: 0, sumRss: 0 });
          const sampler = setInterval(() => {
            const rss = inst.servicePids("proxymap").map((p) => status(p, "VmRSS"));
            m.procs = Math.max(m.procs, rss.length);
            m.maxRss = Math.max(m.maxRss, ...rss);
            m.sumRss = Math.max(m.sumRss, rss.reduce((a, b) => a + b, 0));
            memAt[name][n] = Math.max(memAt[name][n] ?? 0, ...rss);
            anonAt[name][n] = Math.max(anonAt[name][n] ?? 0, ...inst.servicePids("proxymap").map((p) => status(p, "RssAnon")));
          }, 250);
          const res = await runLoad({ socket: inst.socket("proxymap"), table, keys, clients: n, seconds: SECONDS, procs: PROCS });
          clearInterval(sampler);
          (results[name][n] ??= []).push(res);
          if (res.errors) console.error(`warning: ${name} at ${n} clients: ${res.errors} error replies`);
        }
      }
    }
    for (const i of insts.values()) i.stop();
    insts.clear();

    // Start-up: a fresh process per connection (max_use=1), and proxymap -S,
    // on every CPU again (a master started from a pinned process inherits it).
    if (PIN) pin(process.pid, `0-${Math.max(0, navigator.hardwareConcurrency - 1)}`);
    const startup: Record<string, { master: number; standalone: number }> = {};
    for (const [name, impl] of impls) {
      const inst = await PostfixInstance.start({ impl, label: `bench-start-${name}`, mainCf, proxymapArgs: ["-o", "max_use=1"] });
      insts.set(name, inst);
      const m: number[] = [];
      const s: number[] = [];
      for (let i = 0; i < 10; i++) m.push(await timeFirstReply(inst, table, keys[i]));
      for (let i = 0; i < 10; i++) s.push(await timeStandalone(impl === "c" ? C_PROXYMAP : OUR_PROXYMAP, inst.configDir, table, keys[i]));
      startup[name] = { master: median(m), standalone: median(s) };
    }

    const fmt = (x: number, d = 0) => x.toFixed(d).padStart(9);
    const lines: string[] = [];
    lines.push(`proxymap bench: texthash, ${NKEYS} keys, ${SECONDS} s per run, median of ${ROUNDS} alternating rounds, ${PROCS} load process(es)${PIN ? `, servers on CPU ${PIN[0]}, load on CPU ${PIN[1]}` : ""}`);
    lines.push(`clients |   C lookups/s  p50 ms  p99 ms | ours lookups/s  p50 ms  p99 ms | ratio`);
    const summary: Record<string, unknown>[] = [];
    for (const n of CLIENTS) {
      const c = results.C[n];
      const o = results.ours[n];
      const row = {
        clients: n,
        c: { perSec: median(c.map((x) => x.perSec)), p50: median(c.map((x) => x.p50Us)) / 1000, p99: median(c.map((x) => x.p99Us)) / 1000 },
        ours: { perSec: median(o.map((x) => x.perSec)), p50: median(o.map((x) => x.p50Us)) / 1000, p99: median(o.map((x) => x.p99Us)) / 1000 },
      };
      summary.push(row);
      lines.push(
        `${String(n).padStart(7)} | ${fmt(row.c.perSec).padStart(13)} ${fmt(row.c.p50, 3).slice(2)} ${fmt(row.c.p99, 3).slice(2)} | ${fmt(row.ours.perSec).padStart(14)} ${fmt(row.ours.p50, 3).slice(2)} ${fmt(row.ours.p99, 3).slice(2)} | ${(row.ours.perSec / row.c.perSec).toFixed(2)}x`,
      );
    }
    lines.push(`start-up to first reply (median of 10): under master C ${startup.C.master.toFixed(1)} ms, ours ${startup.ours.master.toFixed(1)} ms; proxymap -S C ${startup.C.standalone.toFixed(1)} ms, ours ${startup.ours.standalone.toFixed(1)} ms`);
    const mb = (k: number) => (k / 1024).toFixed(1);
    lines.push(`memory under load (sampled every 250 ms): C up to ${mem.C.procs} process(es), largest RSS ${mb(mem.C.maxRss)} MB, all together ${mb(mem.C.sumRss)} MB; ours up to ${mem.ours.procs} process(es), largest RSS ${mb(mem.ours.maxRss)} MB, all together ${mb(mem.ours.sumRss)} MB`);
    lines.push(
      `largest RSS of one process during the load, by clients (of it anonymous): ${CLIENTS.map((n) => `${n}: C ${mb(memAt.C[n] ?? 0)} (${mb(anonAt.C[n] ?? 0)}) MB, ours ${mb(memAt.ours[n] ?? 0)} (${mb(anonAt.ours[n] ?? 0)}) MB`).join("; ")}` +
        (memAt.ours[8] !== undefined ? ` (issue 16's target: ours <= 50 MB at 8 clients)` : ""),
    );
    console.log(lines.join("\n"));
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, keys: NKEYS, rows: summary, startup, mem, memAt, raw: results }, null, 1));
  } finally {
    for (const i of insts.values()) i.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
