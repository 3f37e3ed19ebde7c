/**
 * The pcre table (src/tables/pcre.ts) and the PCRE2 binding
 * (src/sys/pcre2.ts): compile options as dict_pcre.c maps the flags,
 * captures with unset groups, error texts of the library, the table's
 * flags, and a machine without libpcre2-8 (the table answers CONFIG and
 * the log says what to install; it never matches another way).
 *
 * The byte-for-byte comparison with the C proxymap is in the golden cases
 * test/golden/pcre/ (tables.golden.test.ts, tables.oracle.test.ts, and the
 * built binary in cidr.test.ts).
 *
 * Needs libpcre2-8-0 (Debian: apt-get install libpcre2-8-0).
 */
import { TEST_CTX } from "../helpers/driver-caller";
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import {
  PCRE2_ANCHORED,
  PCRE2_CASELESS,
  PCRE2_DOTALL,
  PCRE2_LIBRARY,
  PCRE2_UNGREEDY,
  Pcre2Regex,
  pcre2ErrorText,
  pcre2Missing,
  usePcre2Library,
} from "../../src/sys/pcre2";
import { INLINE_MATCH_LIMIT, inlineMatchLimit, pcre, pcreEngine } from "../../src/tables/pcre";
import { patternPool } from "../../src/tables/pattern/regexRules";
import type { Table } from "../../src/tables/table";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { logged } from "../helpers/logs";

function requirePcre2(): void {
  const why = pcre2Missing();
  if (why !== undefined) throw new Error(`${PCRE2_LIBRARY} cannot be loaded (${why}): apt-get install libpcre2-8-0`);
}

function compile(p: string, options = PCRE2_CASELESS | PCRE2_DOTALL): Pcre2Regex {
  requirePcre2();
  const re = Pcre2Regex.compile(p, options);
  if ("error" in re) throw new Error(pcre2ErrorText(re.error));
  return re;
}

describe("PCRE2 through bun:ffi", () => {
  test("captures, unset groups, capture count", () => {
    const re = compile("^(a)(x)?(b)$");
    expect(re.captureCount).toBe(3);
    expect(re.exec("AB", true)).toEqual({ match: true, ovector: [0, 2, 0, 1, -1, -1, 1, 2] });
    expect(re.exec("ac", true)).toEqual({ match: false });
    re.free();
  });

  test("options: ANCHORED, UNGREEDY, DOTALL off", () => {
    expect(compile("b", PCRE2_ANCHORED).exec("ab", false)).toEqual({ match: false });
    const u = compile("(a+)", PCRE2_UNGREEDY);
    expect(u.exec("aaa", true)).toEqual({ match: true, ovector: [0, 1, 0, 1] });
    expect(compile("^a.b$", 0).exec("a\nb", false)).toEqual({ match: false });
    expect(compile("^a.b$").exec("a\nb", false)).toEqual({ match: true, ovector: [] });
  });

  test("errors: compile offset and text, match errors", () => {
    requirePcre2();
    const bad = Pcre2Regex.compile("a(b", 0);
    expect("error" in bad && { offset: bad.offset, text: pcre2ErrorText(bad.error) }).toEqual({ offset: 3, text: "missing closing parenthesis" });
    const utf = compile("(*UTF)^.$");
    const r = utf.exec("\xff", false);
    expect("error" in r && pcre2ErrorText(r.error)).toBe("UTF-8 error: illegal byte (0xfe or 0xff)");
    expect(pcre2ErrorText(12345)).toBe("unexpected pcre2 error code 12345");
  });

  test("the subject ends at a NUL, as strlen() in C", () => {
    expect(compile("^ab$").exec("ab\0cd", false)).toEqual({ match: true, ovector: [] });
  });
});

describe("pcre table", () => {
  test("flags as dict_pcre.c maps them; X only warns; others skip the rule", async () => {
    requirePcre2();
    const where = { text: "pcre map M, line 1", lineno: 1 };
    const { logs } = await logged(() => {
      let o = pcreEngine.defaultOptions;
      for (const ch of "imsxAEU") o = pcreEngine.flag(ch, o, where)!;
      // default CASELESS|DOTALL; i and s toggle them off; m x A E U toggle theirs on
      expect(o >>> 0).toBe((0x400 | 0x80 | 0x80000000 | 0x10 | 0x40000) >>> 0);
      expect(pcreEngine.flag("X", 7, where)).toBe(7);
      expect(pcreEngine.flag("q", 7, where)).toBeUndefined();
    });
    expect(logs).toEqual([
      'warning: pcre map M, line 1: ignoring obsolete regexp option "X"',
      'warning: pcre map M, line 1: unknown regexp option "q": skipping this rule',
    ]);
  });

  test("lookups, PATTERN flag, FOLD_MUL, changed()", () => {
    requirePcre2();
    const dir = mkdtempSync(join(tmpdir(), "pcre-"));
    try {
      const file = join(dir, "t");
      writeFileSync(file, "/^(\\w+)@(example\\.com)$/ user=$1 domain=$2\n/^UPPER$/i exact\n");
      const t = pcre.open({ type: "pcre", name: file, write: false, flags: 0 }, TEST_CTX) as Table;
      expect(t.flags).toBe(DictFlag.PATTERN);
      expect(t.lookup("Joe@EXAMPLE.com", 0)).toBe("user=Joe domain=EXAMPLE.com");
      expect(t.lookup("Joe@EXAMPLE.com", DictFlag.FOLD_MUL)).toBe("user=joe domain=example.com");
      expect(t.lookup("upper", 0)).toBeUndefined();
      expect(t.lookup("UPPER", DictFlag.FOLD_MUL)).toBeUndefined();
      expect(t.lookup("UPPER", 0)).toBe("exact");
      expect(t.changed?.()).toBe(false);
      writeFileSync(file, "/x/ y\n");
      expect(t.changed?.()).toBe(true);
      t.close?.();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("without libpcre2-8 the table answers CONFIG and says what to install", async () => {
    requirePcre2();
    const dir = mkdtempSync(join(tmpdir(), "pcre-"));
    const file = join(dir, "t");
    writeFileSync(file, "/a/ b\n");
    usePcre2Library("libpcre2-8-missing-for-test.so.0");
    try {
      const { logs } = await logged(async () => {
        const d = await openDict(`pcre:${file}`, false, 0);
        expect(await dictGet(d, "a", 0)).toMatchObject({ status: Status.CONFIG, value: "" });
        await closeAllDicts();
      });
      expect(logs.length).toBe(2);
      expect(logs[0]).toStartWith(`error: pcre:${file}: cannot load ${PCRE2_LIBRARY} (`);
      expect(logs[0]).toEndWith("); install it: apt-get install libpcre2-8-0");
      expect(logs[1]).toStartWith(`warning: pcre:${file} is unavailable. pcre:${file}: cannot load`);
    } finally {
      usePcre2Library(PCRE2_LIBRARY);
      rmSync(dir, { recursive: true, force: true });
    }
    // And the library is back.
    expect(pcre2Missing()).toBeUndefined();
  });
});

describe("pcre: where a walk runs", () => {
  function table(text: string): { t: Table; done: () => void } {
    requirePcre2();
    const dir = mkdtempSync(join(tmpdir(), "pcre-"));
    const file = join(dir, "t");
    writeFileSync(file, text);
    const t = pcre.open({ type: "pcre", name: file, write: false, flags: 0 }, {} as never) as Table;
    return { t, done: () => (t.close?.(), rmSync(dir, { recursive: true, force: true })) };
  }

  test("the main thread's match limit: 10,000 on short keys, less on longer ones (about 200,000 steps a match)", () => {
    expect(inlineMatchLimit(0)).toBe(INLINE_MATCH_LIMIT);
    expect(inlineMatchLimit(20)).toBe(10_000);
    expect(inlineMatchLimit(40)).toBe(5_000);
    expect(inlineMatchLimit(256)).toBe(700);
    for (let n = 1; n <= 256; n++) expect(n * inlineMatchLimit(n)).toBeLessThanOrEqual(200_000);
  });

  test("ordinary patterns on short keys: answered at once on the main thread, no worker call", () => {
    const { t, done } = table("/^(\\w+)@(example\\.com)$/ user=$1\n/^(.*)@(.*)\\.example\\.com$/ sub=$1/$2\n");
    try {
      const calls = patternPool.stats.calls;
      expect(t.lookup("joe@example.com", 0)).toBe("user=joe");
      expect(t.lookup("a.b.c@d.e.f.example.com", 0)).toBe("sub=a.b.c/d.e.f");
      expect(t.lookup("x".repeat(200) + "@" + "y".repeat(40) + ".example.com", 0)).toBe(`sub=${"x".repeat(200)}/${"y".repeat(40)}`);
      expect(patternPool.stats.calls).toBe(calls);
    } finally {
      done();
    }
  });

  test("a match that reaches the main thread's limit runs again in a worker: the reference's warning and answer", async () => {
    const { t, done } = table("/^(a+)+$/ never\n/^(a+)b$/ run=$1\n");
    try {
      const key = "a".repeat(25) + "b";
      const { value, logs } = await logged(async () => {
        const r = t.lookup(key, 0);
        expect(r).toBeInstanceOf(Promise);
        return r;
      });
      expect(value).toBe(`run=${"a".repeat(25)}`);
      expect(logs).toEqual([expect.stringMatching(/^warning: pcre map .*, line 1: match limit exceeded$/)]);
    } finally {
      done();
    }
  });
});
