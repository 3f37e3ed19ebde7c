/**
 * mysql tables: the shared pool (pool.ts) against the machine's MariaDB -
 * many lookups in flight at once, the connection_limit bound (also as the
 * server counts connections), waiting for a free connection in order and
 * no longer than query_timeout, the per-query time-out, fast lookups not
 * stuck behind slow ones while connections are free, and idle connections
 * closed after idle_interval.
 *
 * Needs MariaDB (apt-get install mariadb-server). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts } from "../../src/tables/dict";
import { closeOurTables, createTestDatabase, ourLookup, requireMariadb, type TestDatabase, writeOld } from "../helpers/mariadb";

let tdb: TestDatabase;
let dir: string;

beforeAll(async () => {
  await requireMariadb();
  tdb = createTestDatabase("pool");
  tdb.sql("CREATE TABLE t (k VARCHAR(16) PRIMARY KEY, v VARCHAR(16)); INSERT INTO t VALUES ('a','A'), ('b','B'), ('c','C');");
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-pool-"));
});

afterAll(async () => {
  await closeOurTables(true);
  await closeAllDicts();
  tdb?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function cf(query: string, extra = ""): string {
  const path = join(dir, `t${++n}.cf`);
  writeOld(path, `hosts = unix:${tdb.socket}\nuser = ${tdb.user}\npassword = ${tdb.password}\ndbname = ${tdb.db}\nquery = ${query}\n${extra}`);
  return `mysql:${path}`;
}

/** Connections the server holds for the test user. */
function serverConnections(): number {
  return Number(tdb.sql(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '${tdb.user}'`).trim());
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

describe("mysql pool", () => {
  test("many lookups in flight at once", async () => {
    const table = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(0.2)=0");
    const [results, ms] = await timed(() => Promise.all(Array.from({ length: 16 }, () => ourLookup(table, "a"))));
    for (const r of results) expect([r.status, r.value]).toEqual([Status.OK, "A"]);
    // One query at a time would take 16 x 0.2 s.
    expect(ms).toBeLessThan(800);
  }, 30_000);

  test("connection_limit bounds the connections; the rest wait their turn", async () => {
    await closeOurTables();
    await closeAllDicts();
    while (serverConnections() > 0) await Bun.sleep(20);
    const table = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(0.2)=0", "connection_limit = 4\n");
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
    expect(ms).toBeLessThan(2000);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThan(0);
  }, 30_000);

  test("waiting for a connection is bounded by query_timeout", async () => {
    const table = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(0.6)=0", "connection_limit = 1\nquery_timeout = 1\n");
    const results = await Promise.all([ourLookup(table, "a"), ourLookup(table, "b"), ourLookup(table, "c")]);
    // The second gets the connection at 0.6 s, in time; the third would get it at 1.2 s.
    expect(results.map((r) => r.status)).toEqual([Status.OK, Status.OK, Status.RETRY]);
    const log = results.flatMap((r) => r.log).join("\n");
    expect(log).toContain("no free database connection within 1 s");
  }, 30_000);

  test("a query that takes too long: RETRY after query_timeout", async () => {
    const table = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(3)=0", "query_timeout = 1\n");
    const [r, ms] = await timed(() => ourLookup(table, "a"));
    expect(r.status).toBe(Status.RETRY);
    expect(ms).toBeGreaterThan(900);
    expect(ms).toBeLessThan(2000);
    expect(r.log.some((l) => l.endsWith("query failed: no reply within 1 s"))).toBe(true);
  }, 30_000);

  test("fast lookups are not stuck behind slow ones while connections are free", async () => {
    const slow = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(1)=0");
    const fast = cf("SELECT v FROM t WHERE k='%s'");
    const slowOnes = Promise.all(Array.from({ length: 6 }, () => ourLookup(slow, "a")));
    await Bun.sleep(100);
    const [r, ms] = await timed(() => Promise.all(Array.from({ length: 6 }, () => ourLookup(fast, "b"))));
    for (const x of r) expect(x.value).toBe("B");
    expect(ms).toBeLessThan(300);
    for (const x of await slowOnes) expect(x.value).toBe("A");
  }, 30_000);

  test("idle connections close after idle_interval", async () => {
    await closeOurTables();
    await closeAllDicts();
    const table = cf("SELECT v FROM t WHERE k='%s' AND SLEEP(0.1)=0", "idle_interval = 1\n");
    await Promise.all(Array.from({ length: 5 }, () => ourLookup(table, "a")));
    expect(serverConnections()).toBeGreaterThanOrEqual(5);
    await Bun.sleep(2500);
    expect(serverConnections()).toBe(0);
    // And they come back on demand.
    expect((await ourLookup(table, "c")).value).toBe("C");
  }, 30_000);
});
