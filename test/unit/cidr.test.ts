/**
 * The cidr table (src/tables/cidr.ts, src/tables/pattern/cidrMatch.ts):
 * pattern parsing and matching with the reference's quirks, rule parsing,
 * change detection through the dict layer, and the built executable
 * (dist/proxymap) answering every golden case of cidr, regexp and pcre
 * exactly as its .ref file says (those .ref files were written from the C
 * proxymap; test/unit/tables.oracle.test.ts re-checks them against it).
 *
 * The golden cases themselves (test/golden/{cidr,regexp,pcre}/) also run
 * in-process through tables.golden.test.ts and against the C proxymap in
 * tables.oracle.test.ts.
 *
 * Needs: the C library (inet_pton), perl and a built dist/proxymap for the
 * last part (fails with the hint: npm run build).
 */
import { TEST_CTX } from "../helpers/driver-caller";
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cidr, parseCidrRule } from "../../src/tables/cidr";
import { parseCidrKey, cidrMatches, parseCidrPattern, type CidrPattern } from "../../src/tables/pattern/cidrMatch";
import { startsWithKeyword } from "../../src/tables/pattern/keyword";
import { Op } from "../../src/tables/pattern/rules";
import type { Table } from "../../src/tables/table";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { echo, formatSteps, loadCases, makeScratch, readRef, withoutReference, type Case, type StepOutput } from "../golden/lib/golden";
import { WireClient, encodeRequest } from "../helpers/wire";
import { requireCommand, requireOurBinary } from "../helpers/require";
import { logged } from "../helpers/logs";

function pat(text: string, match = true): CidrPattern {
  const p = parseCidrPattern(text, match);
  if ("error" in p) throw new Error(p.error);
  return p;
}

function matches(p: CidrPattern, key: string): boolean {
  const k = parseCidrKey(key);
  return k !== undefined && cidrMatches(p, k);
}

describe("cidr patterns", () => {
  test("prefixes, bare addresses and brackets", () => {
    expect(matches(pat("192.168.1.0/24"), "192.168.1.255")).toBe(true);
    expect(matches(pat("192.168.1.0/24"), "192.168.2.0")).toBe(false);
    expect(matches(pat("10.0.0.1"), "10.0.0.1")).toBe(true);
    expect(matches(pat("10.0.0.1"), "10.0.0.2")).toBe(false);
    expect(matches(pat("[1.2.3.0]/24"), "1.2.3.9")).toBe(true);
    expect(matches(pat("[::1]"), "::1")).toBe(true);
    expect(matches(pat("2001:db8::/32"), "2001:DB8:ffff::1")).toBe(true);
    expect(matches(pat("0.0.0.0/0"), "255.255.255.255")).toBe(true);
    expect(matches(pat("::/0"), "1.2.3.4")).toBe(false); // other family never matches
    expect(matches(pat("10.0.0.0/9"), "10.127.255.255")).toBe(true);
    expect(matches(pat("10.0.0.0/9"), "10.128.0.0")).toBe(false);
  });

  test("negation matches the rest of the family only", () => {
    const p = pat("10.0.0.0/8", false);
    expect(matches(p, "11.0.0.1")).toBe(true);
    expect(matches(p, "10.0.0.1")).toBe(false);
    expect(matches(p, "::1")).toBe(false);
  });

  test("the mask length is an unsigned char, as in the reference", () => {
    expect(pat("9.9.9.9/288").shift).toBe(32);
    expect(pat("0.0.0.0/256").shift).toBe(0);
    expect(matches(pat("0.0.0.0/256"), "200.1.1.1")).toBe(true);
    expect((parseCidrPattern("8.0.0.0/256", true) as { error: string }).error).toBe(
      'non-null host address bits in "8.0.0.0/256", perhaps you should use "0.0.0.0/0" instead',
    );
  });

  test("errors carry the reference's texts", () => {
    const err = (t: string) => (parseCidrPattern(t, true) as { error: string }).error;
    expect(err("1.2.3.4/33")).toBe('bad mask length in "1.2.3.4/33"');
    expect(err("1.2.3.4/24")).toBe('non-null host address bits in "1.2.3.4/24", perhaps you should use "1.2.3.0/24" instead');
    expect(err("2001:db8::1/64")).toBe('non-null host address bits in "2001:db8::1/64", perhaps you should use "2001:db8::/64" instead');
    expect(err("1.2.3.4/2x")).toBe('bad mask value in "1.2.3.4/2x"');
    expect(err("1.2.3.4/")).toBe('bad mask value in "1.2.3.4/"');
    expect(err("1.2.3.4/8/8")).toBe('bad mask value in "1.2.3.4/8/8"');
    expect(err("x.y/8")).toBe('bad network value in "x.y/8"');
    expect(err("1.2.3.04")).toBe('bad address pattern: "1.2.3.04"');
    expect(err("[1.2.3.6")).toBe(`missing ']' character after "[1.2.3.6"`);
    expect(err("[1.2.3.7]x")).toBe('garbage after "[1.2.3.7]"');
  });

  test("keys that are not addresses", () => {
    for (const k of ["", "foo", "1.2.3", "1.2.3.4.5", "0x7f.1", "127.1", " 1.2.3.4", "1.2.3.4 ", "[1.2.3.4]", "fe80::1%eth0", "\xff"]) {
      expect(parseCidrKey(k)).toBeUndefined();
    }
    expect(parseCidrKey("::ffff:1.2.3.4")?.bytes.length).toBe(16);
  });
});

describe("cidr rules", () => {
  test("if/endif keywords", () => {
    expect(startsWithKeyword("if 1.2.3.4", "IF")).toBe(true);
    expect(startsWithKeyword("IF!1.2.3.4", "IF")).toBe(true);
    expect(startsWithKeyword("iffy", "IF")).toBe(false);
    expect(startsWithKeyword("endif", "ENDIF")).toBe(true);
    expect(startsWithKeyword("Endif#", "ENDIF")).toBe(true);
    expect(startsWithKeyword("endif2", "ENDIF")).toBe(false);
  });

  test("rule parsing", () => {
    const r = parseCidrRule("!! 1.2.3.0/24   a value  ", 3, 0, 0);
    expect("error" in r).toBe(false);
    if (!("error" in r)) {
      expect(r.op).toBe(Op.Match);
      expect(r.value).toBe("a value");
      expect(r.pattern?.match).toBe(true);
    }
    expect(parseCidrRule("1.2.3.4", 1, 0, 0)).toEqual({ error: "no lookup result" });
    expect(parseCidrRule("!", 1, 0, 0)).toEqual({ error: "no address pattern" });
    expect(parseCidrRule("if", 1, 0, 0)).toEqual({ error: "no address pattern" });
    expect(parseCidrRule("endif", 1, 0, 0)).toEqual({ error: "ENDIF without IF" });
    expect(parseCidrRule("endif x", 1, 1, 0)).toEqual({ error: "garbage after ENDIF" });
    expect(parseCidrRule("if 1.2.3.0/24 foo", 1, 0, 0)).toEqual({ error: 'bad mask value in "1.2.3.0/24 foo"' });
  });

  test("table: first match wins, if/endif blocks, unclosed if ends the walk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cidr-"));
    try {
      const file = join(dir, "t");
      writeFileSync(file, "if 10.0.0.0/8\n10.1.0.0/16 a\n10.0.0.0/8 b\nendif\n10.1.1.1 c\nif 20.0.0.0/8\n30.0.0.1 d\n");
      const { value: t, logs } = await logged(() => cidr.open({ type: "cidr", name: file, write: false, flags: 0 }, TEST_CTX) as Table);
      expect(logs).toEqual([`warning: cidr map ${file}, line 6: IF has no matching ENDIF`]);
      expect(t.flags).toBe(DictFlag.PATTERN);
      expect(t.lookup("10.1.1.1", 0)).toBe("a");
      expect(t.lookup("10.2.1.1", 0)).toBe("b");
      expect(t.lookup("30.0.0.1", 0)).toBeUndefined();
      expect(t.lookup("bogus", 0)).toBeUndefined();
      expect(t.sequence).toBeUndefined();
      expect(t.update).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a changed file is noticed and the dict layer re-opens it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cidr-"));
    try {
      const file = join(dir, "t");
      writeFileSync(file, "1.2.3.4 old\n");
      const past = new Date("2020-01-01T00:00:00Z");
      utimesSync(file, past, past);
      const { logs } = await logged(async () => {
        const d1 = await openDict(`cidr:${file}`, false, 0);
        expect(await dictGet(d1, "1.2.3.4", 0)).toMatchObject({ status: Status.OK, value: "old" });
        expect(d1.table?.changed?.()).toBe(false);
        writeFileSync(file, "1.2.3.4 new value\n");
        expect(d1.table?.changed?.()).toBe(true);
        // The dict layer probes a table at most once a second; this is its first probe.
        const d2 = await openDict(`cidr:${file}`, false, 0);
        expect(d2).not.toBe(d1);
        expect(await dictGet(d2, "1.2.3.4", 0)).toMatchObject({ status: Status.OK, value: "new value" });
        // A file that disappears keeps the loaded rules.
        rmSync(file);
        expect(d2.table?.changed?.()).toBe(false);
        await closeAllDicts();
      });
      expect(logs).toEqual([`table cidr:${file}: has changed -- reopening`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("sequence and update are refused with a status and a warning by the dict layer", async () => {
    const { logs } = await logged(async () => {
      const d = await openDict("cidr:{ {1.2.3.4 x} }", false, 0);
      const { dictSeq } = await import("../../src/tables/dict");
      expect((await dictSeq(d, 0, 0)).status).toBe(Status.CONFIG);
      await closeAllDicts();
    });
    expect(logs).toEqual(["warning: table cidr:{ {1.2.3.4 x} }: sequence operation is not supported"]);
  });
});

// ---------------------------------------------------------------- the built executable

/** Run a golden case against dist/proxymap started like master would (runpm.pl). */
async function runBinary(c: Case, program: string): Promise<string> {
  const scratch = makeScratch(c);
  const cfDir = join(scratch.dir, "etc");
  mkdirSync(cfDir);
  const tables = [...new Set(c.requests.map((r) => scratch.expand(r.table)))];
  const cf =
    `compatibility_level = 3.6\nsmtputf8_enable = ${c.utf8 ? "yes" : "no"}\n` +
    `${c.writer ? "proxy_write_maps" : "proxy_read_maps"} = ${tables.map((t) => "proxy:" + t).join(" ")}\n`;
  writeFileSync(join(cfDir, "main.cf"), Buffer.from(cf, "latin1"));
  const past = new Date("2020-01-01T00:00:00Z");
  utimesSync(join(cfDir, "main.cf"), past, past);
  // Log lines go to a file: each is written (writeSync) before the reply
  // that follows it, so reading the file after a reply is deterministic.
  const logPath = join(scratch.dir, "stderr.log");
  closeSync(openSync(logPath, "w"));
  const sock = join(scratch.dir, "pm.sock");
  const args = ["perl", join(import.meta.dir, "../golden/lib/runpm.pl"), sock, program, "-t", "unix", "-V"];
  if (c.writer) args.push("-n", "proxywrite");
  const proc = Bun.spawn(args, {
    env: { MAIL_CONFIG: cfDir, PATH: process.env.PATH ?? "/usr/bin:/bin", NORANDOMIZE: "1" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: Bun.file(logPath),
  });
  let seen = 0;
  const newLogs = async (): Promise<string[]> => {
    const all = Buffer.from(await Bun.file(logPath).arrayBuffer()).toString("latin1");
    const fresh = all.slice(seen);
    seen = all.length;
    return fresh
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => scratch.unexpand(l.replace(/^postfix\/proxymap(\[\d+\])?: /, "")));
  };
  try {
    await (proc.stdout as ReadableStream<Uint8Array>).getReader().read();
    const client = await WireClient.connect(sock);
    const steps: StepOutput[] = [];
    try {
      for (const r of c.requests) {
        const rest: Array<[string, string]> = [];
        if (r.op === "lookup" || r.op === "delete") rest.push(["key", r.key]);
        if (r.op === "update") rest.push(["key", r.key], ["value", r.value]);
        if (r.op === "sequence") rest.push(["function", String(r.fn)]);
        await client.send(encodeRequest(r.op, scratch.expand(r.table), r.flags >>> 0, rest));
        const reply = await client.readReply(10_000);
        if (reply.kind !== "reply") throw new Error(`no reply to ${echo(r)} (${reply.kind})`);
        steps.push({ logs: await newLogs(), reply: reply.attrs.map(([n, v]) => [n, scratch.unexpand(v)]) });
      }
    } finally {
      client.close();
    }
    return formatSteps(c, steps);
  } finally {
    proc.stdin.end();
    await proc.exited;
    scratch.remove();
  }
}

describe("dist/proxymap serves cidr, regexp and pcre (golden cases, the FFI libraries in the compiled binary)", () => {
  const cases = ["cidr", "regexp", "pcre"].flatMap((t) => loadCases(t));
  test("the corpus has cases of the three types", () => {
    expect(new Set(cases.map((c) => c.type))).toEqual(new Set(["cidr", "regexp", "pcre"]));
  });
  for (const c of cases) {
    test(`${c.type}/${c.name}`, async () => {
      requireCommand("perl", "apt-get install perl-base");
      const program = requireOurBinary();
      const ref = readRef(c);
      if (ref === undefined) throw new Error(`test/golden/${c.type}/${c.name}.ref is missing: run bun test/golden/generate.ts ${c.type}/${c.name}`);
      expect(await runBinary(c, program)).toBe(withoutReference(ref));
    });
  }
});
