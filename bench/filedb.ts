/**
 * bench/filedb.ts - lookups per second on lmdb: and cdb: tables, the C
 * proxymap and ours in the same run, at 1, 8 and 32 concurrent clients
 * (each a connection doing one request at a time, as Postfix daemons do),
 * on postmap-made tables of 1,000,000 keys. Both implementations run under
 * a private master(8) (test/helpers/postfix-instance.ts).
 *
 *   bun bench/filedb.ts [--seconds N] [--keys N] [--ours PATH] [--only c|ours] [--types lmdb,cdb] [--pin S,C]
 *
 * Defaults: 3 s per run, 1,000,000 keys, ours = dist/proxymap. Needs root
 * and Postfix with postfix-lmdb and postfix-cdb.
 *
 * Prints one line per run: impl, type, clients, lookups/s, p50 and p99
 * latency (ms), errors; then per implementation the "open time" (latency
 * of the first lookup of a table, which opens it, in a fresh service
 * process) and the peak resident memory of its proxymap processes during
 * the runs (total RSS, process count).
 */
import { readFileSync } from "node:fs";
import { PostfixInstance, OUR_PROXYMAP, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { WireClient } from "../test/helpers/wire";
import { runLoad } from "./load";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const SECONDS = Number(arg("--seconds", "3"));
const KEYS = Number(arg("--keys", "1000000"));
const OURS = arg("--ours", OUR_PROXYMAP);
const ONLY = arg("--only", "");
const LOOKUP_FLAGS = "524353"; // UTF8_REQUEST|LOCK|DUP_WARN, as postmap -q
const CLIENTS = [1, 8, 32];
const TYPES = arg("--types", "lmdb,cdb").split(",");
/** --pin SERVER_CPU,CLIENT_CPU: master (and its proxymaps) on one CPU, the load on another (see compare.ts). */
const PIN = process.argv.includes("--pin") ? arg("--pin", "1,0").split(",") : undefined;

function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

/** A spread of keys over the whole table (a multiplicative walk, so every client hits different pages). */
function keyOf(i: number): string {
  return `user${(i * 7919) % KEYS}@example.com`;
}

/** Keys of the walk (enough to reach every part of a large table). */
let walk: string[] | undefined;

/**
 * N clients for `seconds` through bench/load.ts's client (pre-encoded
 * requests, replies cut by NUL counting), so the client is not what limits
 * the rate; whileConnected runs before the clients disconnect.
 */
async function drive(
  socket: string,
  clients: number,
  table: string,
  seconds = SECONDS,
  whileConnected?: () => void,
): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  walk ??= Array.from({ length: Math.min(KEYS, 100_000) }, (_, i) => keyOf(i * 104729 + 1));
  const timer = whileConnected ? setTimeout(whileConnected, Math.max(0, seconds * 1000 - 200)) : undefined;
  const r = await runLoad({ socket, table, keys: walk, clients, seconds, flags: Number(LOOKUP_FLAGS) });
  clearTimeout(timer);
  return { rate: r.perSec, p50: r.p50Us / 1000, p99: r.p99Us / 1000, errors: r.errors };
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function benchImpl(impl: ProxymapImpl, name: string, source: string): Promise<void> {
  const inst = await PostfixInstance.start({
    impl,
    label: `filedbbench-${name}`,
    // Pinned, ours runs as one process (busy reporting off), as in compare.ts.
    mainCf: {
      proxy_read_maps: "proxy:lmdb:$data_directory/big proxy:cdb:$data_directory/big",
      ...(PIN ? { proxymap_busy_cpu: "0", proxymap_busy_lag: "0" } : {}),
    },
  });
  if (PIN) {
    pin(inst.masterPid, PIN[0]);
    pin(process.pid, PIN[1]);
  }
  try {
    const file = `${inst.dataDir}/big`;
    await Bun.write(file, source);
    const tables: Record<string, string> = {};
    for (const type of ["lmdb", "cdb"]) {
      const t0 = performance.now();
      const r = inst.run("postmap", [`${type}:${file}`]);
      if (r.code !== 0) throw new Error(`postmap ${type}:${file}: ${r.stderr}`);
      console.log(`# postmap ${type}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      tables[type] = `${type}:${file}`;
    }
    // Open time: the first lookup of each table in a fresh process.
    const opens: string[] = [];
    for (const type of ["lmdb", "cdb"]) {
      const c = await WireClient.connect(inst.socket("proxymap"));
      const t0 = performance.now();
      const r = await c.request([["request", "lookup"], ["table", tables[type]], ["flags", LOOKUP_FLAGS], ["key", keyOf(1)]], 30_000);
      opens.push(`${type} ${(performance.now() - t0).toFixed(1)} ms${r.kind === "reply" && r.attrs[0]?.[1] === "0" ? "" : " (FAILED)"}`);
      c.close();
    }
    // Resident memory of the service's processes, sampled at the end of each
    // run while its clients are still connected (the C processes exit
    // after max_use connections, so a sample after the runs finds none).
    let maxRss = 0;
    let maxProcs = 0;
    let last = "";
    const sample = () => {
      const pids = inst.servicePids("proxymap");
      const rss = pids.reduce((s, p) => s + rssKiB(p), 0);
      last = `rss ${(rss / 1024).toFixed(0)}MiB/${pids.length}p`;
      if (rss > maxRss) {
        maxRss = rss;
        maxProcs = pids.length;
      }
    };
    for (const type of TYPES) {
      // Warm-up (JIT, page cache), not reported.
      await drive(inst.socket("proxymap"), 8, tables[type], Math.min(1, SECONDS));
      for (const clients of CLIENTS) {
        const r = await drive(inst.socket("proxymap"), clients, tables[type], SECONDS, sample);
        console.log(`${name}\t${type}\t${clients}\t${r.rate.toFixed(0)}/s\tp50 ${r.p50.toFixed(2)}ms\tp99 ${r.p99.toFixed(2)}ms\terrors ${r.errors}\t${last}`);
        RESULTS.push({ name, type, clients, rate: r.rate, p99: r.p99 });
      }
    }
    console.log(`${name}\topen (first lookup, new process): ${opens.join(", ")}`);
    console.log(`${name}\tpeak RSS during the runs: ${(maxRss / 1024).toFixed(1)} MiB in ${maxProcs} process(es) (includes mapped lmdb pages)`);
  } finally {
    inst.stop();
  }
}

/** Every run, for the ratios printed at the end. */
const RESULTS: { name: string; type: string; clients: number; rate: number; p99: number }[] = [];

const lines: string[] = [];
for (let i = 0; i < KEYS; i++) lines.push(`user${i}@example.com value-${i}-${"x".repeat(i % 32)}`);
const source = lines.join("\n") + "\n";
console.log(`impl\ttype\tclients\tlookups/s\tp50\tp99\t(${SECONDS}s per run, ${KEYS} keys)`);
if (ONLY !== "ours") await benchImpl("c", "C", source);
if (ONLY !== "c") await benchImpl({ path: OURS }, "ours", source);
// Issue 16's targets: ours/C >= 1.0x at 1 client and >= 2.0x at 8, p99 no worse than C's.
for (const type of TYPES)
  for (const clients of CLIENTS) {
    const c = RESULTS.find((r) => r.name === "C" && r.type === type && r.clients === clients);
    const o = RESULTS.find((r) => r.name === "ours" && r.type === type && r.clients === clients);
    if (!c || !o) continue;
    console.log(`ratio\t${type}\t${clients}\tours/C ${(o.rate / c.rate).toFixed(2)}x\tp99 ours ${o.p99.toFixed(2)}ms C ${c.p99.toFixed(2)}ms${o.p99 <= c.p99 ? "" : " (ours worse)"}`);
  }
