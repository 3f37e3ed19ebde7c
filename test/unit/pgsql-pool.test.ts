/**
 * pgsql tables: the shared pool (dbCommon/hostPool.ts through
 * pgsql/pool.ts) against the machine's PostgreSQL - many lookups in flight
 * at once, the connection_limit bound (as the server counts connections),
 * waiting for a free connection no longer than query_timeout, fast lookups
 * not stuck behind slow ones, idle connections closed after idle_interval,
 * and one pool for every table with the same server settings.
 *
 * Needs PostgreSQL (apt-get install postgresql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { pgPoolCount } from "../../src/tables/pgsql/pool";
import { closeOurTables, ourLookup, writeOld } from "../helpers/sqlLookup";
import { adminSql, createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  await requirePostgres();
  db = createTestDatabase("pool");
  db.sql("CREATE TABLE t (k text PRIMARY KEY, v text); INSERT INTO t VALUES ('a','A'), ('b','B'), ('c','C');");
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-pool-"));
});

afterAll(async () => {
  await closeOurTables(true);
  db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function cf(query: string, extra = ""): string {
  const path = join(dir, `t${++n}.cf`);
  writeOld(path, `hosts = inet:127.0.0.1:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\nquery = ${query}\n${extra}`);
  return `pgsql:${path}`;
}

/** Connections the server holds for the test role. */
function serverConnections(): number {
  return Number(adminSql(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${db.user}'`).trim());
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

const sleepy = (s: number) => `SELECT v FROM t, pg_sleep(${s}) WHERE k='%s'`;

describe("pgsql pool", () => {
  test("many lookups in flight at once", async () => {
    const table = cf(sleepy(0.2));
    await ourLookup(table, "a");
    const [results, ms] = await timed(() => Promise.all(Array.from({ length: 16 }, () => ourLookup(table, "a"))));
    for (const r of results) expect([r.status, r.value]).toEqual([Status.OK, "A"]);
    // One query at a time would take 16 x 0.2 s.
    expect(ms).toBeLessThan(1000);
  }, 30_000);

  test("connection_limit bounds the connections; the rest wait their turn", async () => {
    await closeOurTables();
    while (serverConnections() > 0) await Bun.sleep(20);
    const table = cf(sleepy(0.2), "connection_limit = 4\n");
    let peak = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        peak = Math.max(peak, serverConnections());
        await Bun.sleep(20);
      }
    })();
    const [results, ms] = await timed(() => Promise.all(Array.from({ length: 16 }, (_, i) => ourLookup(table, "abc"[i % 3]))));
    done = true;
    await watch;
    for (const [i, r] of results.entries()) expect([r.status, r.value]).toEqual([Status.OK, "ABC"[i % 3]]);
    expect(ms).toBeGreaterThan(750); // four rounds of four
    expect(ms).toBeLessThan(2500);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(0);
  }, 30_000);

  test("waiting for a connection is bounded by query_timeout", async () => {
    const table = cf(sleepy(0.6), "connection_limit = 1\nquery_timeout = 1\n");
    await ourLookup(table, "a");
    const results = await Promise.all([ourLookup(table, "a"), ourLookup(table, "b"), ourLookup(table, "c")]);
    // The second gets the connection at 0.6 s, in time; the third would get it at 1.2 s.
    expect(results.map((r) => r.status)).toEqual([Status.OK, Status.OK, Status.RETRY]);
    expect(results.flatMap((r) => r.log)).toContain(`warning: pgsql:${join(dir, `t${n}.cf`)}: no free database connection within 1 s`);
  }, 30_000);

  test("fast lookups are not stuck behind slow ones while connections are free", async () => {
    const slow = cf(sleepy(1));
    const fast = cf("SELECT v FROM t WHERE k='%s'");
    await ourLookup(fast, "a");
    const slowOnes = Promise.all(Array.from({ length: 6 }, () => ourLookup(slow, "a")));
    await Bun.sleep(100);
    const [r, ms] = await timed(() => Promise.all(Array.from({ length: 6 }, () => ourLookup(fast, "b"))));
    for (const x of r) expect(x.value).toBe("B");
    expect(ms).toBeLessThan(500);
    for (const x of await slowOnes) expect(x.value).toBe("A");
  }, 30_000);

  test("idle connections close after idle_interval; tables with the same server share one pool", async () => {
    await closeOurTables();
    while (serverConnections() > 0) await Bun.sleep(20);
    const pools = pgPoolCount();
    const a = cf(sleepy(0.1), "idle_interval = 1\n");
    const b = cf("SELECT upper(v) FROM t WHERE k='%s'", "idle_interval = 1\n");
    await Promise.all(Array.from({ length: 5 }, (_, i) => ourLookup(i % 2 ? a : b, "a")));
    expect(pgPoolCount()).toBe(pools + 1);
    expect(serverConnections()).toBeGreaterThanOrEqual(3);
    await Bun.sleep(2500);
    expect(serverConnections()).toBe(0);
    expect((await ourLookup(a, "c")).value).toBe("C");
  }, 30_000);
});
