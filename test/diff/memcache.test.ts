/**
 * memcache.test.ts - the differential test of memcache tables: the same
 * seeded steps (test/diff/memcache-corpus.ts) go to a private Postfix
 * instance running the system's C proxymap, then to one running ours, and
 * after every step the reply, the log lines it caused, the items memcached
 * holds under every key the corpus can make (value, flags, lifetime) and
 * the content of every backup file must be equal.
 *
 * Both sides use the same memcached servers (one on loopback TCP, one on a
 * UNIX socket, test/helpers/memcached.ts) and the same table files, one
 * side after the other: before each side memcached is emptied and preloaded
 * and the lmdb backups are made again with postmap. Steps include lookups
 * (memcached hits, backup hits written back, misses), updates and deletes
 * through proxywrite, walks, malformed requests, another client's sets and
 * deletes (a value over data_size_limit), and memcached stopped and started
 * again. Each step's log lines are cut by a marker: a lookup of an
 * unapproved table whose warning names the step.
 *
 * Deliberate differences, checked instead of compared:
 *  - a key over 250 bytes is never sent to memcached in a `set` (memcached
 *    would run the value as a command): ours logs "update failed: not
 *    sent: key is longer than 250 bytes" where the reference logs
 *    memcached's CLIENT_ERROR after a retry_pause; replies and state equal;
 *  - updating an existing backup key of a table first opened without a DUP
 *    flag: the reference dies (lmdb: fatal "duplicate entry"); ours answers
 *    CONFIG and stays up (played last).
 *
 * MC_SEED and MC_COUNT change the corpus; MC_REPORT=FILE writes every step
 * with both sides' results.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCoolFile } from "../helpers/files";
import { Memcached } from "../helpers/memcached";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { WireClient, encodeAttrs, show, type Attr } from "../helpers/wire";
import { ORACLE312_TREE, requireOracle312 } from "../helpers/oracle312";
import { generateMc312Steps, generateMcCorpus, mc312Death, mcFiles, mcTables, MC_PRELOAD, type McTables, type Service, type Step } from "./memcache-corpus";

const SEED = Number(process.env.MC_SEED ?? 20261204);
const COUNT = Number(process.env.MC_COUNT ?? 220);

interface StepResult {
  reply: string;
  logs: string[];
  state: string;
}

let tables: McTables;
let tcp: Memcached;
let unix: Memcached;
let steps: Step[] = [];
let death: Step[] = [];
let mcKeys: { tcp: string[]; unix: string[] } = { tcp: [], unix: [] };
let ref: StepResult[] = [];
let ours: StepResult[] = [];
let oursDeath: StepResult[] = [];
let refDeath: StepResult[] = [];
let oursAliveAfterDeath = false;

const past = new Date("2020-01-01T00:00:00Z");

/** Empty and preload memcached; make the table files and the lmdb backups again. */
async function resetState(): Promise<void> {
  await Promise.all([tcp.flush(), unix.flush()]);
  for (const [where, key, value] of MC_PRELOAD) await (where === "tcp" ? tcp : unix).set(key, value);
  const { configs, backups } = mcFiles(tables, tcp.server, unix.server);
  const { uid } = PostfixInstance.postfixUser();
  for (const [name, text] of Object.entries(configs)) writeCoolFile(join(tables.dir, name), text);
  for (const [name, text] of Object.entries(backups)) {
    const src = join(tables.dir, name);
    rmSync(`${src}.lmdb`, { force: true });
    writeCoolFile(src, text);
    const r = Bun.spawnSync(["postmap", `lmdb:${src}`]);
    if (r.exitCode !== 0) throw new Error(`postmap lmdb:${src}: ${r.stderr.toString()}`);
    // proxywrite runs as mail_owner.
    chownSync(`${src}.lmdb`, uid, -1);
    utimesSync(`${src}.lmdb`, past, past);
  }
}

/** Every backup's content (postmap -s, sorted). */
function backupContents(): string {
  return tables.backups.map((t) => Bun.spawnSync(["postmap", "-s", t]).stdout.toString("latin1").split("\n").sort().join("\n")).join("\n--\n");
}

/** The state after a step: every memcached item, every backup's content (read again only when it may have changed). */
async function snapshot(backups: string): Promise<string> {
  const items = async (m: Memcached) => {
    if (!m.running) return "(stopped)";
    return [...(await m.items(m === tcp ? mcKeys.tcp : mcKeys.unix))];
  };
  const [a, b] = await Promise.all([items(tcp), items(unix)]);
  return JSON.stringify({ tcp: a, unix: b }) + "\n" + backups;
}

/** Reads an instance's maillog from where it last stopped. */
class LogTail {
  private offset: number;
  private pending = "";
  constructor(private readonly path: string) {
    this.offset = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  }
  private read(): void {
    let fd: number;
    try {
      fd = openSync(this.path, "r");
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(65536);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.pending += buf.toString("latin1", 0, n);
      }
    } finally {
      closeSync(fd);
    }
  }
  /** The service lines up to (without) the line holding `marker`; waits for it. */
  async until(marker: string, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.read();
      const at = this.pending.indexOf(marker);
      if (at >= 0) {
        const end = this.pending.indexOf("\n", at);
        const text = this.pending.slice(0, at);
        this.pending = end < 0 ? "" : this.pending.slice(end + 1);
        // Everything before the marker's own line, minus the marker's first warning line.
        const lines = text.split("\n").slice(0, -1);
        return lines.map(serviceLine).filter((l): l is string => l !== undefined);
      }
      if (Date.now() > deadline) throw new Error(`log marker ${marker} did not appear in ${this.path}`);
      await Bun.sleep(5);
    }
  }
}

/** "proxywrite: warning: ..." from a maillog line of the services; undefined for others. */
function serviceLine(line: string): string | undefined {
  const m = /^\S+\s+\d+\s+[\d:]+\s+\S+\s+postfix\/(proxymap|proxywrite)\[\d+\]: (.*)$/.exec(line) ?? /^\S+ \S+ postfix\/(proxymap|proxywrite)\[\d+\]: (.*)$/.exec(line);
  if (!m) return undefined;
  if (m[2].includes("__step_marker_")) return undefined;
  return `${m[1]}: ${m[2].replaceAll(tables.dir, "DIR")}`;
}

/** The request shape a side's Postfix speaks (3.12 reads every request in the 3.11 shape). */
type Shape = "3.7" | "3.11";

/** A lookup of an unapproved table named after the step: its warning marks the end of the step's log lines. */
function markerRequest(marker: string, shape: Shape): Attr[] {
  return [["request", "lookup"], ["table", `static:${marker}`], ...(shape === "3.11" ? ([["instance_flags", "0"]] as Attr[]) : []), ["flags", "0"], ["key", "k"]];
}

/** Play steps against one instance; after each, the reply, its log lines and the state. */
async function play(inst: PostfixInstance, list: Step[], start: number, shape: Shape): Promise<{ results: StepResult[]; alive: boolean }> {
  const tail = new LogTail(inst.maillog);
  const conns = new Map<Service, WireClient>();
  const conn = async (s: Service) => {
    let c = conns.get(s);
    if (c === undefined || c.closed) {
      c = await WireClient.connect(inst.socket(s), { timeoutMs: 15_000 });
      conns.set(s, c);
    }
    return c;
  };
  const results: StepResult[] = [];
  let alive = true;
  let backups = backupContents();
  try {
    for (let i = 0; i < list.length; i++) {
      const step = list[i];
      let reply = "";
      if (step.kind === "request") {
        const c = await conn(step.service);
        await c.send(step.bytes);
        const r = await c.readReply(15_000);
        reply = r.kind === "reply" ? show(r.raw) : `(${r.kind})`;
        if (r.kind !== "reply") alive = false;
      } else if (step.kind === "mc-set" || step.kind === "mc-delete") {
        if (!tcp.running) reply = "(memcached stopped)";
        else reply = (await (step.kind === "mc-set" ? tcp.set(step.key, step.value) : tcp.command(`delete ${step.key}\r\n`))).trim();
      } else if (step.kind === "mc-stop") {
        await tcp.stop();
        // Both proxymaps notice the closed connections while idle.
        await Bun.sleep(200);
      } else {
        await tcp.restart();
      }
      // The marker: an unapproved table's warning, logged after this step's lines.
      const marker = `__step_marker_${start + i}__`;
      const m = await conn("proxymap");
      await m.ask(markerRequest(marker, shape), 15_000);
      const logs = await tail.until(marker);
      // Only the write service's updates and deletes write backups.
      if (step.kind === "request" && step.service === "proxywrite" && !step.label.startsWith("lookup")) backups = backupContents();
      results.push({ reply, logs, state: await snapshot(backups) });
    }
  } finally {
    for (const c of conns.values()) c.close();
  }
  return { results, alive };
}

interface SideOptions {
  /** Another Postfix build to run (the 3.12 oracle tree); default the installed one. */
  postfix?: string;
  shape: Shape;
  steps: Step[];
  /** Played after steps; the reference dies on the last one. */
  death: Step[];
}

async function runSide(impl: "c" | "ours", o: SideOptions): Promise<{ main: StepResult[]; death: StepResult[]; aliveAfter: boolean }> {
  await resetState();
  const approved = [tables.main, tables.nob, tables.fmt, tables.down, tables.death].map((t) => `proxy:${t}`).join(" ");
  const inst = await PostfixInstance.start({
    impl,
    postfix: o.postfix,
    label: `mcdiff-${impl}${o.postfix ? "-312" : ""}`,
    mainCf: { proxy_read_maps: approved, proxy_write_maps: approved, max_use: "100000" },
    proxymapMaxproc: "1",
  });
  try {
    const main = await play(inst, o.steps, 0, o.shape);
    if (o.death.length === 0) return { main: main.results, death: [], aliveAfter: true };
    const d = await play(inst, o.death, o.steps.length, o.shape);
    // After the reference's death master starts a new proxywrite; ours must simply have answered.
    const c = await WireClient.connect(inst.socket("proxywrite"), { timeoutMs: 15_000 });
    const after = await c.request([["request", "lookup"], ["table", tables.main], ["flags", "0"], ["key", "b1"]], 15_000);
    c.close();
    return { main: main.results, death: d.results, aliveAfter: d.alive && after.kind === "reply" };
  } finally {
    inst.stop();
  }
}

/** Ours' wording for a long-key set, as the reference's would read (the one deliberate log difference). */
const OURS_LONG_SET = "update failed: not sent: key is longer than 250 bytes";
const REF_LONG_SET = "update failed: CLIENT_ERROR bad command line ";

/** The lines of two states that differ (items and backup lines), shortened. */
function stateDiff(a: string, b: string): string {
  const lines = (s: string) => s.replace(/\],\[/g, "],\n[").split("\n").map((l) => (l.length > 160 ? `${l.slice(0, 150)}...(${l.length})` : l));
  const la = lines(a);
  const lb = lines(b);
  const sb = new Set(lb);
  const sa = new Set(la);
  return [...la.filter((l) => !sb.has(l)).map((l) => `  C   ${l}`), ...lb.filter((l) => !sa.has(l)).map((l) => `  our ${l}`)].join("\n");
}

function describeStep(i: number, s: Step, a: StepResult | undefined, b: StepResult | undefined): string {
  const what = s.kind === "request" ? `[${s.service}] ${s.label}: ${show(s.bytes, 160)}` : s.label;
  const side = (tag: string, r: StepResult | undefined) => (r ? `  ${tag} < ${r.reply}\n${r.logs.map((l) => `  ${tag} | ${l}`).join("\n")}` : `  ${tag} (none)`);
  return `step ${i}: ${what}\n${side("C  ", a)}\n${side("our", b)}`;
}

/** Step-by-step comparison: mismatches (reported), steps with the deliberate long-key wording, steps with equal state. */
function compareSteps(list: Step[], a: StepResult[], b: StepResult[]): { bad: string[]; deliberate: number; sameState: number } {
  const bad: string[] = [];
  let deliberate = 0;
  let sameState = 0;
  for (let i = 0; i < list.length; i++) {
    const ourLogs = b[i].logs.map((l) => (l.endsWith(OURS_LONG_SET) ? l.replace(OURS_LONG_SET, REF_LONG_SET) : l));
    if (ourLogs.join("\n") !== b[i].logs.join("\n")) deliberate++;
    const same = a[i].reply === b[i].reply && a[i].logs.join("\n") === ourLogs.join("\n");
    if (a[i].state === b[i].state) sameState++;
    if (!same || a[i].state !== b[i].state) bad.push(describeStep(i, list[i], a[i], b[i]) + (a[i].state !== b[i].state ? `\n  state differs:\n${stateDiff(a[i].state, b[i].state)}` : ""));
  }
  return { bad, deliberate, sameState };
}

beforeAll(async () => {
  requirePostfix();
  requireOurBinary();
  const dir = mkdtempSync(join(tmpdir(), "pfx-mc-tables-"));
  Bun.spawnSync(["chmod", "0755", dir]);
  tables = mcTables(dir);
  [tcp, unix] = await Promise.all([Memcached.start(), Memcached.start({ unix: true })]);
  ({ steps, death, keys: mcKeys } = generateMcCorpus(tables, { seed: SEED, count: COUNT }));
});

afterAll(async () => {
  await Promise.all([tcp?.close(), unix?.close()]);
  if (tables) rmSync(tables.dir, { recursive: true, force: true });
});

describe("memcache differential: C proxymap vs dist/proxymap, memcached and backups compared after every step", () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const side = { shape: "3.7" as const, steps, death };
    const c = await runSide("c", side);
    const t1 = Date.now();
    const o = await runSide("ours", side);
    [ref, refDeath] = [c.main, c.death];
    [ours, oursDeath, oursAliveAfterDeath] = [o.main, o.death, o.aliveAfter];
    console.log(`memcache differential: ${steps.length} steps + ${death.length} death steps, seed ${SEED}; C ${((t1 - t0) / 1000).toFixed(1)} s, ours ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    if (process.env.MC_REPORT) writeFileSync(process.env.MC_REPORT, steps.map((s, i) => describeStep(i, s, ref[i], ours[i])).join("\n\n") + "\n");
  }, 600_000);

  test("the corpus covers hits, write-backs, misses, updates, deletes, walks, malformed requests and a memcached restart", () => {
    const labels = steps.map((s) => (s.kind === "request" ? s.label.split(" ")[0] : s.kind));
    for (const k of ["lookup", "update", "delete", "sequence", "mc-stop", "mc-start", "mc-set", "mc-delete"]) expect(labels).toContain(k);
    expect(steps.filter((s) => s.kind === "request").length).toBeGreaterThanOrEqual(200);
    // What happened, from the reference's own replies: hits, misses, write-backs (the state grew by a lookup).
    const replies = ref.map((r) => r.reply);
    expect(replies.some((r) => r.startsWith("status|0|value|"))).toBe(true);
    expect(replies.some((r) => r.startsWith("status|1|value|"))).toBe(true);
    expect(replies.some((r) => r.startsWith("status|2|"))).toBe(true);
    expect(replies.some((r) => r.startsWith("status|3|"))).toBe(true);
    expect(replies.some((r) => r.startsWith("status|4|"))).toBe(true);
    const writeBacks = steps.filter((s, i) => s.kind === "request" && s.label.startsWith("lookup") && i > 0 && ref[i].state !== ref[i - 1].state);
    expect(writeBacks.length).toBeGreaterThan(5);
  });

  test("every step: the same reply, log lines, memcached items and backup contents", () => {
    const { bad, deliberate, sameState } = compareSteps(steps, ref, ours);
    console.log(`memcache differential: ${steps.length - bad.length}/${steps.length} steps identical (reply, logs, state); ${sameState} with the same state; ${deliberate} with the long-key set warning (deliberate)`);
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 8).join("\n\n")}`);
    expect(bad.length).toBe(0);
  });

  test("a table first opened without a DUP flag: the reference dies updating an existing backup key, ours answers CONFIG and stays up", () => {
    const last = death.length - 1;
    console.log(`death case: C ${refDeath[last]?.reply} (${refDeath[last]?.logs.join(" / ")}); ours ${oursDeath[last]?.reply} (${oursDeath[last]?.logs.join(" / ")})`);
    expect(refDeath.slice(0, last).map((r) => r.reply)).toEqual(oursDeath.slice(0, last).map((r) => r.reply));
    expect(refDeath[last].reply).toBe("(closed)");
    expect(refDeath[last].logs.some((l) => l.includes("fatal: lmdb:") && l.includes("duplicate entry"))).toBe(true);
    expect(oursDeath[last].reply).toBe(show(encodeAttrs([["status", "5"]])));
    expect(oursDeath[last].logs.some((l) => l.includes("duplicate entry"))).toBe(true);
    expect(oursAliveAfterDeath).toBe(true);
  });
});

describe("memcache differential under Postfix 3.12: its C proxymap vs dist/proxymap, 3.11-shaped requests", () => {
  let steps312: Step[] = [];
  let ref312: StepResult[] = [];
  let ours312: StepResult[] = [];
  let refDeath312: StepResult[] = [];
  let oursDeath312: StepResult[] = [];
  let oursAlive312 = false;
  beforeAll(async () => {
    const tree = requireOracle312();
    steps312 = generateMc312Steps(tables);
    const side = { postfix: tree, shape: "3.11" as const, steps: steps312, death: mc312Death(tables) };
    const t0 = Date.now();
    ({ main: ref312, death: refDeath312 } = await runSide("c", side));
    const t1 = Date.now();
    ({ main: ours312, death: oursDeath312, aliveAfter: oursAlive312 } = await runSide("ours", side));
    console.log(`memcache 3.12 differential: ${steps312.length} steps; C ${((t1 - t0) / 1000).toFixed(1)} s, ours ${((Date.now() - t1) / 1000).toFixed(1)} s (${ORACLE312_TREE})`);
  }, 300_000);

  test("every step: the same reply, log lines, memcached items and backup contents", () => {
    const { bad } = compareSteps(steps312, ref312, ours312);
    console.log(`memcache 3.12 differential: ${steps312.length - bad.length}/${steps312.length} steps identical`);
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 8).join("\n\n")}`);
    expect(bad.length).toBe(0);
  });

  test("an existing backup key: the 3.12 C proxywrite dies too (instance flags carry no DUP flag), ours answers CONFIG and stays up", () => {
    console.log(`3.12 death case: C ${refDeath312[0]?.reply} (${refDeath312[0]?.logs.join(" / ")}); ours ${oursDeath312[0]?.reply} (${oursDeath312[0]?.logs.join(" / ")})`);
    expect(refDeath312[0].reply).toBe("(closed)");
    expect(refDeath312[0].logs.some((l) => l.includes("fatal:") && l.includes("duplicate entry"))).toBe(true);
    expect(oursDeath312[0].reply).toStartWith("status|5|");
    expect(oursAlive312).toBe(true);
  });

  test("3.12 skips keys with control characters (3.7 sends them)", () => {
    const logs = ref312.flatMap((r) => r.logs);
    expect(logs.some((l) => l.endsWith('skipping update for name "ctl?key": name contains space or controls'))).toBe(true);
    const i = steps312.findIndex((s) => s.kind === "request" && s.label === 'lookup main.cf "ctl\\u0001key"');
    expect(ref312[i].reply).toStartWith("status|1|");
  });
});
