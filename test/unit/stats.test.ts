/**
 * Statistics (issue 17), piece by piece: the latency histogram, the
 * counters and their intervals, counting in the dict layer (and that it
 * changes no result), a socketmap pool's per-server numbers, merging
 * processes, the log line, --status text, the Prometheus text (read back
 * by a strict reader of the format, test/helpers/prometheus-text.ts),
 * status files (atomic writes, stale processes) and the statistics clock
 * of a process.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { activity, intervalTables, measure, resetStats, setStatsEnabled, snapshotTables, SYNC_SAMPLE, tableCounters } from "../../src/stats/collector";
import { clock, Counters, lastCompleteInterval, Op, Outcome, Period } from "../../src/stats/counters";
import { ctime15, fmtMs, statusText, tableLogLine } from "../../src/stats/format";
import { BUCKETS, bucketHigh, bucketLow, bucketOf, Histogram, UNITS_PER_MS } from "../../src/stats/histogram";
import { mergeProcesses } from "../../src/stats/merge";
import { renderPrometheus } from "../../src/stats/prometheus";
import { startStatistics } from "../../src/stats/reporter";
import { processStartTicks, readStatusFiles, writeAtomic, type ProcessStatus } from "../../src/stats/statusFiles";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict, setUtf8Enabled } from "../../src/tables/dict";
import { writeCoolFile } from "../helpers/files";
import { parseExposition } from "../helpers/prometheus-text";
import { SocketmapServer } from "../helpers/socketmap-server";

const FLAGS = DictFlag.LOCK | DictFlag.UTF8_REQUEST;
let dir = "";
let logs: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pm-stats-"));
  setLogSinks([{ write: (_s, line) => logs.push(line) }]);
  setUtf8Enabled(true);
});
beforeEach(() => {
  resetStats();
  setStatsEnabled(true);
  clock.lengthMs = 60_000;
  clock.sync();
  logs = [];
});
afterEach(async () => {
  await closeAllDicts();
  setStatsEnabled(false);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogSinks([]);
});

describe("histogram", () => {
  test("buckets cover every duration in order, each at most 12.5% wide", () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(7)).toBe(7);
    expect(bucketOf(8)).toBe(8);
    expect(bucketOf(2 ** 32 - 1)).toBe(BUCKETS - 1);
    expect(bucketOf(1e12)).toBe(BUCKETS - 1);
    for (let i = 0; i < BUCKETS; i++) {
      expect(bucketOf(bucketLow(i))).toBe(i);
      expect(bucketOf(bucketHigh(i) - 1)).toBe(i);
      if (i >= 8) expect((bucketHigh(i) - bucketLow(i)) / bucketLow(i)).toBeLessThanOrEqual(0.125);
    }
  });

  test("quantiles within 7% of the exact ones; max exact; add() = one histogram of all samples", () => {
    let seed = 17;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const a = new Histogram();
    const b = new Histogram();
    const all: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const ms = Math.exp(rnd() * 12 - 8); // 0.3 us .. 55 ms, log-uniform
      all.push(ms);
      (i % 3 === 0 ? a : b).record(ms);
    }
    const both = new Histogram();
    both.add(a);
    both.add(b);
    all.sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = all[Math.ceil(q * all.length) - 1];
      expect(Math.abs(both.quantile(q) - exact) / exact).toBeLessThan(0.07);
    }
    expect(both.maxMs).toBe(all.at(-1)!);
    expect(both.n).toBe(20000);
    const back = Histogram.fromJSON(JSON.parse(JSON.stringify(both.toJSON())));
    expect(Array.from(back.counts)).toEqual(Array.from(both.counts));
    expect(back.quantile(0.99)).toBe(both.quantile(0.99));
  });

  test("countUpTo counts whole buckets only; an empty histogram answers 0", () => {
    const h = new Histogram();
    expect(h.quantile(0.5)).toBe(0);
    h.record(0.001); // 16 units
    h.record(2);
    expect(h.countUpTo(0.0005)).toBe(0);
    expect(h.countUpTo(bucketHigh(bucketOf(0.001 * UNITS_PER_MS)) / UNITS_PER_MS)).toBe(1);
    expect(h.countUpTo(10)).toBe(2);
  });
});

describe("counters", () => {
  test("statuses become outcomes; BAD and DENY are not counted", () => {
    const c = new Counters();
    c.done(Op.lookup, Status.OK, 1);
    c.done(Op.lookup, Status.NOKEY, 1);
    c.done(Op.lookup, Status.RETRY, -1);
    c.done(Op.update, Status.CONFIG, -1);
    c.done(Op.lookup, Status.BAD, 1);
    c.done(Op.lookup, Status.DENY, 1);
    expect(c.total.count(Op.lookup, Outcome.ok)).toBe(1);
    expect(c.total.count(Op.lookup, Outcome.notfound)).toBe(1);
    expect(c.total.outcomes(Outcome.retry)).toBe(1);
    expect(c.total.outcomes(Outcome.config)).toBe(1);
    expect(c.total.total).toBe(4);
    expect(c.total.latency.n).toBe(2);
  });

  test("intervals: the one in progress becomes the last; a gap empties it", () => {
    clock.lengthMs = 1000;
    clock.index = 100;
    const c = new Counters();
    c.done(Op.lookup, Status.OK, 1);
    c.done(Op.lookup, Status.OK, 1);
    clock.index = 101;
    c.done(Op.lookup, Status.NOKEY, 1);
    expect(c.last.ops(Op.lookup)).toBe(2);
    expect(c.current.ops(Op.lookup)).toBe(1);
    // A snapshot taken during 101, read during 102: its current is the last complete one.
    const j = c.toJSON();
    expect(lastCompleteInterval(j, 101).ops(Op.lookup)).toBe(2);
    expect(lastCompleteInterval(j, 102).ops(Op.lookup)).toBe(1);
    expect(lastCompleteInterval(j, 103).ops(Op.lookup)).toBe(0);
    c.rotate(105);
    expect(c.last.total).toBe(0);
    expect(c.total.total).toBe(3);
  });
});

describe("counting in the dict layer", () => {
  test("hits, misses, updates, walks, unsupported operations and failed opens; results as without statistics", async () => {
    const table = `texthash:${writeCoolFile(join(dir, "t1"), "a 1\nb 2\n")}`;
    const d = await openDict(table, false, FLAGS);
    const seen = [dictGet(d, "a", FLAGS), dictGet(d, "zz", FLAGS), dictGet(d, "b", FLAGS), dictPut(d, "x", "y", FLAGS), dictSeq(d, 0, FLAGS)];
    const c = tableCounters("texthash", table.slice(9))!;
    expect(c.total.count(Op.lookup, Outcome.ok)).toBe(2);
    expect(c.total.count(Op.lookup, Outcome.notfound)).toBe(1);
    expect(c.total.count(Op.update, Outcome.config)).toBe(1); // texthash has no update
    expect(c.total.count(Op.sequence, Outcome.ok)).toBe(1);
    // The same calls with statistics off give the same results.
    await closeAllDicts();
    setStatsEnabled(false);
    const off = await openDict(table, false, FLAGS);
    expect(off.stats).toBeUndefined();
    expect([dictGet(off, "a", FLAGS), dictGet(off, "zz", FLAGS), dictGet(off, "b", FLAGS), dictPut(off, "x", "y", FLAGS), dictSeq(off, 0, FLAGS)]).toEqual(seen);
    setStatsEnabled(true);
    const failed = await openDict(`texthash:${join(dir, "missing")}`, false, FLAGS);
    const got = [dictGet(failed, "a", FLAGS), dictDel(failed, "a", FLAGS)] as Array<{ status: number }>;
    const fc = tableCounters("texthash", join(dir, "missing"))!;
    expect(fc.total.count(Op.lookup, Outcome.retry)).toBe(1);
    expect(fc.total.count(Op.delete, got[1].status === Status.RETRY ? Outcome.retry : Outcome.config)).toBe(1);
  });

  test("answers given at once are timed one in SYNC_SAMPLE; counts are exact", async () => {
    const table = `texthash:${writeCoolFile(join(dir, "t2"), "a 1\n")}`;
    const d = await openDict(table, false, FLAGS);
    const n = SYNC_SAMPLE * 50;
    for (let i = 0; i < n; i++) dictGet(d, "a", FLAGS);
    const c = d.stats!;
    expect(c.total.ops(Op.lookup)).toBe(n);
    expect(c.total.latency.n).toBe(50);
    expect(activity.seq).toBe(n);
  });

  test("answers that come later: in flight while pending, every one timed, the Promise's value unchanged", async () => {
    const c = tableCounters("test", "async")!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const result = { status: Status.OK, value: "v", flags: 7 };
    const p = measure(c, Op.lookup, -1, gate.then(() => result));
    expect(c.inflight).toBe(1);
    release();
    expect(await p).toBe(result);
    expect(c.inflight).toBe(0);
    expect(c.total.latency.n).toBe(1);
    expect(c.total.count(Op.lookup, Outcome.ok)).toBe(1);
  });

  test("statistics off: no counters at all", () => {
    setStatsEnabled(false);
    expect(tableCounters("texthash", "/x")).toBeUndefined();
  });
});

describe("a socketmap server's numbers (net/pool.ts backends)", () => {
  test("lookups per server with outcome and latency, connections, shared by the tables naming it", async () => {
    const srv = await SocketmapServer.start({ data: { m: { k: "v" } } });
    try {
      const t1 = await openDict(srv.table("m"), false, FLAGS);
      const t2 = await openDict(srv.table("other"), false, FLAGS);
      expect(await dictGet(t1, "k", FLAGS)).toMatchObject({ status: Status.OK });
      expect(await dictGet(t1, "nope", FLAGS)).toMatchObject({ status: Status.NOKEY });
      expect(await dictGet(t2, "reply=TEMP%20busy", FLAGS)).toMatchObject({ status: Status.RETRY });
      const snap = snapshotTables();
      const one = snap.find((t) => t.table === srv.table("m"))!;
      expect(one.backends).toHaveLength(1);
      const b = one.backends[0];
      expect(b.host).toBe(srv.address);
      expect(b.limit).toBe(8);
      expect(b.open).toBeGreaterThanOrEqual(1);
      expect(b.busy).toBe(0);
      const p = Period.fromJSON(b.counters!.total);
      // The pool is the server's: both tables' lookups are counted there.
      expect([p.count(Op.lookup, Outcome.ok), p.count(Op.lookup, Outcome.notfound), p.count(Op.lookup, Outcome.retry)]).toEqual([1, 1, 1]);
      expect(p.latency.n).toBe(3);
      const tc = Period.fromJSON(one.counters.total);
      expect(tc.ops(Op.lookup)).toBe(2);
      expect(tc.latency.n).toBe(2); // asynchronous: every one timed
    } finally {
      await closeAllDicts();
      await srv.close();
    }
  });
});

describe("merging, log lines, --status text", () => {
  function proc(service: string, lookups: number, index: number): { service: string; tables: ReturnType<typeof snapshotTables> } {
    resetStats();
    setStatsEnabled(true);
    clock.index = index;
    const c = tableCounters("hash", "/etc/postfix/virtual")!;
    for (let i = 0; i < lookups; i++) c.done(Op.lookup, i % 4 === 0 ? Status.NOKEY : Status.OK, 0.5);
    const tables = [{ table: "hash:/etc/postfix/virtual", counters: c.toJSON(), backends: [{ host: "inet:db:3306", busy: 1, open: 2, limit: 16, downUntil: Date.now() + 60_000 }] }];
    return { service, tables };
  }

  test("processes add up per table; intervals line up; servers add connections", () => {
    const a = proc("proxymap", 8, 500);
    const b = proc("proxymap", 4, 499); // wrote during the interval before: its current is the last complete one
    const m = mergeProcesses([a, b], 501, Date.now());
    expect(m).toHaveLength(1);
    expect(m[0].processes).toBe(2);
    expect(m[0].total.ops(Op.lookup)).toBe(12);
    expect(m[0].total.count(Op.lookup, Outcome.notfound)).toBe(3);
    // Read during 501: a's interval 500 is the last complete one; b's (499) is older.
    expect(m[0].last.ops(Op.lookup)).toBe(8);
    // Read during 500: b's interval 499 is the last complete one, a's is in progress.
    const m2 = mergeProcesses([a, b], 500, Date.now());
    expect(m2[0].last.ops(Op.lookup)).toBe(4);
    expect(m[0].backends[0]).toMatchObject({ host: "inet:db:3306", busy: 2, open: 4, limit: 32, downIn: 2 });
    const lines = statusText(m, 60_000, Date.now());
    expect(lines[0]).toMatch(/^TABLE\s+SERVICE\s+PROCS\s+LOOKUPS\s+HITS\s+MISSES/);
    expect(lines[1]).toMatch(/^hash:\/etc\/postfix\/virtual\s+proxymap\s+2\s+12\s+9\s+3\s+0\s+0\s+0\s+0\s+0\.5\d*ms/);
    expect(lines[2]).toMatch(/^ {2}server inet:db:3306: connections busy 2 open 4 limit 32; set aside until \w{3} [ \d]\d \d\d:\d\d:\d\d \(in 2 processes\)$/);
  });

  test("the interval log line, in anvil's statistics style", () => {
    const p = new Period();
    for (let i = 0; i < 10; i++) p.latency.record(0.25);
    p.counts[0] = 7;
    p.counts[1] = 3;
    p.counts[4 * 1 + 0] = 2;
    const line = tableLogLine("texthash:/etc/postfix/x", p, 60_000, 0);
    expect(line).toMatch(/^statistics: table texthash:\/etc\/postfix\/x lookups=10\/1m hits=7 miss=3 retry=0 config=0 updates=2 latency p50=0\.2\dms p99=0\.2\dms max=0\.25ms at \w{3} [ \d]\d \d\d:\d\d:\d\d$/);
    expect(ctime15(Date.UTC(2026, 7, 1, 0, 0, 0))).toMatch(/^\w{3} [ \d]\d \d\d:\d\d:\d\d$/);
    expect(fmtMs(0.000063)).toBe("0.000063ms");
    expect(fmtMs(12.345)).toBe("12.3ms");
  });
});

describe("Prometheus text", () => {
  test("valid exposition: families together, histograms cumulative, labels escaped", () => {
    const c = new Counters();
    for (let i = 0; i < 100; i++) c.done(Op.lookup, i % 10 ? Status.OK : Status.RETRY, i / 10);
    c.done(Op.update, Status.OK, 1);
    const b = new Counters();
    b.outcome(Op.lookup, Outcome.ok, 3);
    const procs: ProcessStatus[] = [1, 2].map((pid) => ({
      v: 1,
      pid,
      service: pid === 1 ? "proxymap" : "proxywrite",
      startTicks: "",
      started: Date.now(),
      written: Date.now(),
      intervalMs: 60_000,
      tables: [
        { table: 'texthash:/etc/a "quoted"\\dir\nx', counters: c.toJSON(), backends: [] },
        { table: "mysql:/etc/m.cf", counters: c.toJSON(), backends: [{ host: "inet:10.0.0.1:3306", busy: 1, open: 3, limit: 16, downUntil: 0, counters: b.toJSON() }] },
      ],
    }));
    const text = renderPrometheus(procs);
    const e = parseExposition(text);
    const req = e.samples.filter((s) => s.name === "proxymap_table_requests_total" && s.labels.pid === "1" && s.labels.table === "mysql:/etc/m.cf");
    expect(req.find((s) => s.labels.operation === "lookup" && s.labels.result === "ok")!.value).toBe(90);
    expect(req.find((s) => s.labels.operation === "lookup" && s.labels.result === "retry")!.value).toBe(10);
    expect(req.find((s) => s.labels.operation === "update" && s.labels.result === "ok")!.value).toBe(1);
    expect(req.some((s) => s.labels.operation === "delete")).toBe(false);
    expect(e.samples.some((s) => s.labels.table === 'texthash:/etc/a "quoted"\\dir\nx')).toBe(true);
    expect(e.types.get("proxymap_backend_latency_seconds")).toBe("histogram");
    expect(e.samples.find((s) => s.name === "proxymap_backend_connections" && s.labels.state === "busy")!.value).toBe(1);
  });
});

describe("status files", () => {
  test("written atomically with the mode asked; files of ended processes are stale and pruned", () => {
    const sdir = join(dir, "status");
    mkdirSync(sdir, { mode: 0o700 });
    const mine: ProcessStatus = { v: 1, pid: process.pid, service: "proxymap", startTicks: processStartTicks("self")!, started: 1, written: 2, intervalMs: 60_000, tables: [] };
    writeAtomic(join(sdir, `${process.pid}.json`), JSON.stringify(mine), 0o600);
    expect(statSync(join(sdir, `${process.pid}.json`)).mode & 0o777).toBe(0o600);
    const gone = Bun.spawnSync(["true"]).pid;
    writeFileSync(join(sdir, `${gone}.json`), JSON.stringify({ ...mine, pid: gone }));
    // A live PID whose process started at another time: a recycled PID.
    writeFileSync(join(sdir, "1.json"), JSON.stringify({ ...mine, pid: 1, startTicks: "12345678901" }));
    writeFileSync(join(sdir, "junk.json"), "{");
    const r = readStatusFiles(sdir, { prune: true });
    expect(r.live.map((s) => s.pid)).toEqual([process.pid]);
    expect(r.stale).toBe(2);
    expect(existsSync(join(sdir, `${gone}.json`))).toBe(false);
    expect(readdirSync(sdir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("interval log lines lose nothing", () => {
  test("a clock that moves on late (a busy machine) still hands the interval's counts to the log", () => {
    clock.lengthMs = 1000;
    clock.index = 1000;
    const c = tableCounters("texthash", "/late")!;
    for (let i = 0; i < 5; i++) c.done(Op.lookup, Status.OK, -1);
    const seen: number[] = [];
    clock.onAdvance = (from) => {
      for (const t of intervalTables(from)) if (t.table === "texthash:/late") seen.push(from, t.period.ops(Op.lookup));
    };
    try {
      clock.sync(1002 * 1000 + 10); // two boundaries passed before anyone looked
    } finally {
      clock.onAdvance = undefined;
    }
    expect(seen).toEqual([1000, 5]);
  });
});

describe("the statistics clock of a process", () => {
  test("status file within a second of requests, interval log lines, Prometheus file; removed at stop", async () => {
    const sdir = join(dir, "clock");
    mkdirSync(sdir, { mode: 0o700 });
    const prom = join(dir, "clock.prom");
    const rep = startStatistics({ settings: { enabled: true, intervalMs: 1000, prometheusFile: prom }, service: "proxymap", statusDir: sdir, startTicks: processStartTicks("self")! });
    try {
      const table = `texthash:${writeCoolFile(join(dir, "t3"), "a 1\n")}`;
      const d = await openDict(table, false, FLAGS);
      for (let i = 0; i < 40; i++) dictGet(d, i % 2 ? "a" : "b", FLAGS);
      const file = join(sdir, `${process.pid}.json`);
      const deadline = Date.now() + 5000;
      while (!existsSync(file) && Date.now() < deadline) await Bun.sleep(50);
      const st = JSON.parse(readFileSync(file, "utf8")) as ProcessStatus;
      expect(Period.fromJSON(st.tables.find((t) => t.table === table)!.counters.total).ops(Op.lookup)).toBe(40);
      parseExposition(readFileSync(prom, "utf8"));
      // The interval with the requests ends within a second: its line follows.
      while (!logs.some((l) => l.startsWith("statistics: table")) && Date.now() < deadline + 2000) await Bun.sleep(50);
      const line = logs.find((l) => l.startsWith("statistics: table"));
      expect(line).toMatch(new RegExp(`^statistics: table ${table} lookups=40/1s hits=20 miss=20 retry=0 config=0`));
      // Quiet for a while: no more writes, no more lines.
      const before = logs.length;
      const mtime = statSync(file).mtimeMs;
      await Bun.sleep(2500);
      expect(logs.length).toBe(before);
      expect(statSync(file).mtimeMs).toBe(mtime);
      expect(activity.awake).toBe(false);
    } finally {
      rep.stop();
    }
    expect(existsSync(join(sdir, `${process.pid}.json`))).toBe(false);
  });
});
