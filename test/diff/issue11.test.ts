/**
 * issue11.test.ts - the three defects of issue 11, each as a focused case
 * with the exact reply bytes a real Postfix gives: every expectation is
 * first checked against the C proxymap of the same generation (3.12 from
 * the oracle tree, test/helpers/oracle312.ts; 3.7.11 from Debian), then
 * asked of ours installed the same way.
 *
 *  1. one table instance per name and instance_flags: texthash
 *     instance_flags 524353 then 540737 with key Carol@Example.COM, and a
 *     walk of the FOLD_FIX instance (folded keys);
 *  2. the flags word has one writer: overlapping lookups with different
 *     request flags on a unionmap whose socketmap member answers in 50 ms;
 *     the open flags after them, in the 3.12 world and (3.7-shaped open) in
 *     the 3.7 world;
 *  3. reply shape under a 3.11+ installation: malformed requests get the
 *     3.12 shape (`status=3 flags=0 value=`), with the same warnings; under
 *     3.7 they keep the classic shape.
 * Each case runs on fresh processes of its own instances, so no other case's
 * history reaches it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ORACLE312_TREE, requireOracle312 } from "../helpers/oracle312";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { SocketmapServer } from "../helpers/socketmap-server";
import { WireClient, encodeAttrs, type Attr } from "../helpers/wire";
import { SERVER312_DATA, makeTables312, writeFiles312, type Tables312 } from "./corpus312";

let dir = "";
let slow: SocketmapServer | undefined;
let tables: Tables312;
const live: PostfixInstance[] = [];

/** A fresh pair of instances (C and ours) of one generation, approving the tables. */
async function pair(gen: "3.12" | "3.7"): Promise<{ c: PostfixInstance; ours: PostfixInstance }> {
  const common = {
    mainCf: { proxy_read_maps: tables.readMaps, proxy_write_maps: tables.writeMaps },
    proxymapMaxproc: "1",
    ...(gen === "3.12" ? { postfix: ORACLE312_TREE } : {}),
  };
  const [c, ours] = await Promise.all([
    PostfixInstance.start({ impl: "c", label: `i11-${gen}-c`, ...common }),
    PostfixInstance.start({ impl: "ours", label: `i11-${gen}-ours`, ...common }),
  ]);
  live.push(c, ours);
  return { c, ours };
}

/** Send requests one at a time on one connection; the replies as printable text. */
async function ask(inst: PostfixInstance, reqs: (readonly Attr[] | Buffer)[]): Promise<string[]> {
  const cl = await WireClient.connect(inst.socket("proxymap"));
  const out: string[] = [];
  try {
    for (const r of reqs) out.push(await cl.exchange(r));
  } finally {
    cl.close();
  }
  return out;
}

const lookup311 = (table: string, inst: number, flags: number, key: string): Attr[] => [["request", "lookup"], ["table", table], ["instance_flags", String(inst)], ["flags", String(flags)], ["key", key]];
const seq311 = (table: string, inst: number, flags: number, func: 0 | 1): Attr[] => [["request", "sequence"], ["table", table], ["instance_flags", String(inst)], ["flags", String(flags)], ["function", String(func)]];

/** The warning lines of one proxymap process, without time, host and pid. */
function warnings(inst: PostfixInstance, mark: number): string[] {
  return inst
    .logSince(mark)
    .split("\n")
    .map((l) => /postfix\/proxymap\[\d+\]: (warning: .*)$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

describe("issue 11: the three defects, against the C proxymap of the same generation", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOracle312();
    requireOurBinary();
    dir = mkdtempSync(join(tmpdir(), "pfx-i11-"));
    chmodSync(dir, 0o755); // proxymap runs as mail_owner
    slow = await SocketmapServer.start({ data: { slow: SERVER312_DATA, fast: SERVER312_DATA }, path: join(dir, "slow.sock"), delayMs: 50 });
    chmodSync(join(dir, "slow.sock"), 0o666);
    tables = makeTables312(join(dir, "tables"), { sockFast: slow.table("fast"), sockSlow: slow.table("slow"), tcp: "tcp:127.0.0.1:1" });
    writeFiles312(tables);
  });

  afterAll(async () => {
    for (const i of live) i.stop();
    await slow?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("defect 1: texthash, instance_flags 524353 then 540737 (FOLD_FIX), key Carol@Example.COM: OK carol-box both times", async () => {
    const lab = tables.named.lab;
    const reqs = [lookup311(lab, 524353, 1572945, "Carol@Example.COM"), lookup311(lab, 540737, 1589329, "Carol@Example.COM")];
    const want = ["status|0|flags|1572945|value|carol-box||", "status|0|flags|1589329|value|carol-box||"];
    const { c, ours } = await pair("3.12");
    expect(await ask(c, reqs)).toEqual(want);
    expect(await ask(ours, reqs)).toEqual(want);
  });

  test("defect 1: a walk of the FOLD_FIX instance returns the folded key carol@example.com", async () => {
    const lab = tables.named.lab;
    const walk = (inst: number, flags: number) => [lookup311(lab, 524353, 1572945, "Carol@Example.COM"), seq311(lab, inst, flags, 0), ...Array.from({ length: 9 }, () => seq311(lab, inst, flags, 1))];
    const keys = (replies: string[]) => replies.slice(1).map((r) => /^status\|0\|.*\|key\|([^|]*)\|/.exec(r)?.[1]).filter((k) => k !== undefined).sort();
    const { c, ours } = await pair("3.12");
    const cKeys = keys(await ask(c, walk(540737, 1589329)));
    expect(cKeys).toContain("carol@example.com");
    expect(cKeys).not.toContain("Carol@Example.COM");
    expect(keys(await ask(ours, walk(540737, 1589329)))).toEqual(cKeys);
  });

  test("defect 2: 50 overlapping lookups pairs (flags 1589329 key a, 524353 key b, instance_flags 524353) on an asynchronous unionmap: each reply as 3.12 answers it alone, open flags unchanged", async () => {
    const u = tables.named.unionSlow;
    const a = lookup311(u, 524353, 1589329, "a");
    const b = lookup311(u, 524353, 524353, "b");
    const open: Attr[] = [["request", "open"], ["table", u], ["instance_flags", "524353"]];
    const wantA = "status|0|flags|1589329|value|inl-a,value-a||";
    const wantB = "status|0|flags|524353|value|value-b||";
    const wantOpen = "status|0|flags|1572945||";
    const { c, ours } = await pair("3.12");
    expect(await ask(c, [a, b, open])).toEqual([wantA, wantB, wantOpen]);
    const [c1, c2] = await Promise.all([WireClient.connect(ours.socket("proxymap")), WireClient.connect(ours.socket("proxymap"))]);
    const one = (cl: WireClient, req: Attr[]) => cl.exchange(req);
    const wrong: string[] = [];
    for (let i = 0; i < 50; i++) {
      const [ra, rb] = await Promise.all([one(c1, a), one(c2, b)]);
      if (ra !== wantA) wrong.push(`pair ${i} a: ${ra}`);
      if (rb !== wantB) wrong.push(`pair ${i} b: ${rb}`);
    }
    const after = await one(c1, open);
    c1.close();
    c2.close();
    expect({ wrong: wrong.length, first: wrong.slice(0, 4), after }).toEqual({ wrong: 0, first: [], after: wantOpen });
  }, 60_000);

  test("defect 2, 3.7 world: after overlapping 3.11 lookups, a 3.7-shaped open answers the flags the 3.7 C proxymap answers (FIXED kept)", async () => {
    const u = tables.named.unionSlow;
    const open37: Attr[] = [["request", "open"], ["table", u], ["flags", "524353"]];
    const { c, ours } = await pair("3.7");
    const [want] = await ask(c, [open37]);
    // The open's request bits (524353) plus the instance's: FIXED, UTF8_ACTIVE.
    expect(want).toBe("status|0|flags|1572945||");
    const [c1, c2] = await Promise.all([WireClient.connect(ours.socket("proxymap")), WireClient.connect(ours.socket("proxymap"))]);
    const one = (cl: WireClient, req: Attr[]) => cl.exchange(req);
    for (let i = 0; i < 20; i++) await Promise.all([one(c1, lookup311(u, 524353, 1589329, "a")), one(c2, lookup311(u, 524353, 524353, "b"))]);
    const after = await one(c1, open37);
    c1.close();
    c2.close();
    expect(after).toBe(want);
  }, 60_000);

  test("defect 3: under a 3.11+ installation every malformed request gets the 3.12 reply shape and the 3.12 warnings", async () => {
    const t = tables.named.static;
    const reqs: [string, Buffer, string][] = [
      ["request=lookup table=", encodeAttrs([["request", "lookup"], ["table", ""]]), "status|3|flags|0|value|||"],
      ["lookup, flags before instance_flags", encodeAttrs([["request", "lookup"], ["table", t], ["flags", "0"], ["instance_flags", "0"], ["key", "k"]]), "status|3|flags|0|value|||"],
      ["lookup, 3.7 shape", encodeAttrs([["request", "lookup"], ["table", t], ["flags", "524353"], ["key", "k"]]), "status|3|flags|0|value|||"],
      ["open, 3.7 shape", encodeAttrs([["request", "open"], ["table", t], ["flags", "0"]]), "status|3|flags|0||"],
      ["sequence, missing function", encodeAttrs([["request", "sequence"], ["table", t], ["instance_flags", "0"], ["flags", "0"]]), "status|3|flags|0|key||value|||"],
      ["lookup, bad instance_flags", encodeAttrs([["request", "lookup"], ["table", t], ["instance_flags", "x"], ["flags", "0"], ["key", "k"]]), "status|3|flags|0|value|||"],
      ["unknown request", encodeAttrs([["request", "frob"]]), "status|3||"],
    ];
    const { c, ours } = await pair("3.12");
    const run = async (inst: PostfixInstance) => {
      const mark = inst.logMark();
      const replies: string[] = [];
      for (const [, bytes] of reqs) replies.push(...(await ask(inst, [bytes])));
      await Bun.sleep(400); // postlogd writes asynchronously
      return { replies, warnings: warnings(inst, mark) };
    };
    const fromC = await run(c);
    expect(fromC.replies).toEqual(reqs.map((r) => r[2]));
    const fromOurs = await run(ours);
    expect(fromOurs.replies).toEqual(fromC.replies);
    expect(fromOurs.warnings).toEqual(fromC.warnings);
  });

  test("defect 3, 3.7 world: the same malformed requests keep the classic replies of the 3.7 C proxymap", async () => {
    const t = tables.named.static;
    const reqs = [
      encodeAttrs([["request", "lookup"], ["table", ""]]),
      encodeAttrs([["request", "lookup"], ["table", t], ["flags", "0"], ["instance_flags", "0"], ["key", "k"]]),
      encodeAttrs([["request", "lookup"], ["table", t], ["flags", "524353"], ["key", "k"]]),
      encodeAttrs([["request", "open"], ["table", t], ["flags", "0"]]),
      encodeAttrs([["request", "frob"]]),
    ];
    const { c, ours } = await pair("3.7");
    const fromC: string[] = [];
    for (const r of reqs) fromC.push(...(await ask(c, [r])));
    expect(fromC.slice(0, 2)).toEqual(["status|3|value|||", "status|3|value|||"]);
    const fromOurs: string[] = [];
    for (const r of reqs) fromOurs.push(...(await ask(ours, [r])));
    expect(fromOurs).toEqual(fromC);
  });
});
