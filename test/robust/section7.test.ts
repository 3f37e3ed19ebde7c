/**
 * section7.test.ts - inputs that kill the C reference (PROTOCOL.md section 7
 * and what the differential test found besides), and other hostile input,
 * sent to ours under a real master. Ours must answer each with a status
 * reply, keep the connection, keep the same process, and log no fatal or
 * panic line; master must see no abnormal exit.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PostfixInstance } from "../helpers/postfix-instance";
import { deaths, LOOKUP_FLAGS, PROBE_REPLY, PROBE_REQUEST, req, startRobust, type RobustSetup } from "../helpers/robust";
import { ERROR_BOUND_FLAGS } from "../diff/corpus";
import { attrsToObject, show, WireClient } from "../helpers/wire";

setDefaultTimeout(60_000);

let s: RobustSetup;
let pid = 0;

/** Send one request on a fresh connection; expect a status reply and a live connection after it. */
async function answered(service: "proxymap" | "proxywrite", ...requests: Buffer[]): Promise<Record<string, string>[]> {
  const cl = await WireClient.connect(s.inst.socket(service));
  try {
    const out: Record<string, string>[] = [];
    for (const r of requests) {
      await cl.send(r);
      const rep = await cl.readReply(5000);
      if (rep.kind !== "reply") throw new Error(`no reply to ${show(r)}: ${rep.kind}`);
      expect(rep.attrs[0]?.[0]).toBe("status");
      out.push(attrsToObject(rep.attrs));
    }
    // Still in step on the same connection.
    await cl.send(PROBE_REQUEST);
    const p = await cl.readReply(5000);
    expect(p.kind === "reply" && p.raw.equals(PROBE_REPLY)).toBe(true);
    return out;
  } finally {
    cl.close();
  }
}

describe("robustness: what kills the reference gets a status from ours", () => {
  beforeAll(async () => {
    s = await startRobust("robust7", { proxymapMaxproc: "1", proxymapArgs: ["-o", "max_use=100000", "-o", "max_idle=3600"] });
    await answered("proxymap", req("lookup", "static:foo", LOOKUP_FLAGS, [["key", "k"]]));
    pid = (await s.inst.waitServicePids("proxymap"))[0];
  });
  afterAll(() => s?.cleanup());

  test("sequence on static and unix tables", async () => {
    for (const t of ["static:foo", "unix:passwd.byname", "unix:group.byname"]) {
      const [r] = await answered("proxymap", req("sequence", t, 0, [["function", "0"]]));
      expect(Number(r.status)).toBeGreaterThan(0);
    }
  });

  test("flags with both OPEN_LOCK and LOCK (and -1, which sscanf reads as all bits)", async () => {
    for (const f of ["65600", "-1", "4294967295"]) {
      for (const t of ["static:foo", "inline:{a=1,b=2}", `texthash:${s.dir}/th`, "unix:passwd.byname"]) {
        await answered("proxymap", req("lookup", t, f, [["key", "a"]]), req("open", t, f));
      }
    }
  });

  test("a 5,000-byte key on an lmdb table (the reference dies on the update: MDB_BAD_VALSIZE)", async () => {
    await answered("proxymap", req("lookup", s.lmdb, LOOKUP_FLAGS, [["key", "k".repeat(5000)]]), req("lookup", s.lmdb, 0, [["key", "x".repeat(5000)]]));
    await answered("proxywrite", req("update", s.lmdb, 0, [["key", "k".repeat(5000)], ["value", "v"]]), req("delete", s.lmdb, 0, [["key", "k".repeat(5000)]]));
  });

  test("update and delete on static through proxywrite", async () => {
    await answered("proxywrite", req("update", "static:foo", 0, [["key", "k"], ["value", "v"]]), req("delete", "static:foo", 0, [["key", "k"]]));
  });

  test("table names with no name part (static:, environ:)", async () => {
    for (const t of ["static:", "environ:"]) {
      await answered("proxymap", req("open", t, 0), req("lookup", t, LOOKUP_FLAGS, [["key", "HOME"]]), req("sequence", t, 0, [["function", "0"]]));
    }
    const [r] = await answered("proxymap", req("lookup", "environ:x", 0, [["key", "HOME"]]));
    expect(r.status).toBe("4");
  });

  test("next after first on an empty table", async () => {
    await answered("proxymap", req("sequence", s.empty, 0, [["function", "0"]]), req("sequence", s.empty, 0, [["function", "1"]]), req("sequence", s.empty, 0, [["function", "1"]]));
  });

  test("thirteen failed table opens (the reference's error bound)", async () => {
    // texthash refuses the write service's O_RDWR open: one error-level line per new instance.
    await answered("proxywrite", ...ERROR_BOUND_FLAGS.map((f) => req("lookup", `texthash:${s.dir}/th`, f, [["key", "key1"]])));
  });

  test("an empty key on every table", async () => {
    for (const t of s.tables) await answered("proxymap", req("lookup", t, LOOKUP_FLAGS, [["key", ""]]), req("lookup", t, 0, [["key", ""]]));
  });

  test("garbage bytes: the process survives and serves the next client", async () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const n of [1, 7, 100, 4096, 65536]) {
      const cl = await WireClient.connect(s.inst.socket("proxymap"));
      await cl.send(Buffer.from(Array.from({ length: n }, rnd)));
      await cl.send(Buffer.from([0, 0, 0]));
      await cl.readUntilQuiet(100, 2000);
      cl.close();
      await answered("proxymap", req("lookup", "static:foo", LOOKUP_FLAGS, [["key", "k"]]));
    }
  });

  test("a 16 MiB attribute: connection closed with a warning, memory bounded", async () => {
    const before = PostfixInstance.rssKiB(pid);
    const mark = s.inst.logMark();
    const cl = await WireClient.connect(s.inst.socket("proxymap"));
    const head = Buffer.from("request\0lookup\0table\0static:foo\0flags\x000\0key\0", "latin1");
    let maxRss = before;
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, PostfixInstance.rssKiB(pid))), 20);
    await cl.send(head);
    const chunk = Buffer.alloc(1 << 20, 0x78);
    for (let i = 0; i < 16 && !cl.closed; i++) await cl.send(chunk);
    if (!cl.closed) await cl.send(Buffer.from([0, 0]));
    const closed = await cl.waitClosed(10_000);
    clearInterval(sampler);
    cl.close();
    expect(closed).toBe(true);
    expect(s.inst.logSince(mark) + (await s.inst.waitForLog(/warning:/, 5000, mark))).toMatch(/postfix\/proxymap\[\d+\]: warning: /);
    // Bounded: far below what holding the attribute would take.
    expect(maxRss - before).toBeLessThan(12 * 1024);
    await answered("proxymap", req("lookup", "static:foo", LOOKUP_FLAGS, [["key", "k"]]));
  });

  test("one process all along, no abnormal exit, no fatal or panic line", async () => {
    await Bun.sleep(300);
    expect(s.inst.servicePids("proxymap")).toEqual([pid]);
    expect(deaths(s.inst)).toEqual([]);
  });
});
