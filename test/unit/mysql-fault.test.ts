/**
 * mysql tables under faults, against a private MariaDB this test starts,
 * stops and restarts (the machine's shared server keeps running):
 *  - the server stops in the middle of a load: RETRY while it is down,
 *    answers again within a second of its return, never a wrong answer,
 *    nothing thrown;
 *  - a host that accepts connections but never says a word: connect
 *    time-out, failover to the other host;
 *  - a host that stops answering in the middle of a query (a TCP relay we
 *    freeze): query time-out, failover to the other host;
 *  - a wrong password: RETRY for that table (as the reference answers, with
 *    its "Access denied" warning), while a table with the right one keeps
 *    answering.
 *
 * Needs MariaDB (apt-get install mariadb-server). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts } from "../../src/tables/dict";
import { closeOurTables, createTestDatabase, ourLookup, PrivateMariadb, type TestDatabase, writeOld } from "../helpers/mariadb";

let server: PrivateMariadb;
let tdb: TestDatabase;
let dir: string;
const KEYS = 100;

beforeAll(async () => {
  server = await PrivateMariadb.create();
  tdb = createTestDatabase("fault", server.socket, server.port);
  const rows = Array.from({ length: KEYS }, (_, i) => `('k${i}', 'v${i}')`).join(",");
  tdb.sql(`CREATE TABLE t (k VARCHAR(16) PRIMARY KEY, v VARCHAR(16)); INSERT INTO t VALUES ${rows};`);
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-fault-"));
});

afterAll(async () => {
  await closeOurTables(true);
  await closeAllDicts();
  tdb?.drop();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cf(name: string, hosts: string, extra = "", password = tdb.password): string {
  const path = join(dir, `${name}.cf`);
  writeOld(path, `hosts = ${hosts}\nuser = ${tdb.user}\npassword = ${password}\ndbname = ${tdb.db}\nquery = SELECT v FROM t WHERE k='%s'\n${extra}`);
  return `mysql:${path}`;
}

/** A TCP listener that accepts and never sends a byte. */
function silentServer(): Promise<{ port: number; close(): void }> {
  const socks: Socket[] = [];
  const srv = createServer((s) => {
    socks.push(s);
    s.on("error", () => {});
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      resolve({
        port,
        close() {
          for (const s of socks) s.destroy();
          srv.close();
        },
      });
    }),
  );
}

/** A TCP relay to the private server whose replies can be held back. */
function relay(targetPort: number): Promise<{ port: number; freeze(): void; close(): void }> {
  let frozen = false;
  const socks: Socket[] = [];
  const srv: Server = createServer((client) => {
    const upstream = createConnection(targetPort, "127.0.0.1");
    socks.push(client, upstream);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (!frozen) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      resolve({
        port,
        freeze: () => {
          frozen = true;
        },
        close() {
          for (const s of socks) s.destroy();
          srv.close();
        },
      });
    }),
  );
}

describe("mysql faults", () => {
  test("server stops mid-load: RETRY while down, answers within 1 s of its return, no wrong answer", async () => {
    const table = cf("restart", `unix:${server.socket}`);
    let running = true;
    const wrong: string[] = [];
    const timeline: Array<{ t: number; status: number }> = [];
    const client = async (n: number) => {
      let i = n;
      while (running) {
        i = (i + 7) % KEYS;
        let r;
        try {
          r = await ourLookup(table, `k${i}`);
        } catch (e) {
          wrong.push(`threw: ${String(e)}`);
          continue;
        }
        timeline.push({ t: Date.now(), status: r.status! });
        if (r.status === Status.OK && r.value !== `v${i}`) wrong.push(`k${i} -> ${r.value}`);
        if (r.status !== Status.OK && r.status !== Status.RETRY) wrong.push(`k${i} -> status ${r.status}`);
        if (r.status === Status.RETRY) await Bun.sleep(5);
      }
    };
    const clients = Array.from({ length: 16 }, (_, n) => client(n));
    await Bun.sleep(500);
    const stopAt = Date.now();
    await server.stop();
    const stoppedAt = Date.now();
    await Bun.sleep(1500);
    const downStatuses = timeline.filter((e) => e.t > stoppedAt + 100).map((e) => e.status);
    await server.start();
    const backAt = Date.now();
    // Wait for the first answer after the server's return.
    const deadline = backAt + 5000;
    let firstOk = 0;
    while (!firstOk && Date.now() < deadline) {
      firstOk = timeline.find((e) => e.t >= backAt && e.status === Status.OK)?.t ?? 0;
      await Bun.sleep(20);
    }
    await Bun.sleep(300);
    running = false;
    await Promise.all(clients);

    expect(wrong).toEqual([]);
    expect(timeline.filter((e) => e.t < stopAt && e.status === Status.OK).length).toBeGreaterThan(50);
    expect(downStatuses.length).toBeGreaterThan(0);
    expect(downStatuses.every((s) => s === Status.RETRY)).toBe(true);
    expect(firstOk).toBeGreaterThan(0);
    if (process.env.MYSQL_TEST_VERBOSE) console.log(`stop took ${stoppedAt - stopAt} ms; first answer ${firstOk - backAt} ms after the return; ${timeline.length} lookups`);
    expect(firstOk - backAt).toBeLessThan(1000);
    // And afterwards everything answers again.
    const after = timeline.filter((e) => e.t > firstOk + 100);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((e) => e.status === Status.OK)).toBe(true);
  }, 60_000);

  test("a host that accepts but never answers: connect time-out, failover", async () => {
    const silent = await silentServer();
    try {
      const table = cf("silent", `inet:127.0.0.1:${silent.port} inet:127.0.0.1:${server.port}`, "connect_timeout = 1\n");
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => ourLookup(table, `k${i}`)));
      const took = Date.now() - started;
      for (const [i, r] of results.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i}` });
      expect(took).toBeLessThan(3000);
      // Hosts are tried in random order; make sure the silent one was met at least once.
      let sawTimeout = results.some((r) => r.log.some((l) => l.includes(`connect to mysql server inet:127.0.0.1:${silent.port}: Can't connect to server on '127.0.0.1' (110)`)));
      for (let n = 0; !sawTimeout && n < 10; n++) {
        await closeOurTables();
        await closeAllDicts();
        const r = await ourLookup(table, "k1");
        expect(r.status).toBe(Status.OK);
        sawTimeout = r.log.some((l) => l.includes("(110)"));
      }
      expect(sawTimeout).toBe(true);
    } finally {
      silent.close();
      await closeOurTables();
      await closeAllDicts();
    }
  }, 60_000);

  test("a host that stops answering mid-query: query time-out, failover", async () => {
    const a = await relay(server.port);
    const b = await relay(server.port);
    try {
      const table = cf("freeze", `inet:127.0.0.1:${a.port} inet:127.0.0.1:${b.port}`, "query_timeout = 1\n");
      // Open 16 connections, spread at random over both hosts.
      const burst = await Promise.all(Array.from({ length: 16 }, () => ourLookup(table, "k4")));
      for (const r of burst) expect(r.status).toBe(Status.OK);
      a.freeze();
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 16 }, (_, i) => ourLookup(table, `k${i}`)));
      const took = Date.now() - started;
      for (const [i, r] of results.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i}` });
      expect(took).toBeGreaterThan(900); // some went to the frozen host and waited for the time-out
      expect(took).toBeLessThan(2500);
      const log = results.flatMap((r) => r.log);
      expect(log).toContain(`warning: mysql:${join(dir, "freeze.cf")}: query failed: no reply within 1 s`);
      // Later lookups go straight to the healthy host.
      const t0 = Date.now();
      expect((await ourLookup(table, "k9")).value).toBe("v9");
      expect(Date.now() - t0).toBeLessThan(500);
    } finally {
      a.close();
      b.close();
      await closeOurTables();
      await closeAllDicts();
    }
  }, 60_000);

  test("wrong password: RETRY with the reference's warning for that table only", async () => {
    const bad = cf("badpw", `unix:${server.socket}`, "", "wrong-password");
    const good = cf("goodpw", `unix:${server.socket}`);
    const [b, ...goods] = await Promise.all([ourLookup(bad, "k1"), ...Array.from({ length: 10 }, (_, i) => ourLookup(good, `k${i}`))]);
    expect(b.status).toBe(Status.RETRY);
    expect(b.log).toContain(`warning: connect to mysql server unix:${server.socket}: Access denied for user '${tdb.user}'@'localhost' (using password: YES)`);
    for (const [i, r] of goods.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i}` });
    // Still refused later (the host is down for retry_interval: no new attempt, no new warning), still fine next door.
    const again = await ourLookup(bad, "k2");
    expect(again.status).toBe(Status.RETRY);
    expect((await ourLookup(good, "k5")).value).toBe("v5");
  }, 30_000);
});
