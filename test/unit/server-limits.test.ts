/**
 * server-limits.test.ts - the skeleton's bounds, with real UNIX sockets and
 * the real session, and a small service of the test's own:
 *  - proxymap_client_limit: at the limit the process stops accepting and
 *    reports itself taken to master; a client that connects meanwhile waits
 *    in the listen queue and is served (and "available" reported) as soon
 *    as another client leaves;
 *  - queued output: a client that sends many requests and reads none of the
 *    replies gets only about HIGH_WATER bytes answered until it reads; then
 *    every reply arrives, in order.
 * (The end-to-end test under a real master, with master starting more
 * processes, is test/e2e/limits.test.ts.)
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { encodeRequest, parseList, WireClient } from "../helpers/wire";
import { MultiServer } from "../../src/server/skeleton";
import { HIGH_WATER } from "../../src/server/clientConn";
import { MASTER_STAT_AVAIL, MASTER_STAT_TAKEN, type MasterStatus } from "../../src/server/masterStatus";
import type { ServerParams } from "../../src/server/params";
import { unixListen } from "../../src/sys/libc";
import { encodeAttrs } from "../../src/protocol/attr";
import { ClientSession } from "../../src/service/session";
import type { ProxymapService } from "../../src/service/proxymap";

const tmp = mkdtempSync(join(tmpdir(), "srv-limits-"));
let seq = 0;
const servers: MultiServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.shutdown();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PARAMS: ServerParams = {
  maxIdle: 100,
  maxUse: 100,
  ipcTimeout: 3600,
  daemonTimeout: 18000,
  busyLagMs: 0,
  busyCpuPercent: 0,
  busyRequests: 0,
  tableChangeRestart: false,
  clientLimit: 100,
};

/** A service whose every lookup answers `value` = the key repeated to `size` bytes; counts the answers. */
function echoService(size = 16) {
  const counter = { handled: 0 };
  const service: ProxymapService = {
    writer: false,
    settings: {} as ProxymapService["settings"],
    connect(io) {
      io.write(Buffer.from("protocol\0proxymap_protocol\0\0", "latin1"));
      return new ClientSession(io, {
        streamName: "proxymap socket",
        installedGen: "either",
        maxRequestSize: 1 << 20,
        onAsync() {},
        handle(s) {
          if (s.op !== "lookup") return null;
          counter.handled++;
          return encodeAttrs([["status", 0], ["value", s.key.padEnd(size, ".")]]);
        },
      });
    },
    changedTable: () => undefined,
    inFlight: 0,
  };
  return { service, counter };
}

async function serve(params: Partial<ServerParams>, size?: number) {
  const sock = join(tmp, `s${++seq}.sock`);
  const reports: number[] = [];
  const status = { open: async () => {}, notify: (s: number) => (reports.push(s), true) } as unknown as MasterStatus;
  const { service, counter } = echoService(size);
  const server = new MultiServer({
    service,
    params: { ...PARAMS, ...params },
    serviceName: "proxymap",
    idleExit: false,
    useExit: false,
    status,
    exit: () => {},
  });
  servers.push(server);
  server.listenFd(unixListen(sock));
  await server.start();
  return { sock, reports, counter, server };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await Bun.sleep(10);
}

describe("proxymap_client_limit", () => {
  test("at the limit: no new client accepted, taken reported; below it: the waiting client is served, available reported", async () => {
    const t = await serve({ clientLimit: 2 });
    const a = await WireClient.connect(t.sock);
    const b = await WireClient.connect(t.sock);
    await until(() => t.reports.length > 0);
    expect(t.reports).toEqual([MASTER_STAT_TAKEN]);
    expect(t.server.clients).toBe(2);
    // A third client connects (the kernel queues it) but is not accepted: no greeting.
    const late = WireClient.connect(t.sock, { timeoutMs: 5000 });
    await Bun.sleep(300);
    expect(t.server.clients).toBe(2);
    expect(await a.lookup("t:t", "x")).toEqual({ status: "0", value: "x..............." });
    // One leaves: the waiting client is accepted, greeted and served.
    b.close();
    const c = await late;
    expect(await c.lookup("t:t", "y")).toEqual({ status: "0", value: "y..............." });
    await until(() => t.reports.length > 2);
    // taken, available, then taken again (two clients once more).
    expect(t.reports).toEqual([MASTER_STAT_TAKEN, MASTER_STAT_AVAIL, MASTER_STAT_TAKEN]);
    a.close();
    c.close();
    await until(() => t.server.clients === 0);
    expect(t.reports.at(-1)).toBe(MASTER_STAT_AVAIL);
  });

  test("the default limit is 100", async () => {
    const { readServerParams } = await import("../../src/server/params");
    expect(readServerParams({ get: () => "" } as never).clientLimit).toBe(100);
  });
});

describe("queued output", () => {
  test("a client that reads no replies gets about HIGH_WATER bytes answered; reading, it gets all, in order", async () => {
    const size = 100_000;
    const t = await serve({}, size);
    const sock = createConnection({ path: t.sock });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.pause(); // read nothing
    const n = 400; // 40 MB of replies
    const reqs = Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest("lookup", "t:t", 0, [["key", `k${i}`]])));
    sock.write(reqs);
    await Bun.sleep(1000);
    // What was answered: the queue's high-water mark plus what the kernel buffers hold, not all 40 MB.
    const answered = t.counter.handled;
    expect(answered * size).toBeLessThan(HIGH_WATER + 8 * 1024 * 1024);
    expect(answered).toBeLessThan(n);
    // Now read everything.
    let buf = Buffer.alloc(0);
    const values: string[] = [];
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const l = parseList(buf);
        if (!l) break;
        buf = buf.subarray(l.used);
        const v = l.attrs.find(([k]) => k === "value");
        if (v) values.push(v[1].replace(/\.+$/, ""));
      }
    });
    sock.resume();
    await until(() => values.length === n, 20_000);
    expect(values).toEqual(Array.from({ length: n }, (_, i) => `k${i}`));
    sock.destroy();
  });
});
