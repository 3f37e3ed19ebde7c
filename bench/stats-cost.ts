/**
 * stats-cost.ts - what the statistics cost (issue 17: at most 3% of
 * lookups/s on the texthash bench at 8 clients): our proxymap with
 * statistics on (counting, the interval log lines, the status file and a
 * Prometheus file: everything) against the same binary with
 * proxymap_stats_enable = no, in one run.
 *
 *   bun bench/stats-cost.ts [--seconds 5] [--rounds 5] [--clients 8] [--keys 10000]
 *                           [--pin SERVER_CPU,CLIENT_CPU] [--binary PATH] [--aa] [--json FILE]
 *
 * --aa runs statistics off on both sides (an A/A run): its spread is the
 * machine's noise, the yardstick for the real run's difference.
 *
 * Two private Postfix instances (test/helpers/postfix-instance.ts) on the
 * texthash table of bench/compare.ts, each one proxymap process (busy
 * reporting off, as compare.ts does when pinned). Rounds alternate which
 * one runs first; each round's ratio on/off is printed, then the median,
 * the lowest and the highest ratio: on a shared machine the spread says
 * how far one number can be trusted.
 *
 * Needs root, Postfix, and dist/proxymap (npm run build). Prints a table.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { runLoad } from "./load";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const SECONDS = Number(arg("--seconds", "5"));
const ROUNDS = Number(arg("--rounds", "5"));
const CLIENTS = Number(arg("--clients", "8"));
const NKEYS = Number(arg("--keys", "10000"));
const JSON_OUT = process.argv.includes("--json") ? arg("--json", "") : "";
const PIN = process.argv.includes("--pin") ? arg("--pin", "1,0").split(",") : undefined;
const BINARY = process.argv.includes("--binary") ? arg("--binary", "") : undefined;
const AA = process.argv.includes("--aa");

const ONE_PROCESS = { proxymap_busy_cpu: "0", proxymap_busy_lag: "0" };

function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of some processes so far. */
function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      t += (Number(f[11]) + Number(f[12])) / TICKS;
    } catch {
      // gone
    }
  }
  return t;
}

async function main(): Promise<void> {
  requirePostfix();
  const impl = BINARY ? { path: BINARY } : "ours";
  if (!BINARY) requireOurBinary();
  const dir = mkdtempSync(join(tmpdir(), "pfx-statsbench-"));
  chmodSync(dir, 0o755);
  const keys = Array.from({ length: NKEYS }, (_, i) => `user${i}@example.com`);
  writeFileSync(join(dir, "table"), keys.map((k, i) => `${k}\tmailbox-${i}@store.example.com`).join("\n") + "\n", { mode: 0o644 });
  const table = `texthash:${join(dir, "table")}`;
  // One long-lived process per instance: max_use would replace it every 100 connections (12 rounds), mid-measurement.
  const base = { proxy_read_maps: `proxy:${table}`, max_use: "1000000", ...ONE_PROCESS };
  const variants: Array<[string, Record<string, string>]> = [
    ["on", AA ? { ...base, proxymap_stats_enable: "no" } : { ...base, proxymap_stats_enable: "yes", proxymap_stats_interval: "60s", proxymap_stats_prometheus_file: "$data_directory/proxymap.prom" }],
    ["off", { ...base, proxymap_stats_enable: "no" }],
  ];
  const insts = new Map<string, PostfixInstance>();
  const perSec: Record<string, number[]> = { on: [], off: [] };
  const ratios: number[] = [];
  const cpuUs: Record<string, number[]> = { on: [], off: [] };
  const cpuRatios: number[] = [];
  try {
    for (const [name, mainCf] of variants) insts.set(name, await PostfixInstance.start({ impl, label: `statsbench-${name}`, mainCf }));
    if (PIN) {
      for (const i of insts.values()) pin(i.masterPid, PIN[0]);
      pin(process.pid, PIN[1]);
    }
    for (const [name] of variants) await runLoad({ socket: insts.get(name)!.socket("proxymap"), table, keys, clients: CLIENTS, seconds: 1 });
    console.log(`round | on lookups/s | off lookups/s | on/off | on CPU us/lookup | off CPU us/lookup | off/on`);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      const got: Record<string, number> = {};
      const cpu: Record<string, number> = {};
      for (const [name] of order) {
        const inst = insts.get(name)!;
        const pids = await inst.waitServicePids("proxymap");
        const before = cpuSeconds(pids);
        const res = await runLoad({ socket: inst.socket("proxymap"), table, keys, clients: CLIENTS, seconds: SECONDS });
        const after = inst.servicePids("proxymap");
        if (after.some((p) => !pids.includes(p))) console.error(`warning: ${name}: a new process during the round: CPU figure incomplete`);
        const used = cpuSeconds(pids) - before;
        if (res.errors) console.error(`warning: ${name}: ${res.errors} error replies`);
        got[name] = res.perSec;
        perSec[name].push(res.perSec);
        cpu[name] = (used * 1e6) / res.lookups;
        cpuUs[name].push(cpu[name]);
      }
      const ratio = got.on / got.off;
      ratios.push(ratio);
      if (cpu.on > 0 && cpu.off > 0) cpuRatios.push(cpu.off / cpu.on);
      console.log(
        `${String(r + 1).padStart(5)} | ${got.on.toFixed(0).padStart(12)} | ${got.off.toFixed(0).padStart(13)} | ${ratio.toFixed(3)} | ${cpu.on.toFixed(2).padStart(16)} | ${cpu.off.toFixed(2).padStart(17)} | ${(cpu.off / cpu.on).toFixed(3)}`,
      );
    }
    const m = median(ratios);
    console.log(
      `${AA ? "A/A run (statistics off on both sides): " : ""}statistics cost at ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s${PIN ? `, servers on CPU ${PIN[0]}, load on CPU ${PIN[1]}` : ""}: ` +
        `median on/off ${m.toFixed(3)} (cost ${((1 - m) * 100).toFixed(1)}%), range ${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}; ` +
        `median lookups/s on ${median(perSec.on).toFixed(0)}, off ${median(perSec.off).toFixed(0)}`,
    );
    const cm = median(cpuRatios);
    console.log(
      `CPU per lookup: median on ${median(cpuUs.on).toFixed(2)} us, off ${median(cpuUs.off).toFixed(2)} us; median off/on ${cm.toFixed(3)} (cost ${((1 - cm) * 100).toFixed(1)}%), range ${Math.min(...cpuRatios).toFixed(3)}..${Math.max(...cpuRatios).toFixed(3)}`,
    );
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, clients: CLIENTS, perSec, ratios, cpuUs, cpuRatios }, null, 1));
  } finally {
    for (const i of insts.values()) i.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
