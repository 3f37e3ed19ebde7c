/**
 * blocking.ts - what moving blocking calls off the event loop costs: the
 * table types whose calls run on worker threads (unix, sqlite) or may
 * (regexp, pcre), measured two ways.
 *
 *   bun bench/blocking.ts [--seconds 3] [--clients 1,8] [--pin SERVER_CPU,CLIENT_CPU] [--only part1|part2]
 *
 * Part 1, in this process (no sockets): the cost of one lookup through the
 * driver, sequentially (latency, and the CPU time the main thread spends on
 * it: what the event loop pays, unaffected by other load on the machine)
 * and with 32 lookups in flight (throughput), for each path: regexp/pcre walks on the main thread and the
 * same walks forced onto a worker (setInlineWalks(false): what "every walk
 * on a worker" would cost), NSS through the worker against getpwnam_r on
 * this thread, an SQLite query through the worker against bun:sqlite on
 * this thread.
 *
 * Part 2, end to end under master (test/helpers/postfix-instance.ts), the C
 * proxymap against dist/proxymap in the same run: lookups/s and p50/p99 at
 * each client count for regexp (address-sized keys: main thread; 300-byte
 * keys: worker), pcre, unix:passwd.byname and sqlite. --pin as in
 * bench/compare.ts (servers on one CPU, load on the other; ours one process).
 * Before the load, the resident memory and threads of a fresh process of
 * ours: after an in-memory lookup, then after each pool's first worker.
 *
 * Needs root, Postfix with postfix-pcre and postfix-sqlite, and
 * dist/proxymap (npm run build). Prints tables.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { dlopen, ptr } from "bun:ffi";
import { PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { runLoad, type LoadResult } from "./load";
// The registry first: drivers import the dict layer, which imports them all.
import "../src/tables/registry";
import { regexp } from "../src/tables/regexp";
import { pcre } from "../src/tables/pcre";
import { unix } from "../src/tables/unix";
import { sqlite } from "../src/tables/sqlite";
import { setInlineWalks } from "../src/tables/pattern/regexRules";
import { getpwnam } from "../src/sys/nss";
import { OffloadPool } from "../src/tables/offload/pool";
import type { Table } from "../src/tables/table";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const SECONDS = Number(arg("--seconds", "3"));
const CLIENTS = arg("--clients", "1,8").split(",").map(Number);
const PIN = process.argv.includes("--pin") ? arg("--pin", "1,0").split(",") : undefined;
const ONLY = arg("--only", "");

// ------------------------------------------------------------ the tables

const RULES_REGEXP =
  Array.from({ length: 20 }, (_, i) => `/^user${i}@(.*)\\.example\\.com$/ OK user${i} at $1`).join("\n") +
  "\n/^(.*)@example\\.org$/ REJECT $1\n/^Received: from ([^ ]+) /i DUNNO from $1\n";
const RULES_PCRE =
  Array.from({ length: 20 }, (_, i) => `/^user${i}@(.+)\\.example\\.com$/ OK user${i} at $1`).join("\n") +
  "\n/^(.+)@example\\.org$/ REJECT $1\n/^Received: from (\\S+) /i DUNNO from $1\n";
const SHORT_KEYS = [...Array.from({ length: 20 }, (_, i) => `user${i}@mx${i}.example.com`), "someone@example.org", "nobody@nowhere.net"];
/** Header-sized keys (over 256 bytes): regexp walks go to a worker. */
const LONG_KEYS = SHORT_KEYS.map((k, i) => `Received: from ${k.replace("@", ".")} (host${i}.example.net [192.0.2.${i}]) by mail.example.com (Postfix) with ESMTPS id 4Xyz${i}abcDEF for <${k}>; Mon, 1 Jan 2024 00:00:00 +0000 (UTC) ${"x".repeat(80)}`);
const USERS = ["root", "daemon", "bin", "sys", "nobody", "postfix", "no-such-user"];
const SQL_ROWS = 10_000;

function makeFiles(dir: string): { regexp: string; pcre: string; sqliteCf: string } {
  writeFileSync(join(dir, "t.regexp"), RULES_REGEXP + "\n", { mode: 0o644 });
  writeFileSync(join(dir, "t.pcre"), RULES_PCRE + "\n", { mode: 0o644 });
  const db = new Database(join(dir, "t.sqlite"));
  db.run("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)");
  const ins = db.prepare("INSERT INTO t VALUES (?, ?)");
  db.transaction(() => {
    for (let i = 0; i < SQL_ROWS; i++) ins.run(`user${i}@example.com`, `mailbox-${i}`);
  })();
  db.close();
  writeFileSync(join(dir, "t.cf"), `dbpath = ${join(dir, "t.sqlite")}\nquery = SELECT v FROM t WHERE k='%s'\n`, { mode: 0o644 });
  return { regexp: join(dir, "t.regexp"), pcre: join(dir, "t.pcre"), sqliteCf: join(dir, "t.cf") };
}
const SQL_KEYS = Array.from({ length: 50 }, (_, i) => `user${i * 197}@example.com`);

// ------------------------------------------------------------ part 1

interface PathCost {
  path: string;
  seqUs: number;
  /** CPU time of this (the main) thread per lookup, one at a time: what the event loop spends. */
  mainCpuUs: number;
  parallelUs: number;
}

const CLOCK_THREAD_CPUTIME_ID = 3;
const clock = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } }).symbols;
const ts = new BigInt64Array(2);

/** CPU time this thread has used, in microseconds (wall time on a shared machine says little). */
function threadCpuUs(): number {
  clock.clock_gettime(CLOCK_THREAD_CPUTIME_ID, ptr(ts));
  return Number(ts[0]) * 1e6 + Number(ts[1]) / 1e3;
}

/** Microseconds per lookup: one at a time (wall and main-thread CPU), and 32 in flight (wall). */
async function cost(path: string, lookup: (i: number) => unknown, n = 20_000): Promise<PathCost> {
  for (let i = 0; i < 2000; i++) await lookup(i); // warm-up (workers started, JIT)
  let t0 = performance.now();
  const c0 = threadCpuUs();
  for (let i = 0; i < n; i++) await lookup(i);
  const mainCpuUs = (threadCpuUs() - c0) / n;
  const seqUs = ((performance.now() - t0) * 1000) / n;
  t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) await lookup(next++);
    }),
  );
  const parallelUs = ((performance.now() - t0) * 1000) / n;
  return { path, seqUs, mainCpuUs, parallelUs };
}

async function part1(dir: string, files: ReturnType<typeof makeFiles>): Promise<void> {
  const ctx = {} as never;
  const open = async (t: { open: Function }, name: string, type: string) => (await t.open({ type, name, write: false, flags: 0 }, ctx)) as Table;
  const re = await open(regexp, files.regexp, "regexp");
  const pc = await open(pcre, files.pcre, "pcre");
  const ux = await open(unix, "passwd.byname", "unix");
  const sq = await open(sqlite, files.sqliteCf, "sqlite");
  const direct = new Database(join(dir, "t.sqlite"), { readonly: true });
  const rows: PathCost[] = [];
  for (const [name, t] of [["regexp", re], ["pcre", pc]] as const) {
    rows.push(await cost(`${name}, address keys, main thread`, (i) => t.lookup(SHORT_KEYS[i % SHORT_KEYS.length], 0)));
    setInlineWalks(false);
    rows.push(await cost(`${name}, address keys, every walk on a worker`, (i) => t.lookup(SHORT_KEYS[i % SHORT_KEYS.length], 0)));
    setInlineWalks(true);
    rows.push(await cost(`${name}, 300-byte keys (worker)`, (i) => t.lookup(LONG_KEYS[i % LONG_KEYS.length], 0)));
  }
  const ping = new OffloadPool("bench", 1);
  rows.push(await cost("a worker round trip alone (an empty job)", () => ping.call("offload.ping", null)));
  ping.close();
  rows.push(await cost("unix:passwd.byname, getpwnam_r on this thread", (i) => getpwnam(USERS[i % USERS.length])));
  rows.push(await cost("unix:passwd.byname, through the worker", (i) => ux.lookup(USERS[i % USERS.length], 0)));
  rows.push(await cost("sqlite, bun:sqlite on this thread", (i) => direct.prepare(`SELECT v FROM t WHERE k='${SQL_KEYS[i % SQL_KEYS.length]}'`).values()));
  rows.push(await cost("sqlite, through the worker", (i) => sq.lookup(SQL_KEYS[i % SQL_KEYS.length], 0)));
  console.log("part 1: one lookup through the driver, in-process (us per lookup)");
  console.log("path                                                  | one at a time | main-thread CPU | 32 in flight");
  for (const r of rows) console.log(`${r.path.padEnd(53)} | ${r.seqUs.toFixed(1).padStart(13)} | ${r.mainCpuUs.toFixed(1).padStart(15)} | ${r.parallelUs.toFixed(1).padStart(12)}`);

  for (const t of [re, pc, sq]) t.close?.();
  direct.close();
}

// ------------------------------------------------------------ part 2

function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}

function procStatus(pid: number, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(require("node:fs").readFileSync(`/proc/${pid}/status`, "latin1"))?.[1] ?? 0);
}

/**
 * What the worker threads cost a fresh process of ours: its resident set and
 * thread count after an in-memory lookup (no worker), then after the first
 * lookup of each type that starts a pool's worker.
 */
async function memory(inst: PostfixInstance, files: ReturnType<typeof makeFiles>): Promise<void> {
  const { WireClient } = await import("../test/helpers/wire");
  const c = await WireClient.connect(inst.socket("proxymap"));
  const [pid] = await inst.waitServicePids("proxymap");
  const steps: Array<[string, string, string]> = [
    ["static (no worker)", "static:x", "k"],
    ["+ unix (nss worker)", "unix:passwd.byname", "root"],
    ["+ sqlite (sqlite worker)", `sqlite:${files.sqliteCf}`, SQL_KEYS[0]],
    ["+ regexp, a 300-byte key (pattern worker)", `regexp:${files.regexp}`, LONG_KEYS[0]],
  ];
  const out: string[] = [];
  for (const [label, table, key] of steps) {
    await c.lookup(table, key);
    await Bun.sleep(1000);
    out.push(`${label}: RSS ${(procStatus(pid, "VmRSS") / 1024).toFixed(1)} MB, ${procStatus(pid, "Threads")} threads`);
  }
  c.close();
  console.log(`memory of one fresh process of ours (dist/proxymap under master):\n  ${out.join("\n  ")}`);
}

async function part2(files: ReturnType<typeof makeFiles>): Promise<void> {
  requirePostfix();
  requireOurBinary();
  const tables: Array<[string, string, string[]]> = [
    ["regexp, address keys", `regexp:${files.regexp}`, SHORT_KEYS],
    ["regexp, 300-byte keys", `regexp:${files.regexp}`, LONG_KEYS],
    ["pcre, address keys", `pcre:${files.pcre}`, SHORT_KEYS],
    ["unix:passwd.byname", "unix:passwd.byname", USERS],
    ["sqlite (10,000 rows)", `sqlite:${files.sqliteCf}`, SQL_KEYS],
  ];
  const mainCf: Record<string, string> = { proxy_read_maps: [...new Set(tables.map(([, t]) => `proxy:${t}`)), "proxy:static:x"].join(" ") };
  if (PIN) Object.assign(mainCf, { proxymap_busy_cpu: "0", proxymap_busy_lag: "0" });
  const impls: [string, ProxymapImpl][] = [["C", "c"], ["ours", "ours"]];
  const insts = new Map<string, PostfixInstance>();
  try {
    for (const [name, impl] of impls) insts.set(name, await PostfixInstance.start({ impl, label: `bench-block-${name}`, mainCf }));
    if (PIN) {
      for (const i of insts.values()) pin(i.masterPid, PIN[0]);
      pin(process.pid, PIN[1]);
    }
    await memory(insts.get("ours")!, files);
    console.log(`part 2: under master, ${SECONDS} s per run${PIN ? `, servers on CPU ${PIN[0]}, load on CPU ${PIN[1]}` : ""}`);
    console.log("table                   clients |  C lookups/s p50 ms p99 ms | ours lookups/s p50 ms p99 ms | ratio");
    for (const [label, table, keys] of tables) {
      for (const [name] of impls) await runLoad({ socket: insts.get(name)!.socket("proxymap"), table, keys, clients: 4, seconds: 0.5 });
      for (const n of CLIENTS) {
        const r: Record<string, LoadResult> = {};
        for (const [name] of impls) r[name] = await runLoad({ socket: insts.get(name)!.socket("proxymap"), table, keys, clients: n, seconds: SECONDS });
        const f = (x: LoadResult) => `${x.perSec.toFixed(0).padStart(12)} ${(x.p50Us / 1000).toFixed(3).padStart(6)} ${(x.p99Us / 1000).toFixed(3).padStart(6)}`;
        const errs = r.C.errors + r.ours.errors ? `  (error replies: C ${r.C.errors}, ours ${r.ours.errors})` : "";
        console.log(`${label.padEnd(24)}${String(n).padStart(7)} | ${f(r.C)} | ${f(r.ours).padStart(27)} | ${(r.ours.perSec / r.C.perSec).toFixed(2)}x${errs}`);
      }
    }
    const pids = insts.get("ours")!.servicePids("proxymap");
    const threads = pids.map((p) => Number(/Threads:\s+(\d+)/.exec(require("node:fs").readFileSync(`/proc/${p}/status`, "latin1"))?.[1] ?? 0));
    console.log(`ours: ${pids.length} process(es), RSS ${pids.map((p) => (PostfixInstance.rssKiB(p) / 1024).toFixed(1)).join(", ")} MB, threads ${threads.join(", ")}`);
  } finally {
    for (const i of insts.values()) i.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), "pfx-bench-block-"));
chmodSync(dir, 0o755);
try {
  const files = makeFiles(dir);
  if (ONLY !== "part2") await part1(dir, files);
  if (ONLY !== "part1") await part2(files);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
