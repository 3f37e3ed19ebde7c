/**
 * Unit tests of the wire codec and the request scanner: numbers as C's
 * sscanf("%u") reads them, every request shape, and the reference's pull
 * semantics for missing, extra and misordered attributes — fed whole and
 * byte by byte.
 */
import { describe, expect, test } from "bun:test";
import { TokenReader, encodeAttrs, formatCUnsigned, parseCUnsigned } from "../../src/protocol/attr";
import { scanRequest, type ScanResult } from "../../src/protocol/scan";

const bytes = (s: string) => Buffer.from(s, "latin1");

function scanAll(input: string, installed: "classic" | "instance" | "either" = "classic"): ScanResult[] {
  const buf = bytes(input);
  const r = new TokenReader(buf, 0, buf.length);
  const out: ScanResult[] = [];
  while (r.pos < buf.length) {
    const res = scanRequest(r, "proxymap socket", installed);
    if (!res) break;
    out.push(res);
  }
  return out;
}

describe("parseCUnsigned (sscanf %u%c)", () => {
  const cases: Array<[string, number | undefined]> = [
    ["0", 0],
    ["524353", 524353],
    ["  12", 12],
    ["\t+7", 7],
    ["007", 7],
    ["-1", -1],
    ["4294967295", -1],
    ["4294967296", 0],
    ["4294967297", 1],
    ["2147483648", -2147483648],
    ["99999999999999999999999", -1],
    ["-18446744073709551616", -1],
    ["-4294967296", 0],
    ["", undefined],
    ["   ", undefined],
    ["+", undefined],
    ["12 ", undefined],
    ["0x10", undefined],
    ["1e3", undefined],
    ["abc", undefined],
    ["--1", undefined],
  ];
  for (const [text, want] of cases) {
    test(JSON.stringify(text), () => expect(parseCUnsigned(text)).toBe(want));
  }
  test("formatCUnsigned prints the unsigned 32-bit value", () => {
    expect(formatCUnsigned(-1)).toBe("4294967295");
    expect(formatCUnsigned(278616)).toBe("278616");
  });
});

describe("encodeAttrs", () => {
  test("name NUL value NUL ... NUL", () => {
    expect(encodeAttrs([["status", 0], ["value", "x\xff"]])).toEqual(bytes("status\x000\x00value\x00x\xff\x00\x00"));
  });
});

describe("scanRequest", () => {
  test("classic lookup", () => {
    const [r] = scanAll("request\0lookup\0table\0inline:{u=1}\0flags\0" + "524353\0key\0u\0\0");
    expect(r.scanned).toEqual({
      op: "lookup",
      gen: "classic",
      table: "inline:{u=1}",
      instFlags: 0,
      flags: 524353,
      key: "u",
      value: "",
      func: 0,
    });
    expect(r.warnings).toEqual([]);
  });

  test("no installed version: the 3.11 lookup shape is recognised by instance_flags", () => {
    const [r] = scanAll("request\0lookup\0table\0static:x\0instance_flags\0" + "16\0flags\0" + "64\0key\0k\0\0", "either");
    expect(r.scanned).toMatchObject({ op: "lookup", gen: "instance", instFlags: 16, flags: 64, key: "k" });
  });

  test("no installed version: the 3.11 open has only instance_flags", () => {
    const [r] = scanAll("request\0open\0table\0static:x\0instance_flags\0" + "0\0\0", "either");
    expect(r.scanned).toMatchObject({ op: "open", gen: "instance", instFlags: 0 });
  });

  test("a 3.10-or-older installation reads a 3.11-shaped request as its proxymap does: BAD, classic shape", () => {
    const [r] = scanAll("request\0lookup\0table\0static:x\0instance_flags\0" + "16\0flags\0" + "64\0key\0k\0\0");
    expect(r.scanned).toMatchObject({ op: "bad", request: "lookup", gen: "classic" });
  });

  test("first attribute not request: no reply, only the name consumed", () => {
    const rs = scanAll("table\0x\0\0");
    expect(rs.map((r) => r.scanned.op)).toEqual(["none", "none", "none"]);
    expect(rs[0].warnings).toEqual(["unexpected attribute table from proxymap socket (expecting: request)"]);
    expect(rs[1].warnings).toEqual(["unexpected attribute x from proxymap socket (expecting: request)"]);
    expect(rs[2].warnings).toEqual(["missing attribute request in input from proxymap socket"]);
  });

  test("unknown request leaves its terminator for the next scan", () => {
    const rs = scanAll("request\0frob\0\0");
    expect(rs[0].scanned).toEqual({ op: "unknown", name: "frob" });
    expect(rs[1].scanned.op).toBe("none");
  });

  test("missing attribute is BAD and consumes the terminator", () => {
    const rs = scanAll("request\0lookup\0table\0a:b\0flags\0" + "0\0\0");
    expect(rs).toHaveLength(1);
    expect(rs[0].scanned).toEqual({ op: "bad", request: "lookup", gen: "classic" });
    expect(rs[0].warnings).toEqual(["missing attribute key in input from proxymap socket"]);
  });

  test("misordered attribute is BAD; the rest is read as new requests", () => {
    const rs = scanAll("request\0lookup\0table\0a:b\0key\0k\0flags\0" + "0\0\0");
    expect(rs[0].scanned.op).toBe("bad");
    expect(rs[0].warnings).toEqual(["unexpected attribute key from proxymap socket (expecting: flags)"]);
    expect(rs.slice(1).map((r) => r.scanned.op)).toEqual(["none", "none", "none", "none"]);
  });

  test("extra trailing attribute: request still served, name consumed", () => {
    const rs = scanAll("request\0lookup\0table\0a:b\0flags\0" + "0\0key\0k\0extra\0v\0\0");
    expect(rs[0].scanned).toMatchObject({ op: "lookup", key: "k" });
    expect(rs[0].warnings).toEqual([
      "unexpected attribute extra from proxymap socket (expecting: (list terminator))",
    ]);
    expect(rs.slice(1).map((r) => r.scanned.op)).toEqual(["none", "none"]);
  });

  test("malformed number is BAD with the reference's warning", () => {
    const [r] = scanAll("request\0lookup\0table\0a:b\0flags\0x1\0key\0k\0\0");
    expect(r.scanned.op).toBe("bad");
    expect(r.warnings).toEqual([
      "malformed numerical data from proxymap socket while reading input attribute value: x1",
    ]);
  });

  test("incomplete input asks for more, at every cut point", () => {
    const whole = "request\0update\0table\0a:b\0flags\0" + "1\0key\0k\0value\0v\0\0";
    for (let cut = 0; cut < whole.length; cut++) {
      const buf = bytes(whole.slice(0, cut));
      const res = scanRequest(new TokenReader(buf, 0, buf.length), "s", "classic");
      // A prefix either needs more, or (cut after the value) is complete but
      // for the terminator — which is also "need more".
      expect(res).toBeUndefined();
    }
    const buf = bytes(whole);
    expect(scanRequest(new TokenReader(buf, 0, buf.length), "s", "classic")?.scanned.op).toBe("update");
  });
});

/**
 * Under a 3.11+ installation the scanner reads every request as the 3.12
 * proxymap does (issue 11, defect 3): only the 3.11 shape exists, and every
 * malformed request is BAD in that shape. Warnings and replies checked
 * against the 3.12 C proxymap in test/diff/postfix312.test.ts.
 */
describe("scanRequest under a 3.11+ installation", () => {
  const scan = (s: string) => scanAll(s, "instance");

  test("a 3.11 lookup is read as before", () => {
    const [r] = scan("request\0lookup\0table\0static:x\0instance_flags\0" + "16\0flags\0" + "64\0key\0k\0\0");
    expect(r.scanned).toMatchObject({ op: "lookup", gen: "instance", instFlags: 16, flags: 64, key: "k" });
    expect(r.warnings).toEqual([]);
  });

  test("request=lookup table= (nothing more) is BAD in the 3.11 shape", () => {
    const [r] = scan("request\0lookup\0table\0\0\0");
    expect(r.scanned).toEqual({ op: "bad", request: "lookup", gen: "instance" });
    expect(r.warnings).toEqual(["missing attribute instance_flags in input from proxymap socket"]);
  });

  test("a classic-shaped lookup is BAD in the 3.11 shape", () => {
    const [r] = scan("request\0lookup\0table\0static:x\0flags\0" + "0\0key\0k\0\0");
    expect(r.scanned).toEqual({ op: "bad", request: "lookup", gen: "instance" });
    expect(r.warnings).toEqual(["unexpected attribute flags from proxymap socket (expecting: instance_flags)"]);
  });

  test("a classic-shaped open is BAD in the 3.11 shape", () => {
    const [r] = scan("request\0open\0table\0static:x\0flags\0" + "0\0\0");
    expect(r.scanned).toEqual({ op: "bad", request: "open", gen: "instance" });
  });

  test("attributes in the wrong order are BAD in the 3.11 shape", () => {
    const [r] = scan("request\0lookup\0table\0static:x\0flags\0" + "0\0instance_flags\0" + "0\0key\0k\0\0");
    expect(r.scanned).toEqual({ op: "bad", request: "lookup", gen: "instance" });
    const [s] = scan("request\0sequence\0instance_flags\0" + "0\0table\0static:x\0flags\0" + "0\0function\0" + "0\0\0");
    expect(s.scanned).toEqual({ op: "bad", request: "sequence", gen: "instance" });
    expect(s.warnings).toEqual(["unexpected attribute instance_flags from proxymap socket (expecting: table)"]);
  });

  test("a request cut short at end of input is BAD in the 3.11 shape", () => {
    const buf = bytes("request\0update\0table\0a:b\0");
    const r = scanRequest(new TokenReader(buf, 0, buf.length, true), "s", "instance");
    expect(r?.scanned).toEqual({ op: "bad", request: "update", gen: "instance" });
  });

  test("under an older installation, the same requests keep their classic answers", () => {
    expect(scanAll("request\0lookup\0table\0\0\0")[0].scanned).toEqual({ op: "bad", request: "lookup", gen: "classic" });
    expect(scanAll("request\0lookup\0table\0static:x\0flags\0" + "0\0key\0k\0\0")[0].scanned).toMatchObject({ op: "lookup", gen: "classic" });
  });
});
