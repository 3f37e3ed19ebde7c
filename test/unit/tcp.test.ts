/**
 * tcp.test.ts - the tcp table (src/tables/tcp.ts, its driver tcp/driver.ts; tcp_table(5)) and its
 * %XX codec, against a real tcp_table server of our own
 * (test/helpers/tcp-server.ts) on loopback TCP:
 *  - the same requests to the C proxymap (the oracle) and to ours give the
 *    same replies and warnings: 200/500/400 replies, quoting of keys and
 *    decoding of values (a %00 ends a value, a CR stays), malformed lines,
 *    bad status codes, garbage, NO_UNAUTH, the write service, and the ten
 *    attempts one second apart after an EOF;
 *  - ours only (retry pause shortened): a server that closes mid-line or
 *    is not there (ten warnings each, the reference's texts), a time limit,
 *    parallel lookups on several connections, and a stalled server that
 *    does not delay another table's lookups.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { TcpTableServer } from "../helpers/tcp-server";
import { parseIn, runOracle, runOurs, withoutReference } from "../golden/lib/golden";
import { hexQuote, hexUnquote, printableWith } from "../../src/tables/net/text";
import { tcpLimits } from "../../src/tables/tcp/driver";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { setLogSinks } from "../../src/log/msg";
import { Status } from "../../src/protocol/constants";

let srv: TcpTableServer;
beforeAll(async () => {
  srv = await TcpTableServer.start({ data: { a: "1", "x y": "v a%l", "k%": "\x01\xff", A: "upper", "\xc3\xa9": "e-acute" } });
});
afterAll(async () => {
  await srv.close();
});

/** fastRetries: ours pauses 10 ms between attempts instead of 1 s (the texts do not change). */
async function sameAsOracle(text: string, fastRetries = false): Promise<string> {
  const c = parseIn("tcp", "live", text);
  const { ref, diedAt } = await runOracle(c);
  expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
  const delay = tcpLimits.retryDelayMs;
  if (fastRetries) tcpLimits.retryDelayMs = 10;
  const ours = await runOurs(c).finally(() => (tcpLimits.retryDelayMs = delay));
  expect(ours).toBe(withoutReference(ref));
  return ours;
}

describe("%XX codec", () => {
  test("quote and unquote as hex_quote()/hex_unquote()", () => {
    expect(hexQuote("a b%c\t\x7f\xe9~")).toBe("a%20b%25c%09%7F%E9~");
    expect(hexUnquote("a%20b%2fc%2F")).toBe("a b/c/");
    expect(hexUnquote("a%2")).toBeUndefined();
    expect(hexUnquote("a%zz")).toBeUndefined();
    expect(hexUnquote("%00x")).toBe("\x00x");
    expect(printableWith("a\x01b\xffc", "_")).toBe("a_b_c");
  });
});

describe("tcp against the C proxymap", () => {
  test("replies, quoting, decoding and warnings", async () => {
    const t = srv.table;
    await sameAsOracle(`
open "${t}" 0
lookup "${t}" 0 "a"
lookup "${t}" 0 "x y"
lookup "${t}" 0 "k%"
lookup "${t}" 0 "A"
lookup "${t}" 32768 "A"
lookup "${t}" 0 "zz"
lookup "${t}" 0 "reply=200 a%00b"
lookup "${t}" 0 "reply=200 a%zz"
lookup "${t}" 0 "reply=200 a%4"
lookup "${t}" 0 "reply=200"
lookup "${t}" 0 "reply=200 "
lookup "${t}" 0 "reply=200\\x09foo\\x0d"
lookup "${t}" 0 "reply=299 ok%2c%20fine"
lookup "${t}" 0 "reply=400 busy"
lookup "${t}" 0 "reply=500"
lookup "${t}" 0 "reply=300 what"
lookup "${t}" 0 "reply=100 what"
lookup "${t}" 0 "reply=20x \\xff"
lookup "${t}" 0 "reply=2000 x"
lookup "${t}" 0 "reply=200 \\xc3\\xa9"
lookup "${t}" 0 "garbage"
lookup "${t}" 0 "a"
lookup "${t}" 8192 "a"
lookup "${t}" 557056 "\\xc3\\x89"
lookup "${t}" 0 "\\xc3\\xa9"
lookup "unionmap:{${t}, static:s}" 512 "a"
lookup "${t}" 0 "raw=200 ${"x".repeat(4091)}\\x0a"
`);
  });

  test("NO_UNAUTH, the write service, sequence", async () => {
    const t = srv.table;
    await sameAsOracle(`
open "tcp:127.0.0.1:9" 8192
lookup "tcp:127.0.0.1:9" 0 "a"
lookup "${t}" 0 "a"
! sequence "${t}" 0 0
`);
    await sameAsOracle(`
option writer
open "${t}" 0
lookup "${t}" 0 "a"
update "${t}" 0 "a" "b"
`);
  });

  test("addresses the reference exits on: ours answers CONFIG for that table only", async () => {
    for (const name of ["tcp:[::1]x", "tcp:[ipv6:x]:25", "tcp:host:", "tcp:bad_host!:25"]) {
      const ours = await sameAsOracle(`lookup "${srv.table}" 0 "a"\n! lookup "${name}" 0 "a"\n`);
      expect(ours).toContain('!< status="5" value=""');
    }
  }, 30_000);

  test("EOF before a reply: ten attempts one second apart, then RETRY", async () => {
    const t = srv.table;
    const ours = await sameAsOracle(`
lookup "${t}" 0 "a"
lookup "${t}" 0 "eof"
lookup "${t}" 0 "a"
`, true);
    expect(ours.split("unexpected EOF").length - 1).toBe(10);
  }, 30_000);
});

describe("tcp, ours only", () => {
  const logs: string[] = [];
  const saved = { ...tcpLimits };
  beforeAll(() => {
    tcpLimits.retryDelayMs = 10;
  });
  // runOurs() puts its own log sink back at its end: set ours per test.
  beforeEach(() => {
    logs.length = 0;
    setLogSinks([{ write: (_s, l) => logs.push(l) }]);
  });
  afterAll(async () => {
    Object.assign(tcpLimits, saved);
    await closeAllDicts();
    setLogSinks([{ write: (_s, l) => process.stderr.write(`proxymap: ${l}\n`) }]);
  });

  test("half a line, then close: ten 'text longer than' warnings (the reference's wording)", async () => {
    const d = await openDict(srv.table, false, 0);
    expect((await dictGet(d, "close", 0)).status).toBe(Status.RETRY);
    expect(logs).toEqual(Array(10).fill(`warning: read TCP map reply from ${srv.address}: text longer than 4096`));
  });

  test("a line longer than 4096 bytes: ten attempts, then RETRY", async () => {
    const d = await openDict(srv.table, false, 0);
    expect((await dictGet(d, `raw=200 ${"x".repeat(4100)}\n`, 0)).status).toBe(Status.RETRY);
    expect(logs).toEqual(Array(10).fill(`warning: read TCP map reply from ${srv.address}: text longer than 4096`));
    expect((await dictGet(d, "a", 0)).value).toBe("1");
  });

  test("no server, a service name, a host that does not resolve: ten warnings each, the reference's words", async () => {
    logs.length = 0;
    const d = await openDict("tcp:127.0.0.1:1", false, 0);
    expect((await dictGet(d, "a", 0)).status).toBe(Status.RETRY);
    expect(logs).toEqual(Array(10).fill("warning: connect to TCP map 127.0.0.1:1: Connection refused"));
    logs.length = 0;
    const n = await openDict("tcp:nohost", false, 0);
    expect((await dictGet(n, "a", 0)).status).toBe(Status.RETRY);
    expect(logs.slice(0, 2)).toEqual([
      "warning: host or service nohost not found: Servname not supported for ai_socktype",
      "warning: connect to TCP map nohost: Cannot assign requested address",
    ]);
    expect(logs.length).toBe(20);
    // A host name that does not resolve (texts as the C proxymap logs them, checked once against it).
    logs.length = 0;
    const h = await openDict("tcp:no-such-host.invalid:25", false, 0);
    expect((await dictGet(h, "a", 0)).status).toBe(Status.RETRY);
    // (Without a DNS server the resolver says "Temporary failure ..." instead; so does the reference's.)
    expect(logs[0]).toMatch(/^warning: host or service no-such-host\.invalid:25 not found: (Name or service not known|Temporary failure in name resolution)$/);
    expect(logs[1]).toBe("warning: connect to TCP map no-such-host.invalid:25: Cannot assign requested address");
    expect(logs.length).toBe(20);
  });

  test("a stalled reply times out (each attempt), and other tables go on meanwhile", async () => {
    logs.length = 0;
    tcpLimits.timeoutMs = 200;
    tcpLimits.maxTries = 2;
    try {
      const stalled = await TcpTableServer.start({ mode: "stall" });
      const d = await openDict(stalled.table, false, 0);
      const other = await openDict(srv.table, false, 0);
      const t0 = Date.now();
      const slow = dictGet(d, "a", 0);
      const fast = await dictGet(other, "a", 0);
      expect(fast).toMatchObject({ status: Status.OK, value: "1" });
      expect(Date.now() - t0).toBeLessThan(150);
      expect((await slow).status).toBe(Status.RETRY);
      expect(logs).toEqual(Array(2).fill(`warning: read TCP map reply from ${stalled.address}: unexpected EOF (Connection timed out)`));
      await stalled.close();
    } finally {
      tcpLimits.timeoutMs = saved.timeoutMs;
      tcpLimits.maxTries = saved.maxTries;
    }
  });

  test("lookups of one table run in parallel on several connections", async () => {
    const s = await TcpTableServer.start({ data: { k0: "v0", k1: "v1", k2: "v2", k3: "v3" } });
    try {
      const d = await openDict(s.table, false, 0);
      const t0 = Date.now();
      const rs = await Promise.all([0, 1, 2, 3].map((i) => dictGet(d, `delay=300:k${i}`, 0)));
      expect(rs.map((r) => r.value)).toEqual(["v0", "v1", "v2", "v3"]);
      expect(Date.now() - t0).toBeLessThan(550);
      expect(s.accepted).toBe(4);
      const more = await Promise.all(Array.from({ length: 12 }, (_, i) => dictGet(d, `k${i % 4}`, 0)));
      expect(more.map((r) => r.value)).toEqual(Array.from({ length: 12 }, (_, i) => `v${i % 4}`));
      expect(s.accepted).toBeLessThanOrEqual(tcpLimits.maxConnections);
      // A 4xx reply drops that connection; the next lookup opens another.
      expect((await dictGet(d, "reply=400 later", 0)).status).toBe(Status.RETRY);
      expect((await dictGet(d, "k1", 0)).value).toBe("v1");
    } finally {
      await s.close();
    }
  });
});
