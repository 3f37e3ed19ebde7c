/**
 * fuzz.test.ts - seeded random request streams against ours under master:
 * zero process deaths, one process all along (PID continuity), memory
 * bounded, and still answering at the end.
 *
 * FUZZ_COUNT requests (default 20000, for CI; the full run is
 * `FUZZ_COUNT=1000000 bun test test/robust/fuzz.test.ts`, about a minute
 * here), FUZZ_SEED, FUZZ_WORKERS concurrent connections (default 8).
 * FUZZ_RSS_MB bounds the process's resident memory (default 256; keys of up
 * to 300 KB are in flight on every worker). Random instance flags open a new
 * table instance each (the reference caches them the same way), so memory
 * grows with the count; FUZZ_INST=0 keeps those bits off to see the plateau.
 *
 * Each connection sends batches of attribute lists in one write: mostly
 * plausible requests (every request type, approved and odd tables, random
 * flags, empty/binary/huge keys) with a mutation now and then, or fully
 * random lists; then a probe lookup to get back in step. Some batches end
 * in a truncated list or garbage, and the connection is dropped mid-request.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { PostfixInstance } from "../helpers/postfix-instance";
import { deaths, LOOKUP_FLAGS, PROBE_REPLY, PROBE_REQUEST, req, startRobust, type RobustSetup } from "../helpers/robust";
import { INST_MASK, Pick, rng } from "../diff/corpus";
import { attrsToObject, encodeAttrs, WireClient, type Attr } from "../helpers/wire";

const COUNT = Number(process.env.FUZZ_COUNT ?? 20000);
const SEED = Number(process.env.FUZZ_SEED ?? 1);
const WORKERS = Number(process.env.FUZZ_WORKERS ?? 8);
const RSS_MB = Number(process.env.FUZZ_RSS_MB ?? 256);

setDefaultTimeout(Math.max(120_000, COUNT * 2));

let s: RobustSetup;

const NAMES = ["request", "table", "flags", "instance_flags", "key", "value", "function", "status", "protocol", ""];
const REQUESTS = ["lookup", "open", "update", "delete", "sequence", "frob", "", "LOOKUP"];

/** FUZZ_INST=0 keeps instance-selecting flag bits off (a diagnostic: each distinct set opens another table instance). */
const INST_OFF = process.env.FUZZ_INST === "0";

function randomFlags(pk: Pick): string {
  const f = randomFlags0(pk);
  if (!INST_OFF || !/^\d+$/.test(f)) return f;
  return String((Number(f) & ~INST_MASK) >>> 0);
}

function randomFlags0(pk: Pick): string {
  return pk.weighted<() => string>([
    [40, () => String(pk.one([0, LOOKUP_FLAGS, 16384, 64, 65536, 65600, 4, 8, 12, 2097152, 512]))],
    [30, () => String(pk.int(4294967296))],
    [15, () => String(pk.int(1 << 21))],
    [15, () => pk.one(["", "-1", "abc", "99999999999999999999", " 7", "7 ", "+1", "0x1", "4294967296"])],
  ])();
}

function randomKey(pk: Pick): string {
  return pk.weighted<() => string>([
    [40, () => `key${pk.int(220)}`],
    [15, () => pk.one(["root", "postfix", "nobody", "a", "b", "alice", "HOME", "PATH"])],
    [10, () => ""],
    [20, () => pk.bytes(pk.range(1, 40), 1, 255)],
    [10, () => "k".repeat(pk.one([255, 511, 512, 1000, 4096, 5000]))],
    [5, () => "L".repeat(pk.range(10_000, 300_000))],
  ])();
}

function plausible(pk: Pick, tables: string[]): Attr[] {
  const type = pk.one(["lookup", "lookup", "lookup", "open", "update", "delete", "sequence"]);
  const table = pk.weighted<() => string>([
    [80, () => pk.one(tables)],
    [20, () => pk.one(["static:bar", "environ:x", "", "nocolon", "proxy:static:foo", "proxy:proxy:", ":", "hash:/etc/aliases"])],
  ])();
  const a: Attr[] = [["request", type], ["table", table]];
  if (pk.chance(0.15)) a.push(["instance_flags", randomFlags(pk)]);
  if (type !== "open" || pk.chance(0.1)) a.push(["flags", randomFlags(pk)]);
  if (type === "lookup" || type === "update" || type === "delete") a.push(["key", randomKey(pk)]);
  if (type === "update") a.push(["value", pk.chance(0.9) ? "v" : pk.bytes(pk.range(0, 2000), 1, 255)]);
  if (type === "sequence") a.push(["function", pk.one(["0", "1", "1", "2", "", "-1"])]);
  if (pk.chance(0.15)) {
    // Mutate: drop, swap, duplicate, rename.
    const i = pk.int(a.length);
    const j = pk.int(a.length);
    const m = pk.int(4);
    if (m === 0) a.splice(i, 1);
    else if (m === 1) [a[i], a[j]] = [a[j], a[i]];
    else if (m === 2) a.splice(i, 0, a[j]);
    else a[i] = [pk.one(NAMES.filter(Boolean)), a[i][1]];
  }
  return a;
}

function randomList(pk: Pick): Attr[] {
  const n = pk.range(0, 8);
  const a: Attr[] = [];
  for (let i = 0; i < n; i++) {
    const name = pk.chance(0.7) ? pk.one(NAMES.filter(Boolean)) : pk.bytes(pk.range(1, 12), 1, 255);
    const value = name === "request" ? pk.one(REQUESTS) : pk.chance(0.5) ? randomFlags(pk) : pk.bytes(pk.range(0, 64), 1, 255);
    a.push([name, value]);
  }
  return a;
}

/** One worker: connections with batches until the shared count reaches COUNT. */
async function worker(id: number, state: { sent: number }): Promise<void> {
  const pk = new Pick(rng(SEED * 1000 + id));
  const budget = () => state.sent < COUNT;
  while (budget()) {
    const cl = await WireClient.connect(s.inst.socket(pk.chance(0.85) ? "proxymap" : "proxywrite"), { timeoutMs: 15_000 });
    try {
      for (let b = pk.range(1, 5); b > 0 && budget() && !cl.closed; b--) {
        const lists: Buffer[] = [];
        for (let n = pk.range(1, 30); n > 0; n--) lists.push(encodeAttrs(pk.chance(0.8) ? plausible(pk, s.tables) : randomList(pk)));
        state.sent += lists.length;
        const ending = pk.weighted([[88, "probe"], [6, "truncate"], [6, "garbage"]] as const);
        if (ending === "truncate") {
          const last = lists.pop()!;
          lists.push(last.subarray(0, pk.range(1, last.length - 1)));
        } else if (ending === "garbage") {
          lists.push(Buffer.from(pk.bytes(pk.range(1, 200)), "latin1"));
        }
        await cl.send(Buffer.concat(lists));
        if (ending !== "probe") break; // drop the connection mid-request
        // Like the reference, ours drops what arrived together with
        // malformed input, so a probe sent behind a batch on the same
        // connection may go with it. The process is probed on a fresh
        // connection instead; the batch's connection goes on.
        const probe = await WireClient.connect(s.inst.socket("proxymap"), { timeoutMs: 15_000 });
        try {
          await probe.send(PROBE_REQUEST);
          const r = await probe.readUntilTail(PROBE_REPLY, 3000, 30_000);
          if (!r.found) throw new Error("the process did not answer a probe on a fresh connection");
        } finally {
          probe.close();
        }
      }
    } finally {
      cl.close();
    }
  }
}

describe(`robustness: fuzz (${COUNT} requests, seed ${SEED})`, () => {
  beforeAll(async () => {
    s = await startRobust("fuzz", { proxymapMaxproc: "1", proxymapArgs: ["-o", "max_use=100000000", "-o", "max_idle=3600"] });
  });
  afterAll(() => s?.cleanup());

  test("zero deaths, one process, bounded memory", async () => {
    const first = await WireClient.connect(s.inst.socket("proxymap"));
    await first.send(req("lookup", "static:foo", LOOKUP_FLAGS, [["key", "k"]]));
    expect((await first.readReply(5000)).kind).toBe("reply");
    first.close();
    const pid = (await s.inst.waitServicePids("proxymap"))[0];
    const wpidStart = (await s.inst.waitServicePids("proxywrite", 100))[0];
    const rss0 = PostfixInstance.rssKiB(pid);
    let maxRss = rss0;
    const series: number[] = [];
    const sampler = setInterval(() => {
      const r = PostfixInstance.rssKiB(pid);
      series.push(r);
      maxRss = Math.max(maxRss, r);
    }, 200);
    const state = { sent: 0 };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(i, state)));
    clearInterval(sampler);
    const secs = (performance.now() - t0) / 1000;
    const total = state.sent;
    await Bun.sleep(300);
    const died = deaths(s.inst);
    const pids = s.inst.servicePids("proxymap");
    console.log(`fuzz: ${total} requests in ${secs.toFixed(1)} s (${Math.round(total / secs)}/s), ${WORKERS} workers, seed ${SEED}; RSS ${Math.round(rss0 / 1024)} -> max ${Math.round(maxRss / 1024)} MB (over time: ${[0.25, 0.5, 0.75, 1].map((q) => Math.round((series[Math.max(0, Math.ceil(series.length * q) - 1)] ?? rss0) / 1024)).join(", ")} MB); deaths ${died.length}`);
    expect(died).toEqual([]);
    expect(pids).toEqual([pid]);
    if (wpidStart) expect(PostfixInstance.isAlive(wpidStart)).toBe(true);
    expect(maxRss / 1024).toBeLessThan(RSS_MB);
    // Still answering.
    const cl = await WireClient.connect(s.inst.socket("proxymap"));
    const r = await cl.request([["request", "lookup"], ["table", "unix:passwd.byname"], ["flags", String(LOOKUP_FLAGS)], ["key", "root"]]);
    cl.close();
    expect(r.kind === "reply" && attrsToObject(r.attrs).status).toBe("0");
  });
});
