/**
 * bench/pgsql.ts - lookups per second on a pgsql: table whose query takes
 * 5 ms (`SELECT v FROM pg_sleep(0.005), t WHERE k='%s'`), the C proxymap
 * and ours in the same run, at 1, 8 and 32 concurrent clients (each a
 * connection doing one request at a time, as Postfix daemons do). Both run
 * under a private master(8) (test/helpers/postfix-instance.ts) against the
 * machine's PostgreSQL (a database and role of the bench's own, dropped at
 * the end), over TCP with a password.
 *
 *   bun bench/pgsql.ts [--seconds N] [--clients 1,8,32] [--sleep 0.005]
 *                      [--ours PATH] [--only c|ours] [--limit N] [--per-conn N]
 *
 * Defaults: 5 s per run after 1 s of warm-up, ours = dist/proxymap (it
 * must have the pgsql type in its registry), connection_limit as the
 * driver's default unless --limit; clients keep their connection unless
 * --per-conn N makes them reconnect after every N lookups (then master(8)
 * starts more C processes, which only serve one request at a time each).
 * Needs root, Postfix with postfix-pgsql and PostgreSQL.
 *
 * Prints one line per run: implementation, clients, lookups/s, p50 and
 * p99 latency (ms), errors, the most database connections the bench user
 * held during the run, the proxymap processes, and "bound%": lookups/s as
 * a share of what those connections can carry at one query per `sleep`
 * (physics: one connection runs one query at a time, so it carries at
 * most 1/sleep queries per second). Then the targets at the
 * largest client count.
 */
import { utimesSync } from "node:fs";
import { OUR_PROXYMAP, PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../test/helpers/postgres";
import { WireClient, type Attr } from "../test/helpers/wire";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const SECONDS = Number(arg("--seconds", "5"));
const CLIENTS = arg("--clients", "1,8,32").split(",").map(Number);
const SLEEP = Number(arg("--sleep", "0.005"));
const OURS = arg("--ours", OUR_PROXYMAP);
const ONLY = arg("--only", "");
const LIMIT = arg("--limit", "");
/** Lookups per client connection before it reconnects (0 = keep it, as Postfix daemons do). */
const PER_CONN = Number(arg("--per-conn", "0"));
const KEYS = 10_000;
const LOOKUP_FLAGS = "524353"; // UTF8_REQUEST|LOCK|DUP_WARN, as postmap -q sends

interface RunResult {
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  peakConns: number;
  procs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

/** Connections the bench role holds now (asked without blocking the load). */
async function dbConnections(db: TestDatabase): Promise<number> {
  const sql = `SELECT count(*) FROM pg_stat_activity WHERE usename = '${db.user}'`;
  const p = Bun.spawn(["runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-h", db.socketDir, "-p", String(db.port), "-d", "postgres", "-c", sql], {
    stdout: "pipe",
    stderr: "ignore",
    cwd: "/",
  });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return Number(out.trim()) || 0;
}

async function drive(inst: PostfixInstance, db: TestDatabase, table: string, clients: number, seconds: number): Promise<RunResult> {
  const socket = inst.socket("proxymap");
  const conns = await Promise.all(Array.from({ length: clients }, () => WireClient.connect(socket)));
  const lat: number[] = [];
  let errors = 0;
  let count = 0;
  let peakConns = 0;
  let procs = 0;
  const end = performance.now() + seconds * 1000;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakConns = Math.max(peakConns, await dbConnections(db));
      procs = Math.max(procs, inst.servicePids("proxymap").length);
      await Bun.sleep(250);
    }
  })();
  await Promise.all(
    conns.map(async (first, ci) => {
      let c = first;
      let i = ci * 7919;
      let used = 0;
      while (performance.now() < end) {
        if (PER_CONN > 0 && used++ >= PER_CONN) {
          c.close();
          c = await WireClient.connect(socket);
          conns[ci] = c;
          used = 1;
        }
        const req: Attr[] = [
          ["request", "lookup"],
          ["table", table],
          ["flags", LOOKUP_FLAGS],
          ["key", `user${i++ % KEYS}@example.com`],
        ];
        const t0 = performance.now();
        const r = await c.request(req, 30_000);
        lat.push(performance.now() - t0);
        if (r.kind !== "reply" || r.attrs[0]?.[1] !== "0") errors++;
        count++;
      }
    }),
  );
  sampling = false;
  await sampler;
  for (const c of conns) c.close();
  lat.sort((a, b) => a - b);
  return { rate: count / seconds, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), errors, peakConns, procs };
}

async function benchImpl(impl: ProxymapImpl, name: string, db: TestDatabase): Promise<Map<number, RunResult>> {
  const results = new Map<number, RunResult>();
  const cfText =
    `hosts = inet:127.0.0.1:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\n` +
    `query = SELECT v FROM pg_sleep(${SLEEP}), t WHERE k='%s'\n` +
    (LIMIT ? `connection_limit = ${LIMIT}\n` : "");
  // The table's path is only known once the instance exists: name it through $queue_directory.
  const inst = await PostfixInstance.start({
    impl,
    label: `pgsqlbench-${name}`,
    files: { "bench.cf": cfText },
    mainCf: { proxy_read_maps: "proxy:pgsql:$queue_directory/../tables/bench.cf" },
  });
  try {
    const cf = inst.table("bench.cf");
    const old = Date.now() / 1000 - 60;
    utimesSync(cf, old, old);
    const table = `pgsql:${inst.queueDir}/../tables/bench.cf`;
    const probe = await WireClient.connect(inst.socket("proxymap"));
    const first = await probe.request([["request", "lookup"], ["table", table], ["flags", LOOKUP_FLAGS], ["key", "user1@example.com"]], 30_000);
    probe.close();
    if (first.kind !== "reply" || first.attrs[0]?.[1] !== "0") {
      throw new Error(`${name}: first lookup failed (${JSON.stringify(first.kind === "reply" ? first.attrs : first.kind)}); does ${name === "ours" ? OURS : "the C proxymap"} know the pgsql type?\n${inst.log().slice(-2000)}`);
    }
    for (const clients of CLIENTS) {
      await drive(inst, db, table, clients, 1); // warm-up: processes, pool, JIT
      const r = await drive(inst, db, table, clients, SECONDS);
      results.set(clients, r);
      const bound = r.peakConns > 0 ? (100 * r.rate) / (r.peakConns / SLEEP) : NaN;
      console.log(
        `${name}\t${clients}\t${r.rate.toFixed(0)}/s\tp50 ${r.p50.toFixed(1)}ms\tp99 ${r.p99.toFixed(1)}ms\terrors ${r.errors}\tdb conns ${r.peakConns}\tprocs ${r.procs}\tbound ${bound.toFixed(0)}%`,
      );
    }
  } finally {
    inst.stop();
  }
  return results;
}

await requirePostgres();
const db = createTestDatabase("bench");
try {
  db.sql(`CREATE TABLE t (k text PRIMARY KEY, v text); INSERT INTO t SELECT 'user' || i || '@example.com', 'value-' || i FROM generate_series(0, ${KEYS - 1}) i;`);
  console.log(`impl\tclients\tlookups/s\tp50\tp99\t(${SECONDS}s per run, query pg_sleep(${SLEEP}), ${KEYS} keys)`);
  const ref = ONLY !== "ours" ? await benchImpl("c", "C", db) : undefined;
  const ours = ONLY !== "c" ? await benchImpl({ path: OURS }, "ours", db) : undefined;
  const top = Math.max(...CLIENTS);
  const o = ours?.get(top);
  const c = ref?.get(top);
  if (o && c) {
    const bound = (100 * o.rate) / (o.peakConns / SLEEP);
    console.log(`# at ${top} clients: ours/C = ${(o.rate / c.rate).toFixed(2)}x (target >= 1.5x)`);
    console.log(`# ours: ${bound.toFixed(0)}% of the bound for its ${o.peakConns} connections (target >= 85%), p99 ${o.p99.toFixed(1)} ms (target < 30), ${o.peakConns} connections (target <= 16)`);
  }
} finally {
  db.drop();
}
