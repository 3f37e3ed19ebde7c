/**
 * clients.test.ts - many and misbehaving clients of ONE process of ours
 * under master (maxproc 1, so master cannot hide a blocked process by
 * starting another): a client that sends half a request and goes silent
 * must not delay anybody else, and 500 idle connections held open must not
 * stop the process from answering.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { deaths, LOOKUP_FLAGS, req, startRobust, type RobustSetup } from "../helpers/robust";
import { attrsToObject, WireClient } from "../helpers/wire";

setDefaultTimeout(60_000);

let s: RobustSetup;
let pid = 0;

async function timedLookup(key: string): Promise<{ ms: number; reply: Record<string, string> }> {
  const t0 = performance.now();
  const cl = await WireClient.connect(s.inst.socket("proxymap"));
  try {
    const r = await cl.request([["request", "lookup"], ["table", `texthash:${s.dir}/th`], ["flags", String(LOOKUP_FLAGS)], ["key", key]], 5000);
    if (r.kind !== "reply") throw new Error(`lookup ${key}: ${r.kind}`);
    return { ms: performance.now() - t0, reply: attrsToObject(r.attrs) };
  } finally {
    cl.close();
  }
}

describe("robustness: one process, many clients", () => {
  beforeAll(async () => {
    // proxymap_client_limit raised above the 500 connections: this is about what one process can hold.
    s = await startRobust("robustcl", {
      proxymapMaxproc: "1",
      proxymapArgs: ["-o", "max_use=100000", "-o", "max_idle=3600", "-o", "proxymap_client_limit=1000"],
    });
    await timedLookup("key1");
    pid = (await s.inst.waitServicePids("proxymap"))[0];
  });
  afterAll(() => s?.cleanup());

  test("a client that sends half a request and stays silent does not delay the others", async () => {
    const silent = await WireClient.connect(s.inst.socket("proxymap"));
    const full = req("lookup", `texthash:${s.dir}/th`, LOOKUP_FLAGS, [["key", "key7"]]);
    await silent.send(full.subarray(0, 25));
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await timedLookup(`key${i}`);
      expect(r.reply).toEqual({ status: "0", value: `value-${i}` });
      times.push(r.ms);
    }
    times.sort((a, b) => a - b);
    // "At once": every lookup, connection set-up included, well under the reference's ipc_timeout.
    expect(times[times.length - 1]).toBeLessThan(250);
    // The silent client is still connected, and gets its answer when it finishes.
    expect(silent.closed).toBe(false);
    await silent.send(full.subarray(25));
    const r = await silent.readReply(5000);
    expect(r.kind === "reply" && attrsToObject(r.attrs)).toEqual({ status: "0", value: "value-7" });
    silent.close();
  });

  test("500 idle connections held open; the process still answers, then answers all of them", async () => {
    const idle: WireClient[] = [];
    try {
      for (let i = 0; i < 500; i += 50) {
        idle.push(...(await Promise.all(Array.from({ length: 50 }, () => WireClient.connect(s.inst.socket("proxymap"))))));
      }
      expect(idle.length).toBe(500);
      const r = await timedLookup("key42");
      expect(r.reply).toEqual({ status: "0", value: "value-42" });
      expect(r.ms).toBeLessThan(250);
      const replies = await Promise.all(
        idle.map((cl, i) => cl.request([["request", "lookup"], ["table", `texthash:${s.dir}/th`], ["flags", String(LOOKUP_FLAGS)], ["key", `key${i % 200}`]], 10_000)),
      );
      const bad = replies.map((x, i) => (x.kind === "reply" && attrsToObject(x.attrs).value === `value-${i % 200}` ? "" : `${i}: ${x.kind}`)).filter(Boolean);
      expect(bad).toEqual([]);
    } finally {
      for (const cl of idle) cl.close();
    }
  });

  test("one process all along, no abnormal exit", async () => {
    await Bun.sleep(300);
    expect(s.inst.servicePids("proxymap")).toEqual([pid]);
    expect(deaths(s.inst)).toEqual([]);
  });
});
