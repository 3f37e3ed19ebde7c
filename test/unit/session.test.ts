/**
 * Unit tests of the per-connection session: requests cut out of arbitrary
 * read boundaries, replies in request order when some complete later, the
 * request size limit, and a client that goes away mid-request.
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
