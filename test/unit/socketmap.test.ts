/**
 * socketmap.test.ts - the socketmap table (src/tables/socketmap.ts, its driver socketmap/driver.ts) and its
 * netstring codec, against a real socketmap server of our own
 * (test/helpers/socketmap-server.ts) on a UNIX socket and on loopback TCP:
 *  - the same requests to the C proxymap (the oracle) and to ours give the
 *    same replies and warnings: OK/NOTFOUND/TEMP/TIMEOUT/PERM and unknown
 *    replies, a bare "OK", NUL in a value, malformed netstrings, a server
 *    that closes mid-reply (retried once), connect failures, bad names,
 *    NO_UNAUTH, the write service;
 *  - ours only: the time limit (shortened here), lookups in flight in
 *    parallel on several connections, and stall isolation through a real
 *    proxymap socket of ours (--listen): while one lookup waits on a
 *    stalled server, other clients' lookups are answered at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { SocketmapServer } from "../helpers/socketmap-server";
import { WireClient } from "../helpers/wire";
import { startListening, writeListenConfig } from "../helpers/listen";
import { parseIn, runOracle, runOurs, withoutReference } from "../golden/lib/golden";
import { decodeNetstring, encodeNetstring } from "../../src/tables/net/netstring";
import { socketmapLimits } from "../../src/tables/socketmap/driver";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { setLogSinks } from "../../src/log/msg";
import { Status } from "../../src/protocol/constants";

const tmp = mkdtempSync(join(tmpdir(), "sockmap-test-"));
let unixSrv: SocketmapServer;
let inetSrv: SocketmapServer;
const DATA = { m: { a: "1", b: "x y", u: "\xc3\xa9t\xc3\xa9", "\xc3\xa9": "e-acute" }, other: { a: "other-a" } };

beforeAll(async () => {
  unixSrv = await SocketmapServer.start({ path: join(tmp, "sm.sock"), data: DATA });
  inetSrv = await SocketmapServer.start({ data: DATA });
});
afterAll(async () => {
  await unixSrv.close();
  await inetSrv.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** Run the same requests through the C proxymap and ours; both texts must be equal. */
async function sameAsOracle(text: string): Promise<string> {
  const c = parseIn("socketmap", "live", text);
  const { ref, diedAt } = await runOracle(c);
  expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
  const ours = await runOurs(c);
  expect(ours).toBe(withoutReference(ref));
  return ours;
}

describe("netstring codec", () => {
  test("encode and decode", () => {
    expect(encodeNetstring("OK x")).toBe("4:OK x,");
    expect(encodeNetstring("")).toBe("0:,");
    expect(decodeNetstring("4:OK x,rest", 100)).toEqual({ kind: "ok", value: "OK x", used: 7 });
    expect(decodeNetstring(":,", 100)).toEqual({ kind: "ok", value: "", used: 2 });
    expect(decodeNetstring("4:OK", 100).kind).toBe("more");
    expect(decodeNetstring("12", 100).kind).toBe("more");
    expect(decodeNetstring("4:OK x;", 100)).toEqual({ kind: "error", error: "format" });
    expect(decodeNetstring("4x:", 100)).toEqual({ kind: "error", error: "format" });
    expect(decodeNetstring("101:", 100)).toEqual({ kind: "error", error: "size" });
    expect(decodeNetstring("99999999999999999999", 100)).toEqual({ kind: "error", error: "size" });
    expect(decodeNetstring("3:\x00\xff\n,", 100)).toEqual({ kind: "ok", value: "\x00\xff\n", used: 6 });
  });
});

describe("socketmap against the C proxymap", () => {
  for (const where of ["unix", "inet"] as const) {
    test(`replies and warnings (${where})`, async () => {
      const t = (where === "unix" ? unixSrv : inetSrv).table("m");
      await sameAsOracle(`
open "${t}" 0
lookup "${t}" 0 "a"
lookup "${t}" 0 "b"
lookup "${t}" 0 "A"
lookup "${t}" 32768 "A"
lookup "${t}" 0 "zz"
lookup "${t}" 0 "reply=OK"
lookup "${t}" 0 "reply=OK "
lookup "${t}" 0 "reply=OK a%00b"
lookup "${t}" 0 "reply=NOTFOUND"
lookup "${t}" 0 "reply=TEMP"
lookup "${t}" 0 "reply=TEMP%20%20%20busy now"
lookup "${t}" 0 "reply=TIMEOUT x"
lookup "${t}" 0 "reply=PERM bad%ffx%01"
lookup "${t}" 0 "reply=PERM %c3%a9t%c3%a9"
lookup "${t}" 0 "reply=WHAT x"
lookup "${t}" 0 "reply=ok x"
lookup "${t}" 0 "garbage"
lookup "${t}" 0 "a"
lookup "${t}" 0 "raw=5x:OK a,"
lookup "${t}" 0 "raw=4:OK a;"
lookup "${t}" 0 "raw=999999:"
lookup "${t}" 0 "close"
lookup "${t}" 0 "a"
lookup "${t}" 0 "u"
lookup "${t}" 524288 "u"
lookup "${t}" 557056 "\\xc3\\x89"
lookup "${t}" 32768 "\\xc3\\x89"
lookup "${t}" 524288 "a\\xff"
lookup "unionmap:{${t}, static:s}" 512 "a"
lookup "pipemap:{inline:{k=a}, ${t}}" 512 "k"
`);
    });
  }

  test("long warning text is cut at 200 bytes; other map names on one server; sequence", async () => {
    const t = unixSrv.table("m");
    const o = unixSrv.table("other");
    await sameAsOracle(`
lookup "${t}" 0 "reply=TEMP ${"x".repeat(150)}${"y".repeat(150)}"
lookup "${o}" 0 "a"
lookup "${t}" 0 "a"
! sequence "${t}" 0 0
`);
  });

  test("connect failures, bad names, NO_UNAUTH, sequence", async () => {
    const t = unixSrv.table("m");
    await sameAsOracle(`
lookup "socketmap:unix:${tmp}/nonexistent:m" 0 "a"
lookup "socketmap:inet:127.0.0.1:1:m" 0 "a"
lookup "socketmap:inet:127.0.0.1:no-such-service:m" 0 "a"
lookup "socketmap:nocolon" 0 "a"
open "socketmap:unix:${tmp}/sm.sock:n" 8192
lookup "socketmap:unix:${tmp}/sm.sock:n" 0 "a"
lookup "${t}" 8192 "a"
sequence "${t}" 0 0
`);
  });

  test("server names the reference exits on: ours answers CONFIG for that table only", async () => {
    for (const name of ["socketmap:foo:/x:m", "socketmap:unix::m", "socketmap:inet:[::1:m"]) {
      const ours = await sameAsOracle(`lookup "${unixSrv.table("m")}" 0 "a"\n! lookup "${name}" 0 "a"\n`);
      expect(ours).toContain('!< status="5" value=""');
    }
  }, 30_000);

  test("the write service refuses socketmap", async () => {
    const t = unixSrv.table("m");
    await sameAsOracle(`
option writer
open "${t}" 0
lookup "${t}" 0 "a"
update "${t}" 0 "a" "b"
`);
  });
});

describe("socketmap, ours only", () => {
  const logs: string[] = [];
  beforeAll(() => setLogSinks([{ write: (_s, l) => logs.push(l) }]));
  afterAll(async () => {
    await closeAllDicts();
    setLogSinks([{ write: (_s, l) => process.stderr.write(`proxymap: ${l}\n`) }]);
  });

  test("a reply that does not come within the time limit: RETRY, connection dropped", async () => {
    const saved = socketmapLimits.timeoutMs;
    socketmapLimits.timeoutMs = 300;
    try {
      const name = `socketmap:${unixSrv.address}:m`;
      const dict = await openDict(name, false, 0);
      const t0 = Date.now();
      const r = await dictGet(dict, "stall", 0);
      expect(r.status).toBe(Status.RETRY);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(logs).toContain(`warning: table ${name} lookup error: time limit exceeded`);
      // The next lookup is not confused by a late reply: a new connection answers it.
      expect(await dictGet(dict, "a", 0)).toMatchObject({ status: Status.OK, value: "1" });
    } finally {
      socketmapLimits.timeoutMs = saved;
    }
  });

  test("lookups run in parallel on several connections, each gets its own answer", async () => {
    const srv = await SocketmapServer.start({ path: join(tmp, "par.sock"), data: { m: { k0: "v0", k1: "v1", k2: "v2", k3: "v3", k4: "v4", k5: "v5" } } });
    try {
      const dict = await openDict(srv.table("m"), false, 0);
      const t0 = Date.now();
      const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => dictGet(dict, `delay=${300 - i * 40}:k${i}`, 0)));
      const took = Date.now() - t0;
      expect(results.map((r) => r.value)).toEqual(["v0", "v1", "v2", "v3", "v4", "v5"]);
      expect(took).toBeLessThan(550); // serial would be 1.2 s
      expect(srv.accepted).toBe(6);
      // Connections are reused afterwards, one request at a time each.
      const again = await Promise.all([0, 1, 2].map((i) => dictGet(dict, `k${i}`, 0)));
      expect(again.map((r) => r.value)).toEqual(["v0", "v1", "v2"]);
      expect(srv.accepted).toBe(6);
      // More requests than the connection limit queue for a free connection.
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => dictGet(dict, `k${i % 6}`, 0)));
      expect(many.map((r) => r.value)).toEqual(Array.from({ length: 20 }, (_, i) => `v${i % 6}`));
      expect(srv.accepted).toBeLessThanOrEqual(socketmapLimits.maxConnections);
    } finally {
      await srv.close();
    }
  });

  test("a server that restarts between lookups is transparent (one retry on a new connection)", async () => {
    const dict = await openDict(inetSrv.table("m"), false, 0);
    expect((await dictGet(dict, "a", 0)).value).toBe("1");
    inetSrv.dropClients();
    await Bun.sleep(20);
    expect(await dictGet(dict, "b", 0)).toMatchObject({ status: Status.OK, value: "x y" });
  });
});

describe("stall isolation through a real proxymap socket of ours", () => {
  let proc: Subprocess | undefined;
  afterAll(() => proc?.kill("SIGKILL"));

  test("a stalled socketmap server delays only the requests that wait on it", async () => {
    const stalled = await SocketmapServer.start({ path: join(tmp, "stalled.sock"), mode: "stall" });
    const dir = join(tmp, "listen");
    const smGood = unixSrv.table("m");
    const smStalled = stalled.table("m");
    writeListenConfig(dir, [`proxy_read_maps = proxy:${smGood} proxy:${smStalled} proxy:inline:{a=b}`]);
    const listening = await startListening(dir, join(dir, "pm.sock"));
    proc = listening.proc;
    const sock = listening.sock;
    const lookup = (c: WireClient, table: string, key: string) => c.lookup(table, key, "0");
    try {
      const a = await WireClient.connect(sock);
      const b = await WireClient.connect(sock);
      const c = await WireClient.connect(sock);
      // Client A waits on the stalled server (and on a stalled key of the good one).
      let aDone = false;
      const aReq = a.request([["request", "lookup"], ["table", smStalled], ["flags", "0"], ["key", "x"]]).then(() => (aDone = true));
      await Bun.sleep(100);
      // Client B: another table; client C: the same kind of table on a healthy server.
      const t0 = performance.now();
      expect(await lookup(b, "inline:{a=b}", "a")).toMatchObject({ status: "0", value: "b" });
      const tInline = performance.now() - t0;
      const t1 = performance.now();
      expect(await lookup(c, smGood, "a")).toMatchObject({ status: "0", value: "1" });
      const tGood = performance.now() - t1;
      // B on the stalled server too: it queues, but does not hold up C.
      void b.request([["request", "lookup"], ["table", smStalled], ["flags", "0"], ["key", "y"]]);
      const t2 = performance.now();
      expect(await lookup(c, smGood, "b")).toMatchObject({ status: "0", value: "x y" });
      const tGood2 = performance.now() - t2;
      console.log(`stall isolation: inline ${tInline.toFixed(1)} ms, healthy socketmap ${tGood.toFixed(1)} ms / ${tGood2.toFixed(1)} ms, while 2 lookups wait on a stalled server`);
      expect(tInline).toBeLessThan(200);
      expect(tGood).toBeLessThan(200);
      expect(tGood2).toBeLessThan(200);
      expect(aDone).toBe(false);
      void aReq;
      a.close();
      b.close();
      c.close();
    } finally {
      await stalled.close();
    }
  }, 30_000);
});
