/**
 * The dict layer's own behaviour that the golden files do not show:
 * cache keys, shared in-flight opens, refused flags, the UTF-8 helpers and
 * ICU case folding, the hot path's speed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import {
  changedTables,
  closeAllDicts,
  registeredName,
  dictDel,
  dictGet,
  dictPut,
  dictSeq,
  openDict,
  setUtf8Enabled,
  type Dict,
} from "../../src/tables/dict";
import { dictFlagsStr } from "../../src/tables/flagsStr";
import { allAscii, casefold, lowercaseAscii, validUtf8 } from "../../src/tables/utf8";
import { icuFoldCase } from "../../src/tables/icu";
import { logicalLines } from "../../src/config/logicalLines";
import { writeCoolFile } from "../helpers/files";

const F = DictFlag;
let dir = "";
let logs: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dict-test-"));
  setLogSinks([{ write: (_s, line) => logs.push(line) }]);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
});
afterEach(async () => {
  await closeAllDicts();
  logs = [];
  setUtf8Enabled(false);
});

const coolFile = (name: string, text: string) => writeCoolFile(join(dir, name), text);

describe("cache keys", () => {
  test("dict_flags_str names, in Postfix's order, leftover bits in hex", () => {
    expect(dictFlagsStr(0)).toBe("");
    expect(dictFlagsStr(F.FOLD_FIX | F.UTF8_REQUEST | F.DUP_WARN)).toBe("warn_dup|fold_fix|utf8_request");
    expect(dictFlagsStr(1 << 10)).toBe("0x400");
    expect(dictFlagsStr(F.DEBUG | (1 << 22))).toBe("debug|0x400000");
    expect(dictFlagsStr(-1)).toBe(
      "warn_dup|ignore_dup|try0null|try1null|fixed|pattern|lock|replace|sync_update|debug|no_regsub|no_proxy|" +
        "no_unauth|fold_fix|fold_mul|open_lock|bulk_update|multi_writer|utf8_request|utf8_active|src_rhs_is_file|0xffc00400",
    );
  });

  test("the key keeps only the instance bits, as the reference logs it", () => {
    expect(registeredName("hash:/tmp/x", false, 0, "classic")).toBe("hash:/tmp/x:");
    expect(registeredName("hash:/tmp/x", false, F.DEBUG | F.FOLD_FIX | F.LOCK | F.FIXED, "classic")).toBe("hash:/tmp/x:debug");
    // From 3.11 every bit counts, with the open mode in octal (dict_make_registered_name4).
    expect(registeredName("hash:/tmp/x", true, F.FOLD_FIX | F.LOCK, "instance")).toBe("hash:/tmp/x(102,lock|fold_fix)");
    expect(registeredName("hash:/tmp/x", false, 0, "instance")).toBe("hash:/tmp/x(0,)");
  });
});

describe("opening", () => {
  test("concurrent opens of a table still loading share one instance", async () => {
    // A file written just now is "hot": texthash waits for it to cool down,
    // so its open is asynchronous, as a network table's would be.
    const p = join(dir, "hot.map");
    writeFileSync(p, "k v\n");
    const a = openDict(`texthash:${p}`, false, 0);
    const b = openDict(`texthash:${p}`, false, F.FOLD_FIX);
    expect(a).toBeInstanceOf(Promise);
    expect(b).toBe(a);
    const [da, db] = await Promise.all([a, b]);
    expect(da).toBe(db);
    expect(openDict(`texthash:${p}`, false, 0)).toBe(da);
    expect(dictGet(da, "k", 0)).toMatchObject({ status: Status.OK, value: "v" });
  }, 10000);

  test("OPEN_LOCK with LOCK on a fresh instance (the reference panics): opened with the open lock, the request answered", async () => {
    for (const gen of ["classic", "instance"] as const) {
      const name = "static:v";
      const d = (await openDict(name, true, F.OPEN_LOCK | F.LOCK, gen)) as Dict;
      expect(dictGet(d, "k", F.OPEN_LOCK | F.LOCK)).toMatchObject({ status: Status.OK, value: "v" });
      // The same instance a request with the open lock alone finds (what postscreen's own open made).
      expect(await openDict(name, true, F.OPEN_LOCK, gen)).toBe(d);
      expect(logs).toEqual([]);
      await closeAllDicts();
    }
  });

  test("an empty type or name answers CONFIG (the reference exits)", async () => {
    const d = await openDict("static:", false, 0);
    expect(dictGet(d, "k", 0)).toMatchObject({ status: Status.CONFIG, value: "" });
    expect(logs).toEqual([
      'error: open dictionary: expecting "type:name" form instead of "static:"',
      'warning: static: is unavailable. open dictionary: expecting "type:name" form instead of "static:"',
    ]);
  });

  test("no table of this issue's types tracks file changes (as 3.7's)", async () => {
    await openDict(`texthash:${coolFile("c.map", "a 1\n")}`, false, 0);
    expect(changedTables()).toEqual([]);
  });

  test("a changed regexp, pcre or cidr file is re-read but is no reason to restart (the reference never notices)", async () => {
    const files = [coolFile("r.regexp", "/a/ 1\n"), coolFile("p.pcre", "/a/ 1\n"), coolFile("c.cidr", "192.0.2.1 1\n")];
    const types = ["regexp", "pcre", "cidr"];
    for (let i = 0; i < 3; i++) await openDict(`${types[i]}:${files[i]}`, false, 0);
    for (const f of files) writeFileSync(f, f.endsWith("cidr") ? "192.0.2.1 2\n" : "/a/ 2\n");
    await Bun.sleep(1100); // one probe per second per table
    expect(changedTables()).toEqual([]);
    const d = (await openDict(`regexp:${files[0]}`, false, 0)) as Dict;
    expect(await dictGet(d, "a", 0)).toMatchObject({ status: Status.OK, value: "2" });
  });
});

describe("UTF-8 helpers", () => {
  test("valid_utf8_string rules", () => {
    for (const ok of ["", "abc", "\xc3\xa4", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"]) expect(validUtf8(ok)).toBe(true);
    for (const bad of ["\xff", "\xc3", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "a\xc3(", "\xe2\x82"])
      expect(validUtf8(bad)).toBe(false);
  });

  test("allascii is false for the empty string, as in C", () => {
    expect(allAscii("")).toBe(false);
    expect(allAscii("abc")).toBe(true);
    expect(allAscii("ab\x80")).toBe(false);
  });

  test("lowercase touches ASCII letters only", () => {
    expect(lowercaseAscii("AbC\xc4\xc3\x84Z")).toBe("abc\xc4\xc3\x84z");
    const s = "already lower";
    expect(lowercaseAscii(s)).toBe(s);
  });

  test("casefold: ASCII only when UTF-8 is off, ICU full folding when on", () => {
    setUtf8Enabled(false);
    expect(casefold("STRA\xc3\x9fE \xc3\x84")).toBe("stra\xc3\x9fe \xc3\x84");
    setUtf8Enabled(true);
    const u = (s: string) => Buffer.from(s, "utf8").toString("latin1");
    expect(casefold(u("STRAẞE Äpfel"))).toBe(u("strasse äpfel"));
    expect(casefold(u("İ"))).toBe(u("i̇"));
    expect(casefold(u("ΣΊΣΥΦΟΣ ς"))).toBe(u("σίσυφοσ σ"));
    expect(casefold(u("ꭰ Ꭰ"))).toBe(u("Ꭰ Ꭰ"));
    expect(casefold(u("ﬁ"))).toBe(u("fi"));
  });

  test("ICU is found on this system (Postfix links the same library)", () => {
    expect(icuFoldCase(Buffer.from("\xc3\x84", "latin1"))?.toString("latin1")).toBe("\xc3\xa4");
  });
});

describe("logical lines", () => {
  test("continuations, comments inside them, blank lines before a continuation", () => {
    const got = logicalLines("a 1\n  b\n# c\n  d\n\n  e\nf 2\n#x\n", "/t");
    expect(got).toEqual([
      { text: "a 1  b  d  e", lineno: 1 },
      { text: "f 2", lineno: 7 },
    ]);
  });

  test("a first line starting with whitespace is dropped with the warning", () => {
    expect(logicalLines(" x y\nk v", "/t")).toEqual([{ text: "k v", lineno: 2 }]);
    expect(logs).toEqual(['warning: /t: logical line must not start with whitespace: " x y"']);
  });
});

describe("hot path", () => {
  test("texthash lookups are synchronous and fast", async () => {
    let text = "";
    for (let i = 0; i < 10000; i++) text += `key${i} value${i}\n`;
    const d = await openDict(`texthash:${coolFile("big.map", text)}`, false, 0);
    const flags = F.UTF8_REQUEST | F.LOCK | F.DUP_WARN;
    const t0 = performance.now();
    let found = 0;
    for (let i = 0; i < 200000; i++) {
      const r = dictGet(d, `key${i % 12000}`, flags);
      if (r instanceof Promise) throw new Error("lookup returned a Promise");
      if (r.status === Status.OK) found++;
    }
    const ms = performance.now() - t0;
    expect(found).toBe(200000 - Math.floor(200000 / 12000) * 2000 - Math.max(0, (200000 % 12000) - 10000));
    // Generous bound for a slow CI machine; typically well under 100 ms.
    expect(ms).toBeLessThan(1000);
  });
});
