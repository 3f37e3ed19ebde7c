/**
 * bench/memcache.ts - lookups per second on a memcache table (every key a
 * memcached hit; an lmdb backup is configured but not needed), the C
 * proxymap and ours in the same run, at 1, 8 and 32 persistent clients
 * (each a connection doing one request at a time, as Postfix daemons do).
 *
 *   bun bench/memcache.ts [--seconds 5] [--rounds 3] [--clients 1,8,32] [--keys 10000]
 *                         [--unix] [--pin SERVER_CPU,CLIENT_CPU] [--json FILE]
 *
 * A private memcached (test/helpers/memcached.ts; --unix: on a UNIX
 * socket) holds the keys; two private Postfix instances, one per binary,
 * default master.cf limits (so master starts more C processes as clients
 * wait, each with its own memcached connection). Runs alternate between
 * the two (C first in odd rounds, ours first in even ones); the median of
 * the rounds is reported. --pin puts both masters and memcached on one CPU
 * and the load on the other, as bench/compare.ts does (ours then runs as
 * one process).
 *
 * Besides lookups/s and latency, each row shows the CPU time the service's
 * processes used per lookup (/proc/PID/stat; memcached's own not counted),
 * a figure that other load on a shared machine disturbs much less.
 *
 * Needs root, Postfix, memcached and dist/proxymap (npm run build). Prints
 * a table and the issue's target (>= 2x at 8 clients).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { Memcached } from "../test/helpers/memcached";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { runLoad, type LoadResult } from "./load";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const SECONDS = Number(arg("--seconds", "5"));
const ROUNDS = Number(arg("--rounds", "3"));
const CLIENTS = arg("--clients", "1,8,32").split(",").map(Number);
const NKEYS = Number(arg("--keys", "10000"));
const UNIX = process.argv.includes("--unix");
const JSON_OUT = process.argv.includes("--json") ? arg("--json", "") : "";
const PIN = process.argv.includes("--pin") ? arg("--pin", "1,0").split(",") : undefined;

/** Our busy reporting off when pinned (a second process of ours on the same CPU would only compete). */
const ONE_PROCESS = { proxymap_busy_cpu: "0", proxymap_busy_lag: "0" };

function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const TICK_US = 1e6 / 100; // USER_HZ on Linux

/** CPU time (user + system, µs) a process has used so far; 0 when it is gone. */
function cpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

/** Run fn; the CPU time the given processes (found again at the end: the C side may start more) used meanwhile. */
async function withCpu<T>(pids: () => number[], fn: () => Promise<T>): Promise<{ value: T; cpu: number }> {
  const before = new Map(pids().map((p) => [p, cpuUs(p)]));
  const value = await fn();
  let cpu = 0;
  for (const p of new Set([...before.keys(), ...pids()])) cpu += Math.max(0, cpuUs(p) - (before.get(p) ?? 0));
  return { value, cpu };
}

async function main(): Promise<void> {
  requirePostfix();
  requireOurBinary();
  const mc = await Memcached.start({ unix: UNIX });
  const dir = mkdtempSync(join(tmpdir(), "pfx-bench-mc-"));
  chmodSync(dir, 0o755);
  const insts = new Map<string, PostfixInstance>();
  try {
    const keys = Array.from({ length: NKEYS }, (_, i) => `user${i}@example.com`);
    // Preload in batches of pipelined sets.
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const cmds = batch.map((k, j) => {
        const v = `mailbox-${i + j}@store.example.com`;
        return `set ${k} 0 0 ${v.length}\r\n${v}\r\n`;
      });
      await mc.command(cmds.join(""), new RegExp(`(STORED\\r\\n){${batch.length}}$`));
    }
    writeFileSync(join(dir, "backup"), "unused\tbackup\n", { mode: 0o644 });
    Bun.spawnSync(["postmap", `lmdb:${join(dir, "backup")}`]);
    const cf = join(dir, "mc.cf");
    writeFileSync(cf, `memcache = ${mc.server}\nbackup = lmdb:${join(dir, "backup")}\n`, { mode: 0o644 });
    utimesSync(cf, new Date("2020-01-01"), new Date("2020-01-01"));
    const table = `memcache:${cf}`;
    const mainCf = { proxy_read_maps: `proxy:${table}`, ...(PIN ? ONE_PROCESS : {}) };
    const impls: [string, ProxymapImpl][] = [["C", "c"], ["ours", "ours"]];
    const results: Record<string, Record<number, LoadResult[]>> = { C: {}, ours: {} };
    const cpuPerLookup: Record<string, Record<number, number[]>> = { C: {}, ours: {} };
    for (const [name, impl] of impls) insts.set(name, await PostfixInstance.start({ impl, label: `bench-mc-${name}`, mainCf }));
    if (PIN) {
      for (const i of insts.values()) pin(i.masterPid, PIN[0]);
      pin(mc.pid, PIN[0]);
      pin(process.pid, PIN[1]);
    }
    for (const [name] of impls) {
      const warm = await runLoad({ socket: insts.get(name)!.socket("proxymap"), table, keys, clients: 8, seconds: 1 });
      if (warm.errors) throw new Error(`${name}: ${warm.errors} error replies in the warm-up (is memcached reachable?)`);
    }
    for (const n of CLIENTS) {
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? impls : [...impls].reverse();
        for (const [name] of order) {
          const inst = insts.get(name)!;
          const { value: res, cpu } = await withCpu(
            () => inst.servicePids("proxymap"),
            () => runLoad({ socket: inst.socket("proxymap"), table, keys, clients: n, seconds: SECONDS }),
          );
          (results[name][n] ??= []).push(res);
          (cpuPerLookup[name][n] ??= []).push(res.lookups ? cpu / res.lookups : 0);
          if (res.errors) console.error(`warning: ${name} at ${n} clients: ${res.errors} error replies`);
        }
      }
    }
    const procs = (name: string) => insts.get(name)!.servicePids("proxymap").length;
    const lines: string[] = [];
    lines.push(`proxymap bench: memcache (${UNIX ? "UNIX socket" : "TCP"} memcached, every lookup a hit), ${NKEYS} keys, ${SECONDS} s per run, median of ${ROUNDS} alternating rounds${PIN ? `, servers and memcached on CPU ${PIN[0]}, load on CPU ${PIN[1]}` : ""}`);
    lines.push(`clients |   C lookups/s  p50 ms  p99 ms  cpu µs | ours lookups/s  p50 ms  p99 ms  cpu µs | ratio`);
    const rows: Record<string, unknown>[] = [];
    const fmt = (x: number, d = 0) => x.toFixed(d).padStart(9);
    let ratio8: number | undefined;
    for (const n of CLIENTS) {
      const c = results.C[n];
      const o = results.ours[n];
      const row = {
        clients: n,
        c: { perSec: median(c.map((x) => x.perSec)), p50: median(c.map((x) => x.p50Us)) / 1000, p99: median(c.map((x) => x.p99Us)) / 1000 },
        ours: { perSec: median(o.map((x) => x.perSec)), p50: median(o.map((x) => x.p50Us)) / 1000, p99: median(o.map((x) => x.p99Us)) / 1000 },
        cpuUs: { c: median(cpuPerLookup.C[n]), ours: median(cpuPerLookup.ours[n]) },
      };
      rows.push(row);
      const ratio = row.ours.perSec / row.c.perSec;
      if (n === 8) ratio8 = ratio;
      lines.push(
        `${String(n).padStart(7)} | ${fmt(row.c.perSec).padStart(13)} ${fmt(row.c.p50, 3).slice(2)} ${fmt(row.c.p99, 3).slice(2)} ${fmt(row.cpuUs.c, 1).slice(2)} | ${fmt(row.ours.perSec).padStart(14)} ${fmt(row.ours.p50, 3).slice(2)} ${fmt(row.ours.p99, 3).slice(2)} ${fmt(row.cpuUs.ours, 1).slice(2)} | ${ratio.toFixed(2)}x`,
      );
    }
    lines.push(`proxymap processes at the end: C ${procs("C")}, ours ${procs("ours")}; memcached connections now: ${/curr_connections (\d+)/.exec(await mc.command("stats\r\n", /END\r\n$/))?.[1]}`);
    if (ratio8 !== undefined) lines.push(`target (issue 15): >= 2x at 8 clients: ${ratio8 >= 2 ? "met" : "NOT met"} (${ratio8.toFixed(2)}x)`);
    console.log(lines.join("\n"));
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ seconds: SECONDS, rounds: ROUNDS, keys: NKEYS, unix: UNIX, pin: PIN, rows, raw: results }, null, 1));
  } finally {
    for (const i of insts.values()) i.stop();
    await mc.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
