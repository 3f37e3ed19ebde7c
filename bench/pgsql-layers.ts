/**
 * bench/pgsql-layers.ts - where a pgsql: table's connection capacity goes,
 * layer by layer, in this process (no master, no proxymap): the same 5 ms
 * query as bench/pgsql.ts over 16 connections, 32 lookups in flight,
 *   1. Bun's SQL client alone (16 clients of one connection each, the
 *      query text built by hand, simple query protocol);
 *   2. our pgsql driver (src/tables/pgsql.ts: pool, expansion, quoting),
 *      opened on a configuration file as the daemon opens it.
 * Prints lookups/s, the share of what 16 connections can carry at one query
 * per sleep, and the CPU time per lookup. bench/pgsql.ts measures the third
 * layer, the daemon under master, against the C proxymap.
 *
 *   bun bench/pgsql-layers.ts [--seconds N] [--sleep 0.005]
 *
 * Needs the machine's PostgreSQL (test/helpers/postgres.ts makes and drops
 * a database and role of its own).
 */
import { SQL } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DictFlag } from "../src/protocol/constants";
import { pgsql } from "../src/tables/pgsql";
import type { OpenContext, Table } from "../src/tables/table";
import { writeCoolFile } from "../test/helpers/files";
import { createTestDatabase, requirePostgres } from "../test/helpers/postgres";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const SECONDS = Number(arg("--seconds", "5"));
const SLEEP = Number(arg("--sleep", "0.005"));
const CONNS = 16;
const IN_FLIGHT = 32;
const KEYS = 10000;

/** Run IN_FLIGHT loops of lookup(key) for SECONDS; lookups/s and CPU us per lookup. */
async function drive(lookup: (key: string) => Promise<unknown>): Promise<{ rate: number; cpu: number }> {
  let count = 0;
  const end = Date.now() + SECONDS * 1000;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, j) => {
      for (let i = j; Date.now() < end; i++) {
        await lookup(`user${i % KEYS}@example.com`);
        count++;
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { rate: count / SECONDS, cpu: (c.user + c.system) / count };
}

function report(name: string, r: { rate: number; cpu: number }): void {
  const bound = (100 * r.rate) / (CONNS / SLEEP);
  console.log(`${name.padEnd(34)} ${r.rate.toFixed(0).padStart(6)}/s  ${bound.toFixed(0)}% of ${CONNS} connections' bound  CPU ${r.cpu.toFixed(0)} us/lookup`);
}

await requirePostgres();
const db = createTestDatabase("pglayers");
const dir = mkdtempSync("/tmp/pglayers-");
try {
  db.sql(`CREATE TABLE t (k text PRIMARY KEY, v text); INSERT INTO t SELECT 'user' || i || '@example.com', 'value-' || i FROM generate_series(0, ${KEYS - 1}) i;`);
  const query = (k: string) => `SELECT v FROM pg_sleep(${SLEEP}), t WHERE k='${k}'`;
  console.log(`query ${query("%s")}, ${IN_FLIGHT} lookups in flight, ${SECONDS} s each`);

  const clients = Array.from({ length: CONNS }, () => new SQL({ hostname: db.host ?? "127.0.0.1", port: db.port, username: db.user, password: db.password, database: db.db, max: 1 }));
  for (const c of clients) await c.unsafe("SELECT 1").simple().raw();
  // One loop per connection at a time, as the pool does: a lookup takes the next free client.
  const free = [...clients];
  const waiting: Array<(c: SQL) => void> = [];
  const raw = async (key: string) => {
    const c = free.pop() ?? (await new Promise<SQL>((res) => waiting.push(res)));
    try {
      await c.unsafe(query(key)).simple().raw();
    } finally {
      const w = waiting.shift();
      if (w) w(c);
      else free.push(c);
    }
  };
  report("1. Bun's SQL client alone", await drive(raw));
  for (const c of clients) await c.close();

  await pgsql.prepare?.({ jailed: false } as never);
  const cf = writeCoolFile(
    join(dir, "t.cf"),
    `hosts = inet:${db.host ?? "127.0.0.1"}:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\nconnection_limit = ${CONNS}\nquery = ${query("%s")}\n`,
  );
  const ctx: OpenContext = { openTable: () => Promise.reject(new Error("no nested tables here")) };
  const t = (await pgsql.open({ type: "pgsql", name: cf, write: false, flags: 0 }, ctx)) as Table;
  report("2. our pgsql driver", await drive(async (key) => t.lookup(key, DictFlag.FOLD_FIX)));
  await t.close?.();
} finally {
  rmSync(dir, { recursive: true, force: true });
  db.drop();
}
process.exit(0);
