/**
 * pgsql tables under faults, against a private PostgreSQL this test starts,
 * stops and restarts (the machine's cluster keeps running):
 *  - the server stops in the middle of a load: RETRY while it is down,
 *    answers again within a second of its return (the reference keeps
 *    answering RETRY for retry_interval, 60 s: a deliberate difference),
 *    never a wrong answer;
 *  - a restart while the pool holds idle connections: the next lookups
 *    answer (each dead connection is replaced once, silently);
 *  - the first host down: failover to the next, with the reference's
 *    warning, and the dead host set aside;
 *  - a wrong password: RETRY with the reference's warning for that table,
 *    another table of the same server keeps answering;
 *  - a query the server refuses and a statement timeout: RETRY with the
 *    reference's warning, and the host is not set aside (later lookups of
 *    other tables still answer);
 *  - a host that accepts connections but never answers: connect time-out,
 *    failover.
 *
 * Needs PostgreSQL (apt-get install postgresql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeOurTables, ourLookup, writeOld } from "../helpers/sqlLookup";
import { createTestDatabase, PrivatePostgres, type TestDatabase } from "../helpers/postgres";

let server: PrivatePostgres;
let db: TestDatabase;
let dir: string;
const KEYS = 100;

beforeAll(async () => {
  server = await PrivatePostgres.create();
  db = createTestDatabase("fault", { server });
  const rows = Array.from({ length: KEYS }, (_, i) => `('k${i}', 'v${i}')`).join(",");
  db.sql(`CREATE TABLE t (k text PRIMARY KEY, v text); INSERT INTO t VALUES ${rows};`);
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-fault-"));
});

afterAll(async () => {
  await closeOurTables(true);
  db?.drop();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cf(name: string, hosts: string, extra = "", opts: { password?: string; query?: string } = {}): string {
  const path = join(dir, `${name}.cf`);
  writeOld(path, `hosts = ${hosts}\nuser = ${db.user}\npassword = ${opts.password ?? db.password}\ndbname = ${db.db}\nquery = ${opts.query ?? "SELECT v FROM t WHERE k='%s'"}\n${extra}`);
  return `pgsql:${path}`;
}

/** A TCP relay to the private server's socket; replies can be held back. */
function relay(): Promise<{ port: number; freeze(): void; close(): void }> {
  let frozen = false;
  const socks: Socket[] = [];
  const srv: Server = createServer((client) => {
    const upstream = createConnection({ path: server.socketPath });
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

/** A TCP listener that accepts and never sends a byte. */
function silentServer(): Promise<{ port: number; close(): void }> {
  const socks: Socket[] = [];
  const srv = createServer((s) => {
    socks.push(s);
    s.on("error", () => {});
  });
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => {
      resolve({
        port: (srv.address() as { port: number }).port,
        close() {
          for (const s of socks) s.destroy();
          srv.close();
        },
      });
    }),
  );
}

describe("pgsql faults", () => {
  test("server stops mid-load: RETRY while down, answers within 1 s of its return, no wrong answer", async () => {
    const table = cf("restart", `unix:${server.socketDir}`);
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
    // The pool's connections first (SCRAM authentication takes a moment on a busy machine).
    await Promise.all(Array.from({ length: 16 }, (_, i) => ourLookup(table, `k${i}`)));
    const clients = Array.from({ length: 16 }, (_, n) => client(n));
    await Bun.sleep(500);
    const stopAt = Date.now();
    await server.stop();
    const stoppedAt = Date.now();
    await Bun.sleep(1500);
    const downStatuses = timeline.filter((e) => e.t > stoppedAt + 100).map((e) => e.status);
    await server.start();
    const backAt = Date.now();
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
    console.log(`server stop took ${stoppedAt - stopAt} ms; first answer ${firstOk - backAt} ms after its return; ${timeline.length} lookups`);
    expect(firstOk - backAt).toBeLessThan(1000);
    const after = timeline.filter((e) => e.t > firstOk + 100);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((e) => e.status === Status.OK)).toBe(true);
  }, 60_000);

  test("a restart while connections are idle in the pool: the next lookups answer", async () => {
    const table = cf("idle-restart", `unix:${server.socketDir}`);
    const warm = await Promise.all(Array.from({ length: 8 }, (_, i) => ourLookup(table, `k${i}`)));
    for (const r of warm) expect(r.status).toBe(Status.OK);
    await server.stop();
    await server.start();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => ourLookup(table, `k${i + 10}`)));
    for (const [i, r] of results.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i + 10}` });
  }, 60_000);

  test("first host down: failover to the next, the reference's warning, the dead host set aside", async () => {
    const r1 = await relay();
    const dead = join(dir, "dead-socket-dir");
    mkdirSync(dead, { recursive: true });
    try {
      // UNIX sockets are tried first: the dead one, then the server through TCP.
      const table = cf("failover", `unix:${dead} inet:127.0.0.1:${r1.port}`);
      const first = await ourLookup(table, "k1");
      expect({ status: first.status, value: first.value }).toEqual({ status: Status.OK, value: "v1" });
      expect(first.log).toEqual([
        `warning: connect to pgsql server unix:${dead}: connection to server on socket "${dead}/.s.PGSQL.5432" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n`,
      ]);
      // Set aside: no new attempt (and no new warning) for the next lookups.
      const more = await Promise.all(Array.from({ length: 10 }, (_, i) => ourLookup(table, `k${i}`)));
      for (const [i, r] of more.entries()) expect({ status: r.status, value: r.value, log: r.log }).toEqual({ status: Status.OK, value: `v${i}`, log: [] });
    } finally {
      r1.close();
    }
  }, 30_000);

  test("wrong password: RETRY with the reference's warning for that table only", async () => {
    const bad = cf("badpw", `unix:${server.socketDir}`, "", { password: "wrong-password" });
    const good = cf("goodpw", `unix:${server.socketDir}`);
    const [b, ...goods] = await Promise.all([ourLookup(bad, "k1"), ...Array.from({ length: 10 }, (_, i) => ourLookup(good, `k${i}`))]);
    expect(b.status).toBe(Status.RETRY);
    expect(b.log).toEqual([`warning: connect to pgsql server unix:${server.socketDir}: connection to server on socket "${server.socketPath}" failed: FATAL:  password authentication failed for user "${db.user}"\n`]);
    for (const [i, r] of goods.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i}` });
    const again = await ourLookup(bad, "k2");
    expect(again.status).toBe(Status.RETRY);
    expect((await ourLookup(good, "k5")).value).toBe("v5");
  }, 30_000);

  test("a query that errors: RETRY with the reference's warning; the host stays in use", async () => {
    const table = cf("sqlerr", `unix:${server.socketDir}`, "", { query: "SELECT nosuch FROM t WHERE k='%s'" });
    const good = cf("sqlerr-good", `unix:${server.socketDir}`);
    const r = await ourLookup(table, "k1");
    expect(r.status).toBe(Status.RETRY);
    expect(r.log).toEqual([`warning: pgsql query failed: fatal error from host unix:${server.socketDir}: ERROR:  column "nosuch" does not exist\nLINE 1: SELECT nosuch FROM t WHERE k='k1'\n               ^\n`]);
    expect((await ourLookup(good, "k3")).value).toBe("v3");
  }, 30_000);

  test("a statement timeout: RETRY with the server's words; quick queries still answer", async () => {
    server.sql(`ALTER ROLE ${db.user} SET statement_timeout = '200ms'`);
    try {
      // Pools of their own (connection_limit differs): new sessions, which get the role's setting.
      const slow = cf("stmt-timeout", `unix:${server.socketDir}`, "connection_limit = 3\n", { query: "SELECT v FROM t, pg_sleep(1) WHERE k='%s'" });
      const fast = cf("stmt-fast", `unix:${server.socketDir}`, "connection_limit = 2\n");
      const t0 = Date.now();
      const [s, f] = await Promise.all([ourLookup(slow, "k1"), ourLookup(fast, "k2")]);
      expect(s.status).toBe(Status.RETRY);
      expect(s.log).toEqual([`warning: pgsql query failed: fatal error from host unix:${server.socketDir}: ERROR:  canceling statement due to statement timeout\n`]);
      expect(Date.now() - t0).toBeLessThan(900);
      expect({ status: f.status, value: f.value }).toEqual({ status: Status.OK, value: "v2" });
    } finally {
      server.sql(`ALTER ROLE ${db.user} RESET statement_timeout`);
    }
  }, 30_000);

  test("our query_timeout: a statement without a reply is RETRY after it, the connection closed", async () => {
    const r1 = await relay();
    try {
      const table = cf("frozen", `inet:127.0.0.1:${r1.port}`, "query_timeout = 1\n");
      expect((await ourLookup(table, "k1")).value).toBe("v1");
      r1.freeze();
      const t0 = Date.now();
      const r = await ourLookup(table, "k2");
      expect(r.status).toBe(Status.RETRY);
      expect(Date.now() - t0).toBeGreaterThan(900);
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(r.log).toContain(`warning: pgsql query failed: fatal error from host inet:127.0.0.1:${r1.port}: no reply within 1 s`);
    } finally {
      r1.close();
    }
  }, 30_000);

  test("a host that accepts but never answers: connect time-out, failover", async () => {
    const silent = await silentServer();
    const r1 = await relay();
    try {
      // Both TCP: tried in random order; the silent one costs one connect_timeout once, then is set aside.
      const table = cf("silent", `inet:127.0.0.1:${silent.port} inet:127.0.0.1:${r1.port}`, "connect_timeout = 1\n");
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ourLookup(table, `k${i}`)));
      for (const [i, r] of results.entries()) expect({ status: r.status, value: r.value }).toEqual({ status: Status.OK, value: `v${i}` });
      expect(Date.now() - t0).toBeLessThan(3500);
    } finally {
      silent.close();
      r1.close();
    }
  }, 30_000);
});
