/**
 * postfix312.test.ts - ours against a real Postfix 3.12: each installed in a
 * private instance of the 3.12 oracle tree (master, postlogd and every other
 * daemon from that tree; test/helpers/oracle312.ts), the 3.12 C proxymap in
 * one, dist/proxymap in the other. Both get the same 3.11-shaped requests;
 * replies must be equal byte for byte, and so must the proxymap log lines.
 *
 * Corpus: corpus312.ts (seeded; P312_SEED, P312_COUNT random cases on top of
 * the systematic ones). First every approved table is opened with every
 * instance flags value of the corpus, on both sides; the flags the 3.12
 * server answered are what the later requests send as request flags (a
 * client sends the flags its open got back). One proxymap process per side
 * (maxproc 1), the cases in the same order: the 3.12 server keeps table
 * instances (per name and instance flags) and sequence cursors across
 * clients, so both sides see the same history.
 *
 * Compared: every reply; sequence hits as sets (the C server walks its
 * in-memory tables in a per-process random order). From 3.11 on a reply's
 * flags are the request's own (the 3.12 server sets a table's flags to the
 * request's flags for each operation), so nothing is masked.
 *
 * Then the concurrent requests of issue 11 (defect 2): a unionmap whose
 * socketmap member answers 50 ms late; 100 overlapping pairs of lookups
 * on two connections, request flags 1589329 key `a` and 524353 key `b`, the
 * same instance flags; each reply must be what 3.12 answers that request
 * alone, and the table's open flags must be what they were.
 *
 * P312_AGAINST=c runs the 3.12 C proxymap on both sides (harness and corpus
 * self-check: everything must match). P312_REPORT=FILE writes every case.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ORACLE312_TREE, requireOracle312 } from "../helpers/oracle312";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary } from "../helpers/require";
import { SocketmapServer } from "../helpers/socketmap-server";
import { TcpTableServer } from "../helpers/tcp-server";
import { WireClient, encodeAttrs, parseList } from "../helpers/wire";
import type { Case } from "./corpus";
import { SERVER312_DATA, clientKey, deadlyCases312, generateCorpus312, makeTables312, writeFiles312, type Servers312, type Tables312 } from "./corpus312";
import { PROBE_311, answeredEveryRound, caseReport, enc, multisetDiff, normalStream, requireAnswering, roundType, runAll, serviceLines, splitLists, type CaseResult, type List } from "./runner";

const AGAINST = process.env.P312_AGAINST === "c" ? "c" : "ours";
const SEED = Number(process.env.P312_SEED ?? 20260821);
const COUNT = Number(process.env.P312_COUNT ?? 900);
const ROUND_MS = 30;
const QUIET_MS = 150;
const PAIRS = Number(process.env.P312_PAIRS ?? 100);

interface Side {
  inst: PostfixInstance;
  tables: Tables312;
  cases: Case[];
  res: Map<number, CaseResult>;
  log: string;
  /** The cases the 3.12 C process dies on, and their results. */
  deaths: Case[];
  deathRes: Map<number, CaseResult>;
}

let servers: { fast: SocketmapServer; slow: SocketmapServer; tcp: TcpTableServer } | undefined;
let serverDir = "";
let ref: Side | undefined;
let sut: Side | undefined;

const runOpts = { roundMs: ROUND_MS, quietMs: QUIET_MS, connectMs: 15_000, probe: PROBE_311 };

/** Start one side: its table directory, its instance, its database files. */
async function startSide(label: string, impl: "c" | "ours", s: Servers312): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), `pfx-312-${label}-tables-`));
  const tables = makeTables312(dir, s);
  writeFiles312(tables);
  const inst = await PostfixInstance.start({
    impl,
    postfix: ORACLE312_TREE,
    label: `312-${label}`,
    mainCf: { proxy_read_maps: tables.readMaps, proxy_write_maps: tables.writeMaps, max_use: "100000", compatibility_level: "3.6" },
    proxymapMaxproc: "1",
  });
  for (const db of tables.databases) {
    const r = inst.run("postmap", [db]);
    if (r.code !== 0) throw new Error(`postmap ${db}: ${r.stderr}`);
  }
  // The write service (mail_owner) writes its own copies.
  const pf = PostfixInstance.postfixUser();
  for (const f of ["wdb.db", "wbt.db", "wlm.lmdb"]) chownSync(join(dir, f), pf.uid, pf.gid);
  return { inst, tables, cases: [], res: new Map(), log: "", deaths: [], deathRes: new Map() };
}

/** Learn the client's flags from one side's answers to the opening cases (0 and 1). */
function learnClientFlags(side: Side): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of side.cases.slice(0, 2)) {
    const r = side.res.get(c.id)!;
    c.rounds.forEach((round, i) => {
      const req = parseList(round.bytes)!.attrs;
      const table = req.find((a) => a[0] === "table")![1].replaceAll(side.tables.dir, "@");
      const reply = parseList(Buffer.from(r.rounds[i] ?? "", "latin1"))?.attrs;
      const flags = reply?.find((a) => a[0] === "flags")?.[1];
      if (reply?.[0]?.[1] === "0" && flags !== undefined) out.set(clientKey(table, Number(req.find((a) => a[0] === "instance_flags")![1])), Number(flags));
    });
  }
  return out;
}

const report = (c: Case) => caseReport(c, ref!.res.get(c.id), sut!.res.get(c.id), { a: "C  ", b: AGAINST === "c" ? "C2 " : "our" });

describe(`Postfix 3.12: the 3.12 C proxymap vs ${AGAINST === "c" ? "itself (self-check)" : "dist/proxymap"}, both in 3.12 instances`, () => {
  beforeAll(async () => {
    requireOracle312();
    if (AGAINST === "ours") requireOurBinary();
    serverDir = mkdtempSync(join(tmpdir(), "pfx-312-servers-"));
    const data = { fast: SERVER312_DATA, slow: SERVER312_DATA };
    const [fast, slow, tcp] = await Promise.all([
      SocketmapServer.start({ data, path: join(serverDir, "fast.sock") }),
      SocketmapServer.start({ data, path: join(serverDir, "slow.sock"), delayMs: 50 }),
      TcpTableServer.start({ data: SERVER312_DATA }),
    ]);
    servers = { fast, slow, tcp };
    // proxymap runs as mail_owner: it needs to reach the sockets.
    for (const f of ["fast.sock", "slow.sock"]) chmodSync(join(serverDir, f), 0o666);
    chmodSync(serverDir, 0o755);
    const s: Servers312 = { sockFast: fast.table("fast"), sockSlow: slow.table("slow"), tcp: tcp.table };
    [ref, sut] = await Promise.all([startSide("ref", "c", s), startSide(AGAINST, AGAINST, s)]);
    for (const side of [ref, sut]) for (const svc of ["proxymap", "proxywrite"]) await requireAnswering(side.inst.socket(svc), () => side.inst.log(), PROBE_311);

    // 1. The opening cases on both sides; 2. the client flags from the reference's answers;
    // 3. the whole corpus per side (same seed, same cases), the rest of it played.
    const t0 = Date.now();
    for (const side of [ref, sut]) side.cases = generateCorpus312(side.tables, { seed: SEED, count: 0, clientFlags: new Map() }).slice(0, 2);
    const play = (side: Side, list: Case[]) => runAll(list, runOpts, (c) => side.inst.socket(c.service));
    const [oa, ob] = await Promise.all([play(ref, ref.cases), play(sut, sut.cases)]);
    ref.res = oa;
    sut.res = ob;
    const clientFlags = learnClientFlags(ref);
    for (const side of [ref, sut]) side.cases = generateCorpus312(side.tables, { seed: SEED, count: COUNT, clientFlags });
    if (ref.cases.length !== sut.cases.length || ref.cases.some((c, i) => c.label.replaceAll(ref!.tables.dir, "@") !== sut!.cases[i].label.replaceAll(sut!.tables.dir, "@")))
      throw new Error("the two sides' corpora differ: corpus312.ts must not depend on the table directory");
    const [a, b] = await Promise.all([play(ref, ref.cases.slice(2)), play(sut, sut.cases.slice(2))]);
    for (const [k, v] of a) ref.res.set(k, v);
    for (const [k, v] of b) sut.res.set(k, v);
    await Bun.sleep(400); // postlogd writes asynchronously
    ref.log = ref.inst.log();
    sut.log = sut.inst.log();
    // Last, what kills the 3.12 C process (each death costs a restart of it).
    for (const side of [ref, sut]) side.deaths = deadlyCases312(side.tables, side.cases.length);
    const [da, db] = await Promise.all([runAll(ref.deaths, { ...runOpts, quietMs: 3000 }, (c) => ref!.inst.socket(c.service)), runAll(sut.deaths, { ...runOpts, quietMs: 3000 }, (c) => sut!.inst.socket(c.service))]);
    ref.deathRes = da;
    sut.deathRes = db;
    const rounds = ref.cases.reduce((n, c) => n + c.rounds.length, 0);
    console.log(`postfix312: ${ref.cases.length} cases, ${rounds} requests, seed ${SEED}, ${clientFlags.size} learned client flags; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (process.env.P312_REPORT) writeFileSync(process.env.P312_REPORT, ref.cases.map(report).join("\n\n") + "\n");
  }, 600_000);

  afterAll(async () => {
    if (process.env.P312_KEEP) return console.log(`kept: ${ref?.inst.base} ${sut?.inst.base} ${ref?.tables.dir} ${sut?.tables.dir}`);
    for (const side of [ref, sut]) {
      side?.inst.stop();
      if (side) rmSync(side.tables.dir, { recursive: true, force: true });
    }
    if (servers) await Promise.all([servers.fast.close(), servers.slow.close(), servers.tcp.close()]);
    if (serverDir) rmSync(serverDir, { recursive: true, force: true });
  });

  test("both sides run the 3.12 tree (master's own log line), and the corpus covers every table type", () => {
    for (const side of [ref!, sut!]) expect(side.log).toContain("daemon started -- version 3.12-20260821");
    const rounds = ref!.cases.reduce((n, c) => n + c.rounds.length, 0);
    expect(rounds).toBeGreaterThanOrEqual(3000);
    const seen = new Set(ref!.cases.flatMap((c) => c.rounds.map((r) => roundType(r.bytes))));
    for (const t of ["texthash", "inline", "static", "fail", "unix", "hash", "btree", "lmdb", "cidr", "regexp", "unionmap", "pipemap", "environ", "internal", "socketmap", "tcp"]) expect([t, seen.has(t)]).toEqual([t, true]);
  });

  test("the 3.12 reference survives every case (else corpus312.ts's taming is wrong)", () => {
    const bad = ref!.cases.filter((c) => ref!.res.get(c.id)!.closed || !ref!.res.get(c.id)!.inStep).map(report);
    expect(bad.slice(0, 5).join("\n\n")).toBe("");
  });

  test("replies are byte-identical", () => {
    // Pairs a partial walk may show: those the reference's walks returned, and every pair the corpus
    // wrote (a walk's first hit follows a hash order that differs per process).
    const known = new Set<string>();
    for (const c of ref!.cases) for (const p of normalStream(ref!.res.get(c.id)!, false).pairs) known.add(p);
    for (const c of sut!.cases)
      for (const r of c.rounds) {
        const a = parseList(r.bytes)?.attrs;
        const get = (n: string) => a?.find((x) => x[0] === n)?.[1];
        if (get("request") === "update" && get("key") !== undefined) for (const k of [get("key")!, get("key")!.toLowerCase()]) known.add(`${k}\0${get("value") ?? ""}`);
      }
    const perType = new Map<string, { match: number; total: number }>();
    const kinds = new Map<string, number[]>();
    const bad: string[] = [];
    let match = 0;
    const sig = (l: List | undefined) => (l ? l.map(([n, v]) => (n === "status" || n === "flags" ? `${n}=${v}` : n)).join(",") : "(none)");
    for (const c of ref!.cases) {
      const a = ref!.res.get(c.id)!;
      const b = sut!.res.get(c.id)!;
      const na = normalStream(a, false);
      const nb = normalStream(b, false);
      const roundText = (r: CaseResult, i: number) => splitLists(r.rounds[i] ?? "").lists.map((l) => enc(l)).join("");
      c.rounds.forEach((r, i) => {
        const e = perType.get(roundType(r.bytes)) ?? { match: 0, total: 0 };
        e.total++;
        // Sequence hits of in-memory tables come in a per-process order: counted by status only.
        if (roundText(a, i) === roundText(b, i) || (r.type === "sequence" && roundText(a, i).slice(0, 10) === roundText(b, i).slice(0, 10))) e.match++;
        perType.set(roundType(r.bytes), e);
      });
      const whole = c.label.startsWith("walk") && na.lists.at(-1)?.[0]?.[1] === "1";
      const pairsOk = whole ? [...na.pairs].sort().join("\n") === [...nb.pairs].sort().join("\n") : nb.pairs.every((p) => known.has(p));
      if (na.lists.map(enc).join("") + na.tail === nb.lists.map(enc).join("") + nb.tail && a.closed === b.closed && a.inStep === b.inStep && pairsOk) {
        match++;
        continue;
      }
      bad.push(report(c));
      const n = Math.max(na.lists.length, nb.lists.length);
      let i = 0;
      while (i < n && na.lists[i] && nb.lists[i] && enc(na.lists[i]) === enc(nb.lists[i])) i++;
      const type = c.rounds[i] ? `${c.rounds[i].type} ${roundType(c.rounds[i].bytes)}` : "-";
      const k = i < n ? `${type}: C ${sig(na.lists[i])}  <->  ours ${sig(nb.lists[i])}` : !pairsOk ? "sequence hits differ" : `end: C closed=${a.closed} inStep=${a.inStep}, ours closed=${b.closed} inStep=${b.inStep}`;
      kinds.set(k, [...(kinds.get(k) ?? []), c.id]);
    }
    // For reading: the cases that differ in more than a reply's flags value.
    const flagless = (l: List): List => l.map(([k, v]) => [k, k === "flags" ? "*" : v]);
    const notFlags = ref!.cases.filter((c) => {
      const na = normalStream(ref!.res.get(c.id)!, false);
      const nb = normalStream(sut!.res.get(c.id)!, false);
      return na.lists.map((l) => enc(flagless(l))).join("") + na.tail !== nb.lists.map((l) => enc(flagless(l))).join("") + nb.tail;
    });
    console.log(`postfix312: ${ref!.cases.length - notFlags.length}/${ref!.cases.length} cases identical but for the value of flags; the others: ${notFlags.map((c) => c.id).slice(0, 60).join(" ")}`);
    const rows = [...perType].sort((x, y) => x[0].localeCompare(y[0])).map(([t, e]) => `  ${t.padEnd(10)} ${e.match}/${e.total}`);
    console.log(`postfix312: ${match}/${ref!.cases.length} cases byte-identical\nrequests with an identical reply, per type:\n${rows.join("\n")}`);
    if (kinds.size) {
      const k = [...kinds].sort((x, y) => y[1].length - x[1].length).slice(0, 40);
      console.log(`mismatch kinds (first differing reply; count; example cases):\n${k.map(([s, ids]) => `  ${String(ids.length).padStart(4)}  ${s}  [${ids.slice(0, 5).join(" ")}]`).join("\n")}`);
    }
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 8).join("\n\n")}`);
    expect(bad.length).toBe(0);
  });

  test("the proxymap and proxywrite log lines are the same", () => {
    const lines = (side: Side) => serviceLines(side.log, (l) => l.replaceAll(side.tables.dir, "TABLES").replace(/ sequence: ".*" = ".*"$/s, " sequence: *"));
    const { onlyA, onlyB } = multisetDiff(lines(ref!), lines(sut!));
    console.log(`log lines: reference ${lines(ref!).length}, ours ${lines(sut!).length}; ${onlyA.length} kinds only in the reference, ${onlyB.length} only in ours`);
    if (onlyA.length || onlyB.length) console.log(`only in the reference:\n  ${onlyA.slice(0, 25).join("\n  ")}\nonly in ours:\n  ${onlyB.slice(0, 25).join("\n  ")}`);
    expect({ onlyRef: onlyA.slice(0, 25), onlyOurs: onlyB.slice(0, 25) }).toEqual({ onlyRef: [], onlyOurs: [] });
  });

  test("where the 3.12 C proxymap dies, ours answers with a status and stays up", () => {
    const lines: string[] = [];
    const bad: string[] = [];
    let died = 0;
    for (const [i, c] of ref!.deaths.entries()) {
      const a = ref!.deathRes.get(c.id)!;
      const b = sut!.deathRes.get(sut!.deaths[i].id)!;
      if (a.closed) died++;
      lines.push(`  ${a.closed ? "3.12 died" : "3.12 survived"}: ${c.label} -- ${c.kill}; ${AGAINST === "c" ? "" : `ours: ${splitLists(b.stream).lists.map((l) => enc(l).replaceAll("\0", "|")).join(" ")}`}`);
      if (AGAINST === "ours" && !answeredEveryRound(sut!.deaths[i], b)) bad.push(caseReport(sut!.deaths[i], a, b, { a: "C  ", b: "our" }));
    }
    console.log(`deliberate differences: ${ref!.deaths.length} cases where the 3.12 C proxymap dies (${died} deaths seen):\n${lines.join("\n")}`);
    expect(died).toBe(ref!.deaths.length);
    expect(bad.join("\n\n")).toBe("");
  });

  /**
   * Issue 11, defect 2: two lookups with different request flags in flight
   * at once on a table that answers asynchronously. Each reply must be the
   * one 3.12 gives for that request alone; afterwards an open of the table
   * answers what it answered before.
   */
  test(`overlapping lookups with different request flags: ${PAIRS} pairs on two connections, each reply as 3.12 answers it alone`, async () => {
    const pairReq = (side: Side, key: string, flags: number, inst: number) =>
      encodeAttrs([["request", "lookup"], ["table", side.tables.named.unionSlow], ["instance_flags", String(inst)], ["flags", String(flags)], ["key", key]]);
    const openReq = (side: Side) => encodeAttrs([["request", "open"], ["table", side.tables.named.unionSlow], ["instance_flags", "524353"]]);
    const ask = (cl: WireClient, req: Buffer) => cl.exchange(req);
    // What 3.12 answers each request alone, and the open before and after.
    const alone = await WireClient.connect(ref!.inst.socket("proxymap"));
    const wantA = await ask(alone, pairReq(ref!, "a", 1589329, 524353));
    const wantB = await ask(alone, pairReq(ref!, "b", 524353, 524353));
    const wantOpen = await ask(alone, openReq(ref!));
    alone.close();
    expect(wantA).toContain("value-a");
    expect(wantB).toContain("value-b");
    const run = async (side: Side, pairs: number) => {
      const [c1, c2] = await Promise.all([WireClient.connect(side.inst.socket("proxymap")), WireClient.connect(side.inst.socket("proxymap"))]);
      const before = await ask(c1, openReq(side));
      const wrong: string[] = [];
      for (let i = 0; i < pairs; i++) {
        const [ra, rb] = await Promise.all([ask(c1, pairReq(side, "a", 1589329, 524353)), ask(c2, pairReq(side, "b", 524353, 524353))]);
        if (ra !== wantA) wrong.push(`pair ${i} key a: ${ra} (3.12 alone: ${wantA})`);
        if (rb !== wantB) wrong.push(`pair ${i} key b: ${rb} (3.12 alone: ${wantB})`);
      }
      const after = await ask(c2, openReq(side));
      c1.close();
      c2.close();
      return { wrong, before, after };
    };
    // The C server takes one request at a time (a control of the expectations), ours both at once.
    const control = await run(ref!, 5);
    expect(control.wrong).toEqual([]);
    const t0 = Date.now();
    const ours = await run(sut!, PAIRS);
    console.log(`overlapping pairs: ${PAIRS} in ${Date.now() - t0} ms; ${ours.wrong.length} of ${2 * PAIRS} replies differ from 3.12's${ours.wrong.length ? `, e.g.\n  ${ours.wrong.slice(0, 4).join("\n  ")}` : ""}`);
    expect({ before: ours.before, after: ours.after }).toEqual({ before: wantOpen, after: wantOpen });
    expect(ours.wrong.slice(0, 6)).toEqual([]);
  }, 120_000);
});
