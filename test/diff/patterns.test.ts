/**
 * patterns.test.ts - the differential test of issue 6's table types: cidr,
 * regexp, pcre, unionmap, pipemap, environ, randmap, internal, socketmap,
 * tcp. The same requests go to the system's C proxymap and to ours, each
 * run by a private Postfix master; replies must be equal byte for byte.
 *
 * Corpus: test/diff/patterns-corpus.ts (seeded; PAT_SEED, PAT_COUNT random
 * cases on top of the set-up and systematic ones); the socketmap and tcp
 * servers run in this process, shared by both sides. Played by runner.ts as
 * the foundation's differential test does (differential.test.ts): one
 * proxymap process per side (maxproc 1), cases in the same order, so what
 * depends on a process's history (the first open of a shared instance
 * decides its NO_REGSUB, UTF-8 check and open flags; internal and environ
 * tables keep what proxywrite wrote) has the same history on both sides.
 *
 * Not compared, listed as deliberate differences:
 *  - cases on which the reference process dies (sequence on every type of
 *    this issue but internal, delete on environ, an empty internal walk,
 *    OPEN_LOCK|LOCK): sent last; ours must answer every round with a status
 *    and stay up;
 *  - rounds that are not exactly one attribute list (the reference handles
 *    one request per read()): ours must stay up and in step.
 * A reply's request flag bits are history (masked); sequence hits are
 * compared as sets (the reference's walk order is seeded per process).
 *
 * PAT_AGAINST=c runs the C binary on both sides (self-check of the harness
 * and the corpus). PAT_REPORT=FILE writes every case with both transcripts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { parseList, show } from "../helpers/wire";
import { singleLists, type Case } from "./corpus";
import { generatePatternCorpus, makePatternTables, startPatternServers, writePatternFiles, type PatternServers, type PatternTables } from "./patterns-corpus";
import {
  answeredEveryRound, caseReport, enc, isUtf8, normalStream, requireAnswering, roundType, runAll, serviceLines, splitLists, stripProbes, unorder, warningTemplate, withoutHistory,
  type CaseResult, type List,
} from "./runner";

const AGAINST = process.env.PAT_AGAINST === "c" ? "c" : "ours";
const SEED = Number(process.env.PAT_SEED ?? 20261126);
const COUNT = Number(process.env.PAT_COUNT ?? 700);
const ROUND_MS = Number(process.env.PAT_ROUND_MS ?? 30);
const QUIET_MS = Number(process.env.PAT_QUIET_MS ?? 150);

let tables: PatternTables;
let servers: PatternServers | undefined;
let ref: PostfixInstance | undefined;
let sut: PostfixInstance | undefined;
let cases: Case[] = [];
let refRes = new Map<number, CaseResult>();
let sutRes = new Map<number, CaseResult>();
let refLog = "";
let sutLog = "";

const normal = (r: CaseResult) => normalStream(r, true);

/** As differential.test.ts: why a first differing reply may depend on earlier cases, else undefined. */
function historyDependent(c: Case, i: number, a: List | undefined, b: List | undefined): string | undefined {
  if (!a || !b || a[0]?.[1] === undefined) return undefined;
  const req = c.rounds[i]?.bytes.toString("latin1") ?? "";
  const names = (l: List) => l.map((x) => x[0]).join();
  if (names(a) === "status,flags" && names(b) === names(a) && a[0][1] === b[0][1]) return "open flags of an instance first opened by another case";
  const key = /\0key\0([^\0]*)\0/.exec(req)?.[1];
  if (req.startsWith("request\0lookup\0") && key !== undefined && !isUtf8(Buffer.from(key, "latin1"))) return "UTF-8 check of an instance first opened by another case";
  return undefined;
}

const serviceLinesOf = (log: string) => serviceLines(log, (l) => l.replaceAll(tables.dir, "TABLES").replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT"));

const report = (c: Case, a: CaseResult | undefined, b: CaseResult | undefined) =>
  caseReport(c, a, b, { a: "C  ", b: AGAINST === "c" ? "C2 " : "our" });

describe(`pattern tables differential: C proxymap vs ${AGAINST === "c" ? "C proxymap (self-check)" : "dist/proxymap"}`, () => {
  beforeAll(async () => {
    requirePostfix();
    requireFile("/usr/lib/postfix/postfix-pcre.so", "apt-get install postfix-pcre (the reference's pcre tables)");
    if (AGAINST === "ours") requireOurBinary();
    const dir = mkdtempSync(join(tmpdir(), "pfx-pat-tables-"));
    servers = await startPatternServers(dir);
    tables = makePatternTables(dir, servers);
    writePatternFiles(tables);
    const common = {
      mainCf: { proxy_read_maps: tables.readMaps, proxy_write_maps: tables.writeMaps, max_use: "100000" },
      proxymapMaxproc: "1",
    };
    [ref, sut] = await Promise.all([
      PostfixInstance.start({ impl: "c", label: "pat-ref", ...common }),
      PostfixInstance.start({ impl: AGAINST, label: `pat-${AGAINST}`, ...common }),
    ]);
    // A service that cannot start (say, a proxy_read_maps that kills it) would make every case
    // wait for its greeting: fail at once instead.
    for (const inst of [ref, sut]) await requireAnswering(inst.socket("proxymap"), () => inst.log());
    cases = generatePatternCorpus(tables, { seed: SEED, count: COUNT });
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    const framed = cases.filter((c) => !c.kill && !singleLists(c));
    const deaths = cases.filter((c) => c.kill);
    const run = (inst: PostfixInstance, list: Case[], quietMs: number) =>
      runAll(list, { roundMs: ROUND_MS, quietMs, connectMs: 15_000 }, (c) => inst.socket(c.service));
    const t0 = Date.now();
    const [a, b] = await Promise.all([run(ref, compared, QUIET_MS), run(sut, compared, QUIET_MS)]);
    await Bun.sleep(400); // postlogd writes asynchronously
    refLog = ref.log();
    sutLog = sut.log();
    const t1 = Date.now();
    const [fa, fb] = await Promise.all([run(ref, framed, 80), run(sut, framed, 80)]);
    const t2 = Date.now();
    const [ka, kb] = await Promise.all([run(ref, deaths, 3000), run(sut, deaths, 3000)]);
    refRes = new Map([...a, ...fa, ...ka]);
    sutRes = new Map([...b, ...fb, ...kb]);
    const rounds = compared.reduce((s, c) => s + c.rounds.length, 0);
    console.log(`patterns: ${cases.length} cases, ${rounds} compared requests in ${compared.length} cases (${framed.length} framing cases, ${deaths.length} reference-death cases), seed ${SEED}; ${((t1 - t0) / 1000).toFixed(1)} s compared + ${((t2 - t1) / 1000).toFixed(1)} s framing + ${((Date.now() - t2) / 1000).toFixed(1)} s deaths`);
    if (process.env.PAT_REPORT) writeFileSync(process.env.PAT_REPORT, cases.map((c) => report(c, refRes.get(c.id), sutRes.get(c.id))).join("\n\n") + "\n");
  }, 600_000);

  afterAll(async () => {
    if (process.env.PAT_KEEP) {
      console.log(`kept: ${ref?.base} ${sut?.base} ${tables?.dir}`);
      return;
    }
    ref?.stop();
    sut?.stop();
    await servers?.close();
    if (tables) rmSync(tables.dir, { recursive: true, force: true });
  });

  test("the corpus has at least 3,000 compared requests and covers every type", () => {
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    expect(compared.reduce((s, c) => s + c.rounds.length, 0)).toBeGreaterThanOrEqual(3000);
    const seen = new Set(compared.flatMap((c) => c.rounds.map((r) => roundType(r.bytes))));
    for (const t of ["cidr", "regexp", "pcre", "unionmap", "pipemap", "environ", "randmap", "internal", "socketmap", "tcp"]) expect(seen.has(t)).toBe(true);
  });

  test("the reference survives every case not listed as deadly (else the list in patterns-corpus.ts is wrong)", () => {
    const bad = cases.filter((c) => !c.kill && singleLists(c) && refRes.get(c.id)!.closed).map((c) => report(c, refRes.get(c.id), sutRes.get(c.id)));
    expect(bad.slice(0, 10).join("\n\n")).toBe("");
  });

  test("replies are byte-identical (per type: requests matched)", () => {
    // Pairs a sequence may return: those the reference's walks returned, and every pair the corpus wrote
    // (a walk that starts mid-way shows the first pair of a hash order that differs per process).
    const known = new Set<string>();
    for (const c of cases) if (!c.kill && singleLists(c)) for (const p of normal(refRes.get(c.id)!).pairs) known.add(p);
    for (const c of cases)
      for (const r of c.rounds) {
        const a = parseList(r.bytes)?.attrs;
        const get = (n: string) => a?.find((x) => x[0] === n)?.[1];
        if (get("request") === "update" && get("key") !== undefined) for (const k of [get("key")!, get("key")!.toLowerCase()]) known.add(`${k}\0${get("value") ?? ""}`);
      }
    const perType = new Map<string, { match: number; total: number }>();
    const history: string[] = [];
    const bad: string[] = [];
    const kinds = new Map<string, number[]>();
    let match = 0;
    let total = 0;
    const sig = (l: List | undefined) => (l ? l.map(([n, v]) => (n === "status" || n === "flags" ? `${n}=${v}` : n)).join(",") : "(none)");
    for (const c of cases) {
      if (c.kill || !singleLists(c)) continue;
      const a = refRes.get(c.id)!;
      const b = sutRes.get(c.id)!;
      const na = normal(a);
      const nb = normal(b);
      total++;
      // Per request: what came back after each round (history bits masked, walk pairs apart).
      const roundText = (r: CaseResult, i: number) => splitLists(stripProbes(r.rounds[i] ?? "")).lists.map((l) => enc(withoutHistory(unorder(l, [])))).join("");
      c.rounds.forEach((r, i) => {
        const t = roundType(r.bytes);
        const e = perType.get(t) ?? { match: 0, total: 0 };
        e.total++;
        if (roundText(a, i) === roundText(b, i)) e.match++;
        perType.set(t, e);
      });
      // A walk to its end (last reply NOKEY) must see the same set; a partial one, pairs the reference has.
      const whole = c.label.startsWith("walk") && na.lists.at(-1)?.[0]?.[1] === "1";
      const pairsOk = whole ? [...na.pairs].sort().join("\n") === [...nb.pairs].sort().join("\n") : nb.pairs.every((p) => known.has(p));
      const same = na.lists.map(enc).join("") + na.tail === nb.lists.map(enc).join("") + nb.tail && a.closed === b.closed && a.inStep === b.inStep && pairsOk;
      if (same) {
        match++;
        continue;
      }
      const n = Math.max(na.lists.length, nb.lists.length);
      let i = 0;
      while (i < n && na.lists[i] && nb.lists[i] && enc(na.lists[i]) === enc(nb.lists[i])) i++;
      const why = historyDependent(c, i, na.lists[i], nb.lists[i]);
      if (why) {
        history.push(`case ${c.id}: ${why}`);
        continue;
      }
      bad.push(report(c, a, b));
      const req = c.rounds[i] ? roundType(c.rounds[i].bytes) : "-";
      const k = i < n ? `${req}: C ${sig(na.lists[i])}  <->  ours ${sig(nb.lists[i])}` : !pairsOk ? "sequence hits differ" : `end: C closed=${a.closed} inStep=${a.inStep}, ours closed=${b.closed} inStep=${b.inStep}`;
      kinds.set(k, [...(kinds.get(k) ?? []), c.id]);
    }
    const rows = [...perType].sort((x, y) => x[0].localeCompare(y[0])).map(([t, e]) => `  ${t.padEnd(10)} ${e.match}/${e.total}`);
    console.log(`patterns: ${match}/${total} cases byte-identical; ${history.length} differ only by process history\nrequests with an identical reply, per type:\n${rows.join("\n")}`);
    if (history.length) console.log(history.join("\n"));
    if (kinds.size) {
      const k = [...kinds].sort((x, y) => y[1].length - x[1].length).slice(0, 40);
      console.log(`mismatch kinds (first differing reply; count; example cases):\n${k.map(([s, ids]) => `  ${String(ids.length).padStart(4)}  ${s}  [${ids.slice(0, 5).join(" ")}]`).join("\n")}`);
    }
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 12).join("\n\n")}`);
    expect(history.length).toBeLessThanOrEqual(Math.ceil(total * 0.005));
    expect(bad.length).toBe(0);
  });

  test("rounds that are not exactly one list: ours stays up and in step (not compared)", () => {
    const framed = cases.filter((c) => !c.kill && !singleLists(c));
    const bad: string[] = [];
    for (const c of framed) {
      const b = sutRes.get(c.id)!;
      if (AGAINST === "ours" && (b.closed || !b.inStep)) bad.push(report(c, refRes.get(c.id), b));
    }
    console.log(`deliberate differences: ${framed.length} cases with rounds that are not one list`);
    expect(bad.slice(0, 10).join("\n\n")).toBe("");
  });

  test("where the reference dies, ours answers with a status and stays up", () => {
    const deadly = cases.filter((c) => c.kill);
    const lines: string[] = [];
    const bad: string[] = [];
    let refDied = 0;
    for (const c of deadly) {
      const a = refRes.get(c.id)!;
      const b = sutRes.get(c.id)!;
      if (a.closed) refDied++;
      const { lists } = splitLists(b.stream);
      lines.push(`  ${a.closed ? "reference died" : "reference survived"}: [${c.service}] ${c.label} -- ${c.kill}${AGAINST === "ours" ? `; ours: ${lists.map((l) => show(enc(l), 120)).join(" ")}` : ""}`);
      if (AGAINST === "c") continue;
      if (!answeredEveryRound(c, b)) bad.push(report(c, a, b));
    }
    console.log(`deliberate differences: ${deadly.length} cases where the reference dies (${refDied} deaths seen):\n${lines.join("\n")}`);
    expect(refDied).toBe(deadly.length);
    expect(bad.join("\n\n")).toBe("");
  });

  test("every kind of warning the reference logs, ours logs with the same wording", () => {
    const template = warningTemplate;
    const whole = (l: string) => l.length < 300;
    const refLines = serviceLinesOf(refLog);
    const ourLines = serviceLinesOf(sutLog);
    const refKinds = new Set(refLines.filter(whole).map(template));
    const ourKinds = new Set(ourLines.map(template));
    // History-dependent (as in differential.test.ts): the UTF-8 check of a shared instance is set by
    // whichever case opened it first.
    const excused = (k: string) => k.includes("non-UTF-N key");
    const missing = [...refKinds].filter((k) => !ourKinds.has(k) && !excused(k));
    // Exact lines (timestamps and pids gone) for reading: the ones only one side logged.
    const count = new Map<string, number>();
    for (const l of refLines) count.set(l, (count.get(l) ?? 0) + 1);
    for (const l of ourLines) count.set(l, (count.get(l) ?? 0) - 1);
    const onlyRef = [...count].filter(([, v]) => v > 0).map(([k, v]) => `${v}x ${k}`);
    const onlyOurs = [...count].filter(([, v]) => v < 0).map(([k, v]) => `${-v}x ${k}`);
    console.log(`log lines: reference ${refLines.length}, ours ${ourLines.length}; kinds: reference ${refKinds.size}, ours ${ourKinds.size}; ${onlyRef.length} lines only in the reference, ${onlyOurs.length} only in ours`);
    if (missing.length) console.log(`kinds only the reference logs:\n  ${missing.join("\n  ")}\nexamples only in the reference:\n  ${onlyRef.slice(0, 30).join("\n  ")}\nexamples only in ours:\n  ${onlyOurs.slice(0, 30).join("\n  ")}`);
    expect(missing).toEqual([]);
  });

  /**
   * A table file with 30 bad lines logs 30 warnings at each open, in one
   * burst; the reference blocks until postlogd takes each line, so every
   * one arrives. Ours must not lose any either.
   */
  test("a burst of warnings (30 bad lines in one table) reaches the log whole", () => {
    const count = (log: string) => serviceLinesOf(log).filter((l) => l.includes("burst.regexp, line")).length;
    console.log(`burst.regexp warnings: reference ${count(refLog)}, ours ${count(sutLog)}`);
    expect(count(refLog)).toBeGreaterThanOrEqual(30);
    expect(count(sutLog)).toBe(count(refLog));
  });

  /**
   * Stricter than the kinds: a line ours logs (timestamps, pids, table
   * directory and ports taken out) must be one the reference logs too. Lines
   * only the reference has are printed, not failed: ours' postlog client
   * drops lines that cannot be sent without blocking (a table with many bad
   * lines is a burst larger than the kernel's datagram queue), see the report.
   * Excused: non-UTF-8 key lines (history), and an "error:" where the
   * reference later dies with "fatal:" on the same text.
   */
  test("ours logs no line the reference never logs", () => {
    const refAll = serviceLinesOf(ref!.log());
    const refSet = new Set(serviceLinesOf(refLog));
    const fatal = new Set(refAll.filter((l) => l.includes(": fatal: ")).map((l) => l.replace(/^[a-z]+: fatal: /, "")));
    const excused = (l: string) => l.includes("non-UTF-8 key") || fatal.has(l.replace(/^[a-z]+: error: /, ""));
    const extra = new Map<string, number>();
    for (const l of serviceLinesOf(sutLog)) if (!refSet.has(l) && !excused(l)) extra.set(l, (extra.get(l) ?? 0) + 1);
    const lost = new Map<string, number>();
    const ours = new Set(serviceLinesOf(sutLog));
    for (const l of serviceLinesOf(refLog)) if (!ours.has(l)) lost.set(l, (lost.get(l) ?? 0) + 1);
    console.log(`log lines ours never logs: ${lost.size}${lost.size ? `\n  ${[...lost].slice(0, 10).map(([l, n]) => `${n}x ${l}`).join("\n  ")}` : ""}`);
    expect([...extra].map(([l, n]) => `${n}x ${l}`).slice(0, 30)).toEqual([]);
  });
});
