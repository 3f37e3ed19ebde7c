/**
 * Unit tests of the per-connection session: requests cut out of arbitrary
 * read boundaries, replies in request order when some complete later, the
 * request size limit, and a client that goes away mid-request; linear cost
 * of 1-byte writes, no answers while the connection is congested.
 */
import { describe, expect, test } from "bun:test";
import { encodeAttrs } from "../../src/protocol/attr";
import type { Scanned } from "../../src/protocol/scan";
import { ClientSession, type RequestHandler } from "../../src/service/session";

function lookup(key: string): Buffer {
  return encodeAttrs([
    ["request", "lookup"],
    ["table", "test:t"],
    ["flags", 0],
    ["key", key],
  ]);
}

/** A handler that echoes keys; keys starting with "slow" answer after a delay. */
function echoHandler(maxRequestSize = 1 << 20) {
  const seen: string[] = [];
  let async = 0;
  const handler: RequestHandler = {
    streamName: "test socket",
    installedGen: "either",
    maxRequestSize,
    onAsync: (d) => {
      async += d;
    },
    handle(s: Scanned) {
      if (s.op !== "lookup") return null;
      seen.push(s.key);
      const reply = encodeAttrs([["status", 0], ["value", s.key]]);
      if (s.key.startsWith("slow")) return Bun.sleep(20).then(() => reply);
      return reply;
    },
  };
  return { handler, seen, asyncCount: () => async };
}

function collector() {
  const out: Buffer[] = [];
  let closed = false;
  return {
    io: { write: (b: Uint8Array) => void out.push(Buffer.from(b)), close: () => void (closed = true) },
    text: () => Buffer.concat(out).toString("latin1"),
    closed: () => closed,
  };
}

describe("ClientSession", () => {
  test("byte-by-byte input gives the same replies as whole input", () => {
    const input = Buffer.concat([lookup("a"), lookup("b\xff"), lookup("")]);
    const whole = collector();
    new ClientSession(whole.io, echoHandler().handler).feed(input);
    const split = collector();
    const s = new ClientSession(split.io, echoHandler().handler);
    for (const byte of input) s.feed(Uint8Array.of(byte));
    expect(split.text()).toBe(whole.text());
    expect(whole.text()).toBe("status\x000\x00value\x00a\x00\x00status\x000\x00value\x00b\xff\x00\x00status\x000\x00value\x00\x00\x00");
    expect(s.partial).toBe(false);
  });

  test("replies keep request order when one completes later", async () => {
    const c = collector();
    const h = echoHandler();
    const s = new ClientSession(c.io, h.handler);
    s.feed(Buffer.concat([lookup("slow1"), lookup("fast"), lookup("slow2"), lookup("last")]));
    expect(s.pending).toBe(1);
    await Bun.sleep(80);
    expect(c.text().match(/value\x00([^\x00]*)/g)).toEqual(["value\x00slow1", "value\x00fast", "value\x00slow2", "value\x00last"]);
    expect(h.asyncCount()).toBe(0);
    expect(s.pending).toBe(0);
  });

  test("a partial request is reported, then completed", () => {
    const c = collector();
    const s = new ClientSession(c.io, echoHandler().handler);
    const req = lookup("k");
    s.feed(req.subarray(0, 10));
    expect(s.partial).toBe(true);
    s.feed(req.subarray(10));
    expect(s.partial).toBe(false);
    expect(c.text()).toContain("value\x00k\x00");
  });

  test("a request over the size limit closes the connection", () => {
    const c = collector();
    const s = new ClientSession(c.io, echoHandler(1000).handler);
    s.feed(Buffer.from("request\0lookup\0table\0t:t\0flags\0" + "0\0key\0" + "x".repeat(5000), "latin1"));
    expect(c.closed()).toBe(true);
    // Further input is ignored, not buffered.
    s.feed(Buffer.alloc(10_000, 0x41));
    expect(c.text()).toBe("");
  });

  test("the caller's chunk may be reused after feed()", () => {
    const c = collector();
    const s = new ClientSession(c.io, echoHandler().handler);
    const chunk = Buffer.from(lookup("abc"));
    s.feed(chunk.subarray(0, 30));
    chunk.fill(0x7a, 0, 30); // the skeleton reuses its read buffer
    s.feed(chunk.subarray(30));
    expect(c.text()).toContain("value\x00abc\x00");
  });
});

describe("bounded cost", () => {
  test("a 1 MiB request written one byte at a time costs linear time", () => {
    const req = lookup("k".repeat(1 << 20));
    const c = collector();
    const s = new ClientSession(c.io, echoHandler(2 << 20).handler);
    const t0 = performance.now();
    for (let i = 0; i < req.length; i++) s.feed(req.subarray(i, i + 1));
    const ms = performance.now() - t0;
    expect(c.text()).toBe(`status\x000\x00value\x00${"k".repeat(1 << 20)}\x00\x00`);
    // Linear: a few hundred ms. Re-scanning the partial request on every
    // byte (the old way) took over a minute.
    expect(ms).toBeLessThan(5000);
  });

  test("input cut at random points (buffer growth and reuse) gives the same replies as whole input", () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}-` + "v".repeat(rnd(20000)));
    const input = Buffer.concat(keys.map(lookup));
    const whole = collector();
    new ClientSession(whole.io, echoHandler().handler).feed(input);
    const split = collector();
    const s = new ClientSession(split.io, echoHandler().handler);
    for (let at = 0; at < input.length; ) {
      const n = 1 + rnd(30000);
      s.feed(input.subarray(at, at + n));
      at += n;
    }
    expect(split.text()).toBe(whole.text());
    expect(whole.text().match(/value\x00k\d+-/g)?.length).toBe(200);
  });

  test("while the connection is congested no further request is answered; resume() answers them", () => {
    const out: string[] = [];
    let congested = false;
    let closed = false;
    const io = {
      write: (b: Uint8Array) => {
        out.push(Buffer.from(b).toString("latin1"));
        congested = true; // the client reads nothing: the first reply fills the queue
      },
      close: () => void (closed = true),
      get congested() {
        return congested;
      },
    };
    const s = new ClientSession(io, echoHandler().handler);
    s.feed(Buffer.concat([lookup("a"), lookup("b"), lookup("c")]));
    expect(out.length).toBe(1);
    expect(s.pending).toBe(1); // held back, not a partial request
    expect(s.partial).toBe(false);
    s.feed(lookup("d")); // still congested: buffered, not answered
    expect(out.length).toBe(1);
    congested = false;
    s.resume();
    expect(out.length).toBe(2); // the reply to "b" congests it again
    s.end();
    for (let i = 0; i < 5 && !closed; i++) {
      congested = false;
      s.resume();
    }
    expect(out.map((r) => r.match(/value\x00([^\x00]*)/)![1])).toEqual(["a", "b", "c", "d"]);
    expect(closed).toBe(true);
    expect(s.pending).toBe(0);
  });
});

describe("end of input", () => {
  test("inside a known request: BAD-shaped reply from the handler, then close", () => {
    const c = collector();
    const replies: string[] = [];
    const h = echoHandler();
    const handler: RequestHandler = {
      ...h.handler,
      handle(s) {
        replies.push(s.op);
        return s.op === "bad" ? encodeAttrs([["status", 3], ["value", ""]]) : h.handler.handle(s);
      },
    };
    const s = new ClientSession(c.io, handler);
    s.feed(Buffer.from("request\0lookup\0table\0t:t\0fl", "latin1"));
    s.end();
    expect(replies).toEqual(["bad"]);
    expect(c.text()).toBe("status\x003\x00value\x00\x00\x00");
  });

  test("between requests: nothing to answer", () => {
    const c = collector();
    const s = new ClientSession(c.io, echoHandler().handler);
    s.feed(lookup("a"));
    s.end();
    expect(c.text()).toBe("status\x000\x00value\x00a\x00\x00");
  });
});
