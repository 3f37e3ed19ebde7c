/**
 * pgsql.test.ts - the differential test of pgsql tables: the same requests
 * go to the system's C proxymap (Debian's postfix-pgsql) and to ours, each
 * run by a private Postfix master, against the same databases of the
 * machine's PostgreSQL (UTF8 and LATIN1); replies must be equal byte for
 * byte.
 *
 * Corpus: test/diff/pgsql-corpus.ts (seeded: PG_SEED, PG_COUNT random cases
 * on top of the systematic ones). Played by runner.ts: one proxymap process
 * per side (maxproc 1), cases in the same order.
 *
 * Not compared, deliberate differences: a `sequence` on a pgsql table (the
 * reference exits with "sequence operation is not supported"; ours
 * answers), sent last; rounds that are not exactly one attribute list
 * (ours must stay up and in step). Also checked: every kind of warning the
 * reference logs, ours logs with the same wording.
 *
 * PG_AGAINST=c runs the C binary on both sides (self-check of the harness).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";
import { parseList } from "../helpers/wire";
import { singleLists, type Case } from "./corpus";
import { generatePgsqlCorpus, makePgsqlTables, PG_ROWS, writeCorpusFiles, type PgsqlTables } from "./pgsql-corpus";
import { answeredEveryRound, describeSide, runAll, runCase, splitLists, type CaseResult, warningTemplate } from "./runner";

const AGAINST = process.env.PG_AGAINST === "c" ? "c" : "ours";
const SEED = Number(process.env.PG_SEED ?? 20261204);
const COUNT = Number(process.env.PG_COUNT ?? 520);
const ROUND_MS = 150;
const QUIET_MS = 200;

let utf8db: TestDatabase;
let latin1db: TestDatabase;
let tables: PgsqlTables;
let ref: PostfixInstance | undefined;
let sut: PostfixInstance | undefined;
let cases: Case[] = [];
let refRes = new Map<number, CaseResult>();
let sutRes = new Map<number, CaseResult>();
let refLog = "";
let sutLog = "";

const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");
type List = [string, string][];

function fill(db: TestDatabase): void {
  const latin1 = db.encoding === "LATIN1";
  const lit = (v: string | null) => (v === null ? "NULL" : `'${v.replaceAll("'", "''")}'`);
  const ok = (s: string | null) => s === null || [...s].every((c) => c.codePointAt(0)! <= 0xff);
  const rows = PG_ROWS.filter((r) => !latin1 || r.every(ok)).map(([k, v, v2]) => `(${lit(k)}, ${lit(v)}, ${lit(v2)})`);
  db.sql(u8(`CREATE TABLE t (k text, v text, v2 text);\nINSERT INTO t VALUES ${rows.join(",\n")};\n`));
}

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** As differential.test.ts: a first differing reply that depends on which case opened a shared instance first. */
function historyDependent(c: Case, i: number, a: List | undefined, b: List | undefined): string | undefined {
  if (!a || !b) return undefined;
  const req = c.rounds[i]?.bytes.toString("latin1") ?? "";
  const names = (l: List) => l.map((x) => x[0]).join();
  if (names(a) === "status,flags" && names(b) === names(a) && a[0][1] === b[0][1]) return "open flags of an instance first opened by another case";
  const key = /\0key\0([^\0]*)\0/.exec(req)?.[1];
  if (req.startsWith("request\0lookup\0") && key !== undefined && !isUtf8(Buffer.from(key, "latin1"))) return "UTF-8 check of an instance first opened by another case";
  return undefined;
}

function serviceLines(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    const m = /^\S+\s+\d+\s+[\d:]+\s+\S+\s+postfix\/(proxymap|proxywrite)\[\d+\]: (.*)$/.exec(line);
    if (m) out.push(`${m[1]}: ${m[2].replaceAll(tables.dir, "TABLES").slice(0, 300)}`);
  }
  return out;
}

function report(c: Case, a: CaseResult | undefined, b: CaseResult | undefined): string {
  return [`case ${c.id} [${c.service}] ${c.label}${c.kill ? ` (reference dies: ${c.kill})` : ""}`, describeSide("C  ", c, a), describeSide(AGAINST === "c" ? "C2 " : "our", c, b)].join("\n");
}

describe(`pgsql differential: C proxymap vs ${AGAINST === "c" ? "C proxymap (self-check)" : "dist/proxymap"}`, () => {
  beforeAll(async () => {
    requirePostfix();
    if (!existsSync("/usr/lib/postfix/postfix-pgsql.so")) throw new Error("Postfix PostgreSQL support is missing: apt-get install postfix-pgsql");
    if (AGAINST === "ours") requireOurBinary();
    await requirePostgres();
    utf8db = createTestDatabase("wireu8", { encoding: "UTF8" });
    latin1db = createTestDatabase("wirel1", { encoding: "LATIN1" });
    fill(utf8db);
    fill(latin1db);
    tables = makePgsqlTables(mkdtempSync(join(tmpdir(), "pfx-pg-tables-")), utf8db, latin1db);
    writeCorpusFiles(tables);
    const common = { mainCf: { proxy_read_maps: tables.readMaps, proxy_write_maps: tables.writeMaps, max_use: "100000" }, proxymapMaxproc: "1" };
    [ref, sut] = await Promise.all([PostfixInstance.start({ impl: "c", label: "pg-ref", ...common }), PostfixInstance.start({ impl: AGAINST, label: `pg-${AGAINST}`, ...common })]);
    for (const inst of [ref, sut]) {
      const probe = await runCase(inst.socket("proxymap"), { id: -1, service: "proxymap", label: "probe", rounds: [] }, { roundMs: ROUND_MS, quietMs: QUIET_MS, connectMs: 10_000 });
      if (!probe.greeting) throw new Error(`${inst.base}: the proxymap service does not answer (${probe.error}):\n${inst.log().slice(-2000)}`);
    }
    cases = generatePgsqlCorpus(tables, { seed: SEED, count: COUNT });
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    const framed = cases.filter((c) => !c.kill && !singleLists(c));
    const deaths = cases.filter((c) => c.kill);
    const run = (inst: PostfixInstance, list: Case[], quietMs: number) => runAll(list, { roundMs: ROUND_MS, quietMs, connectMs: 15_000 }, (c) => inst.socket(c.service));
    const t0 = Date.now();
    const [a, b] = await Promise.all([run(ref, compared, QUIET_MS), run(sut, compared, QUIET_MS)]);
    await Bun.sleep(400); // postlogd writes asynchronously
    refLog = ref.log();
    sutLog = sut.log();
    const [fa, fb] = await Promise.all([run(ref, framed, 80), run(sut, framed, 80)]);
    const [ka, kb] = await Promise.all([run(ref, deaths, 3000), run(sut, deaths, 3000)]);
    refRes = new Map([...a, ...fa, ...ka]);
    sutRes = new Map([...b, ...fb, ...kb]);
    const rounds = compared.reduce((s, c) => s + c.rounds.length, 0);
    console.log(`pgsql: ${cases.length} cases, ${rounds} compared requests in ${compared.length} cases (${framed.length} framing, ${deaths.length} reference-death cases), seed ${SEED}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 600_000);

  afterAll(() => {
    ref?.stop();
    sut?.stop();
    utf8db?.drop();
    latin1db?.drop();
    if (tables) rmSync(tables.dir, { recursive: true, force: true });
  });

  test("the corpus has at least 1,500 compared requests", () => {
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    expect(compared.reduce((s, c) => s + c.rounds.length, 0)).toBeGreaterThanOrEqual(1500);
  });

  test("replies are byte-identical", () => {
    const enc = (l: List) => l.map(([n, v]) => `${n}\0${v}\0`).join("") + "\0";
    const history: string[] = [];
    const bad: string[] = [];
    let match = 0;
    let total = 0;
    for (const c of cases) {
      if (c.kill || !singleLists(c)) continue;
      total++;
      const a = refRes.get(c.id)!;
      const b = sutRes.get(c.id)!;
      const la = splitLists(a.stream);
      const lb = splitLists(b.stream);
      if (a.stream === b.stream && a.closed === b.closed && a.inStep === b.inStep) {
        match++;
        continue;
      }
      let i = 0;
      while (i < la.lists.length && i < lb.lists.length && enc(la.lists[i]) === enc(lb.lists[i])) i++;
      const why = historyDependent(c, i, la.lists[i], lb.lists[i]);
      if (why) history.push(`case ${c.id}: ${why}`);
      else bad.push(report(c, a, b));
    }
    console.log(`pgsql: ${match}/${total} cases byte-identical; ${history.length} differ only by process history`);
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 10).join("\n\n")}`);
    expect(history.length).toBeLessThanOrEqual(Math.ceil(total * 0.01));
    expect(bad.length).toBe(0);
  });

  test("rounds that are not exactly one list: ours stays up and in step (not compared)", () => {
    const bad = cases.filter((c) => !c.kill && !singleLists(c) && AGAINST === "ours" && (sutRes.get(c.id)!.closed || !sutRes.get(c.id)!.inStep)).map((c) => report(c, refRes.get(c.id), sutRes.get(c.id)));
    expect(bad.slice(0, 5).join("\n\n")).toBe("");
  });

  test("where the reference dies (sequence), ours answers with a status and stays up", () => {
    const deadly = cases.filter((c) => c.kill);
    expect(deadly.length).toBeGreaterThan(0);
    let died = 0;
    const bad: string[] = [];
    for (const c of deadly) {
      if (refRes.get(c.id)!.closed) died++;
      if (AGAINST === "ours" && !answeredEveryRound(c, sutRes.get(c.id)!)) bad.push(report(c, refRes.get(c.id), sutRes.get(c.id)));
    }
    expect(died).toBe(deadly.length);
    expect(bad.join("\n\n")).toBe("");
  });

  test("every kind of warning the reference logs, ours logs with the same wording", () => {
    const refLines = serviceLines(refLog);
    const ourLines = serviceLines(sutLog);
    const ourKinds = new Set(ourLines.map(warningTemplate));
    const excused = (k: string) => k.includes("non-UTF-N key");
    const missing = [...new Set(refLines.filter((l) => l.length < 300).map(warningTemplate))].filter((k) => !ourKinds.has(k) && !excused(k));
    const ourSet = new Set(ourLines);
    const onlyRef = [...new Set(refLines)].filter((l) => !ourSet.has(l));
    console.log(`log lines: reference ${refLines.length}, ours ${ourLines.length}; ${onlyRef.length} distinct reference lines ours never logs${onlyRef.length ? `:\n  ${onlyRef.slice(0, 10).join("\n  ")}` : ""}`);
    expect(missing).toEqual([]);
  });

  test("the corpus reached each table (a request per table answered OK by both)", () => {
    const okTables = new Set<string>();
    for (const c of cases) {
      if (c.kill || !singleLists(c)) continue;
      const lists = splitLists(refRes.get(c.id)!.stream).lists;
      c.rounds.forEach((r, i) => {
        const t = parseList(r.bytes)?.attrs.find((x) => x[0] === "table")?.[1];
        if (t && lists[i]?.[0]?.[1] === "0") okTables.add(t);
      });
    }
    for (const name of ["basic", "multi", "ud", "limit", "domain", "latin1", "echo", "legacy"]) expect([...okTables].some((t) => t.endsWith(`/${name}.cf`))).toBe(true);
  });

  test("3.7's LATIN1 client encoding at work: a Latin-1 key finds the row in both databases", () => {
    const answer = (file: string, key: string) => {
      for (const c of cases) {
        if (!c.label.startsWith("plain ") || !c.label.endsWith(`/${file}`)) continue;
        const i = c.rounds.findIndex((r) => parseList(r.bytes)?.attrs.find((x) => x[0] === "key")?.[1] === key);
        if (i >= 0) return splitLists(refRes.get(c.id)!.stream).lists[i];
      }
      return undefined;
    };
    expect(answer("basic.cf", "caf\xe9")).toEqual([["status", "0"], ["value", "utf8-e"]]);
    expect(answer("latin1.cf", "caf\xe9")).toEqual([["status", "0"], ["value", "utf8-e"]]);
    expect(answer("latin1.cf", "na\xefve")).toEqual([["status", "0"], ["value", "\xdcn\xefc\xf6d\xe9"]]);
    expect(answer("basic.cf", u8("café"))).toEqual([["status", "1"], ["value", ""]]);
  });
});
