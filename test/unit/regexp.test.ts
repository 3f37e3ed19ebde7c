/**
 * The regexp table (src/tables/regexp.ts) and the pieces it shares with
 * pcre (src/tables/pattern/: replacement parsing, rule parsing, if/endif):
 * unit checks of the "$n" parser against mac_parse()'s rules, of the C
 * library's POSIX matching through src/sys/regex.ts (leftmost-longest,
 * basic vs extended syntax, the "C" locale), and of the table's flags
 * (NO_REGSUB at open, FOLD_MUL at lookup), plus change detection.
 *
 * The byte-for-byte comparison with the C proxymap is in the golden cases
 * test/golden/regexp/ (tables.golden.test.ts, tables.oracle.test.ts, and
 * the built binary in cidr.test.ts).
 */
import { TEST_CTX } from "../helpers/driver-caller";
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { atoi, expandReplacement, parseReplacement, prescanReplacement } from "../../src/tables/pattern/macParse";
import { PosixRegex, REG_EXTENDED, REG_ICASE, REG_NEWLINE, REG_NOSUB } from "../../src/sys/regex";
import { hasBackReference, regexp } from "../../src/tables/regexp";
import { INLINE_BUDGET_MS, INLINE_MAX_KEY, patternPool } from "../../src/tables/pattern/regexRules";
import type { Table } from "../../src/tables/table";
import { DictFlag, Status } from "../../src/protocol/constants";
import { setLogSinks } from "../../src/log/msg";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { logged } from "../helpers/logs";

function compile(p: string, flags = REG_EXTENDED): PosixRegex {
  const re = PosixRegex.compile(p, flags);
  if ("error" in re) throw new Error(re.error);
  return re;
}

function openText(text: string, flags = 0): { table: Table; logs: string[]; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "regexp-"));
  const file = join(dir, "t");
  writeFileSync(file, Buffer.from(text, "latin1"));
  const logs: string[] = [];
  setLogSinks([{ write: (_s, line) => logs.push(line.replaceAll(file, "FILE")) }]);
  try {
    const table = regexp.open({ type: "regexp", name: file, write: false, flags }, TEST_CTX) as Table;
    return { table, logs, done: () => rmSync(dir, { recursive: true, force: true }) };
  } finally {
    setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
  }
}

describe("replacement text ($n, ${n}, $(n), $$)", () => {
  test("tokens as mac_parse() splits them", () => {
    expect(parseReplacement("a$1b${2}c$(3)d$$e")).toEqual([
      { kind: "literal", text: "a" },
      { kind: "name", text: "1b" },
      { kind: "name", text: "2" },
      { kind: "literal", text: "c" },
      { kind: "name", text: "3" },
      { kind: "literal", text: "d$e" },
    ]);
    expect(parseReplacement("${a{b}c}")).toEqual([{ kind: "name", text: "a{b}c" }]);
    expect(parseReplacement("x${1")).toEqual([
      { kind: "literal", text: "x" },
      { kind: "error", warning: 'truncated macro reference: "x${1"' },
    ]);
    expect(parseReplacement("$1$")).toEqual([
      { kind: "name", text: "1" },
      { kind: "error", warning: 'empty macro name: "$1$"' },
    ]);
    expect(parseReplacement("")).toEqual([]);
  });

  test("atoi() as glibc on LP64: strtol saturates, then int truncation", () => {
    expect(atoi("12")).toBe(12);
    expect(atoi("4294967297")).toBe(1);
    expect(atoi("4294967296")).toBe(0);
    expect(atoi("2147483648")).toBe(-2147483648);
    expect(atoi("99999999999999999999999")).toBe(-1);
    expect(atoi("7x")).toBe(7);
  });

  test("prescan: every bad $name warns, the largest number wins, constants keep $$ as $", () => {
    const warns: string[] = [];
    const texts = { where: "regexp map M, line 1", outOfRange: "out-of-range" };
    const a = prescanReplacement("$0 a $x $3 $1", texts, (l) => warns.push(l));
    expect(a.ok).toBe(false);
    expect(a.maxSub).toBe(3n);
    expect(warns).toEqual(['regexp map M, line 1: out-of-range replacement index "0"', 'regexp map M, line 1: non-numeric replacement index "x"']);
    const b = prescanReplacement("cost $$5", texts, () => {});
    expect(b).toMatchObject({ ok: true, maxSub: 0n, literal: "cost $5" });
    const c = prescanReplacement("$2147483648", texts, () => {});
    expect(c.maxSub).toBe(2n ** 64n - 2147483648n);
  });

  test("expansion", () => {
    const tokens = parseReplacement("<$1|${2}|$$>");
    expect(expandReplacement(tokens, (n) => ["", "one", ""][n])).toBe("<one||$>");
  });
});

describe("POSIX regular expressions of the C library", () => {
  test("leftmost-longest alternation (JavaScript would take the first alternative)", () => {
    expect(compile("a|ab").exec("ab", 1)).toEqual({ match: true, groups: [[0, 2]] });
    expect(/a|ab/.exec("ab")?.[0]).toBe("a"); // why RegExp is not used
  });

  test("basic syntax without REG_EXTENDED, back-references, bracket rules", () => {
    expect(compile("x\\(y\\)\\1", 0).exec("xyy")).toEqual({ match: true, groups: [] });
    expect(compile("x\\(y\\)\\1", 0).nsub).toBe(1);
    expect(compile("a+", 0).exec("aa")).toEqual({ match: false });
    expect(compile("[]a]+").exec("]a]")).toEqual({ match: true, groups: [] });
    expect(compile("[[:digit:]]{3}").exec("12")).toEqual({ match: false });
    expect(compile("^\\w$").exec("\\")).toEqual({ match: false }); // no \w in a bracket-free POSIX sense
  });

  test("flags: REG_ICASE, REG_NEWLINE, REG_NOSUB", () => {
    expect(compile("^abc$", REG_EXTENDED | REG_ICASE).exec("ABC")).toEqual({ match: true, groups: [] });
    expect(compile("^b$", REG_EXTENDED).exec("a\nb")).toEqual({ match: false });
    expect(compile("^b$", REG_EXTENDED | REG_NEWLINE).exec("a\nb")).toEqual({ match: true, groups: [] });
    expect(compile("(a)", REG_EXTENDED | REG_NOSUB).nsub).toBe(1);
  });

  test("the C locale: bytes above 127 are single characters, case folding is ASCII only", () => {
    expect(compile("^.$").exec("\xc3\xa9")).toEqual({ match: false });
    expect(compile("^..$").exec("\xc3\xa9")).toEqual({ match: true, groups: [] });
    expect(compile("^\xe9$", REG_EXTENDED | REG_ICASE).exec("\xc9")).toEqual({ match: false });
  });

  test("compile errors carry regerror() texts", () => {
    expect(PosixRegex.compile("a(b", REG_EXTENDED)).toEqual({ error: "Unmatched ( or \\(" });
    expect(PosixRegex.compile("a{2,1}", REG_EXTENDED)).toEqual({ error: "Invalid content of \\{\\}" });
    expect(PosixRegex.compile("[a", REG_EXTENDED)).toEqual({ error: "Unmatched [, [^, [:, [., or [=" });
  });
});

describe("regexp table", () => {
  test("flags: PATTERN in the open reply; read service only", async () => {
    const { table, done } = openText("/a/ b\n");
    try {
      expect(table.flags).toBe(DictFlag.PATTERN);
      expect(table.sequence).toBeUndefined();
    } finally {
      done();
    }
    // The refusal is declared on the type; the dict layer makes it (a RETRY surrogate).
    expect(regexp.refuses).toEqual(["write"]);
    const { logs } = await logged(async () => {
      const d = await openDict("regexp:/x", true, 0);
      expect((await dictGet(d, "k", 0)).status).toBe(Status.RETRY);
      await closeAllDicts();
    });
    expect(logs).toEqual(["error: regexp:/x map requires O_RDONLY access mode", "warning: regexp:/x is unavailable. regexp:/x map requires O_RDONLY access mode"]);
  });

  test("NO_REGSUB at open skips rules with $n; FOLD_MUL at lookup lower-cases the key (ASCII)", () => {
    const { table, logs, done } = openText("/^(U)SER$/ sub=$1\n/^user$/i plain\n/^\xc9$/i e-acute\n", DictFlag.NO_REGSUB);
    try {
      expect(logs).toEqual(["warning: regexp map FILE, line 1: regular expression substitution is not allowed: skipping this rule"]);
      expect(table.lookup("USER", 0)).toBeUndefined();
      expect(table.lookup("USER", DictFlag.FOLD_MUL)).toBe("plain");
      expect(table.lookup("\xc9", DictFlag.FOLD_MUL)).toBe("e-acute");
      expect(table.lookup("\xe9", 0)).toBeUndefined();
    } finally {
      done();
    }
  });

  test("/p1/!/p2/, negation, first match wins, if without endif stops the walk", () => {
    const { table, logs, done } = openText("/^a/!/b/ a-not-b\n!/^z/ not-z\n/^a/ never\nif /q/\n/x/ x\n", 0);
    try {
      expect(logs).toEqual(["warning: regexp map FILE, line 4: IF has no matching ENDIF"]);
      expect(table.lookup("ac", 0)).toBe("a-not-b");
      expect(table.lookup("ab", 0)).toBe("not-z");
      expect(table.lookup("zx", 0)).toBeUndefined();
      expect(table.lookup("zqx", 0)).toBe("x");
    } finally {
      done();
    }
  });

  test("lookups run in the C locale even when the process locale is UTF-8", () => {
    const { dlopen } = require("bun:ffi") as typeof import("bun:ffi");
    const l = dlopen("libc.so.6", { setlocale: { args: ["i32", "ptr"], returns: "ptr" } });
    const LC_ALL = 6;
    const set = l.symbols.setlocale(LC_ALL, Buffer.from("C.UTF-8\0"));
    if (set === null) throw new Error("the C.UTF-8 locale is missing (Debian: it is part of libc6)");
    try {
      const { table, done } = openText("/^\xe9$/ e\n/^.$/ one\n/^..$/ two\n");
      try {
        expect(table.lookup("\xc3\xa9", 0)).toBe("two"); // one character in UTF-8, two bytes in C
        expect(table.lookup("\xc9", 0)).toBe("one"); // no case folding above ASCII
        expect(table.lookup("\xe9", 0)).toBe("e");
      } finally {
        done();
      }
    } finally {
      l.symbols.setlocale(LC_ALL, Buffer.from("C\0"));
      l.close();
    }
  });

  test("a rewritten file is reported by changed()", () => {
    const { table, done } = openText("/a/ b\n");
    try {
      expect(table.changed?.()).toBe(false);
      const file = (table as unknown as { name: string }).name;
      writeFileSync(file, "/a/ changed and longer\n");
      expect(table.changed?.()).toBe(true);
    } finally {
      done();
    }
  });
});

describe("where a walk runs (main thread while bounded, else a worker thread)", () => {
  test("short keys, no back-references: answered at once on the main thread, no worker call", () => {
    const { table, done } = openText("/^(a|b)x$/ m=$1\n/^q/ q\n");
    try {
      const calls = patternPool.stats.calls;
      expect(table.lookup("ax", 0)).toBe("m=a");
      expect(table.lookup("qq", 0)).toBe("q");
      expect(table.lookup("zz", 0)).toBeUndefined();
      expect(patternPool.stats.calls).toBe(calls);
    } finally {
      done();
    }
  });

  test("a back-reference: the walk goes on in a worker from that rule; the rules before it answer at once", async () => {
    const { table, done } = openText("/^first$/ one\n/^(ab)\\1$/ twin=$1\n/^z/ z\n");
    try {
      expect(hasBackReference("^(ab)\\1$")).toBe(true);
      expect(hasBackReference("^a\\\\1$")).toBe(false); // an escaped backslash, then "1"
      expect(table.lookup("first", 0)).toBe("one");
      const calls = patternPool.stats.calls;
      const twin = table.lookup("abab", 0);
      expect(twin).toBeInstanceOf(Promise);
      expect(await twin).toBe("twin=ab");
      expect(await table.lookup("zz", 0)).toBe("z");
      expect(patternPool.stats.calls).toBe(calls + 2);
    } finally {
      done();
    }
  });

  test(`a key longer than ${INLINE_MAX_KEY} bytes: the walk runs in a worker, same answer`, async () => {
    const { table, done } = openText("/^(x+)(y*)$/ x=$2\n");
    try {
      const short = "x".repeat(INLINE_MAX_KEY - 2) + "yy";
      const long = "x".repeat(INLINE_MAX_KEY) + "yy";
      expect(table.lookup(short, 0)).toBe("x=yy");
      const r = table.lookup(long, 0);
      expect(r).toBeInstanceOf(Promise);
      expect(await r).toBe("x=yy");
    } finally {
      done();
    }
  });

  test(`a walk that uses up ${INLINE_BUDGET_MS} ms of the main thread goes on in a worker`, async () => {
    // Each rule scans the whole key from every position (quadratic): about
    // 0.05-0.1 ms a rule at 256 bytes, so 3,000 rules take far longer.
    const rules = Array.from({ length: 3000 }, (_, i) => `/a[^x]*y${i}/ r${i}\n`).join("") + "/^(a+)$/ all\n";
    const { table, done } = openText(rules);
    try {
      // The first walk that goes to a worker also sends it the table's rules
      // (about 5 us a rule, once per table and worker): not measured here.
      expect(await table.lookup("a".repeat(INLINE_MAX_KEY), 0)).toBe("all");
      const calls = patternPool.stats.calls;
      const t0 = performance.now();
      const r = table.lookup("a".repeat(INLINE_MAX_KEY), 0);
      const onMain = performance.now() - t0;
      expect(r).toBeInstanceOf(Promise);
      expect(onMain).toBeLessThan(INLINE_BUDGET_MS + 5);
      expect(await r).toBe("all");
      expect(patternPool.stats.calls).toBe(calls + 1);
    } finally {
      done();
    }
  });
});
