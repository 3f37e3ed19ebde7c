/**
 * runner.ts - plays corpus cases against one proxymap socket and records
 * what came back, byte for byte.
 *
 * Each case is a fresh connection: read the greeting, then send the rounds
 * one by one, each in its own write, never before the server is done with
 * the previous one. That matters for the C reference: multi_server handles
 * one request per readable event of the socket, and vstream then discards
 * whatever else that read() brought in, so bytes sent early can vanish.
 *
 * A round is done when a reply list arrived. When none came within
 * `roundMs`, or the round was large (the reference may still be draining
 * it), the runner synchronises with a probe: a lookup of
 * static:__probe_reply__, whose reply is unique, sent on its own and
 * repeated (at most 5 times, `quietMs` apart) until its reply comes back;
 * a probe sent while the reference was still busy is dropped by it, which
 * is why it is repeated. Probe replies are removed before comparing. A case
 * ends with the same synchronisation, except after a truncated round (it is
 * read until quiet: a probe would complete the list). A closed connection
 * ends the case.
 *
 * Cases run one after another, so the server process sees the same history
 * on both sides (the open flags of a shared table instance depend on it).
 *
 * Below the runner: what the differential tests (differential.test.ts,
 * patterns.test.ts, postfix312.test.ts) share to compare two runs: reply
 * lists with sequence hits set apart, the history bits of a reply's flags,
 * the service's log lines, the multiset difference of two logs, a case's
 * report, and the check that a service answers at all.
 */
import { F, PROBE_REPLY, PROBE_REQUEST, typeOf, type Case } from "./corpus";
import { WireClient, encodeAttrs, parseList, show, text } from "../helpers/wire";

export interface CaseResult {
  id: number;
  greeting: string;
  /** Bytes read after each round (reports only). */
  rounds: string[];
  /** Every byte received after the greeting, probe replies removed (latin1). */
  stream: string;
  /** The server closed the connection. */
  closed: boolean;
  /** Rounds sent before the connection closed. */
  sent: number;
  /** The final probe came back (the stream was in step at the end). */
  inStep: boolean;
  error?: string;
}

export interface RunOptions {
  /** How long a round waits for its first reply list. */
  roundMs: number;
  /** Silence that ends the flush / a truncated case. */
  quietMs: number;
  /** How long to wait for the greeting (a restarting service may take a while). */
  connectMs: number;
  /** The probe, where the server speaks only the 3.11 shape (PROBE_311); default the 3.7-shaped one. */
  probe?: Probe;
}

/** A synchronisation request and the reply only it gets. */
export interface Probe {
  request: Buffer;
  reply: Buffer;
}

const PROBE_37: Probe = { request: PROBE_REQUEST, reply: PROBE_REPLY };

/** The probe for a 3.11+ server: the same lookup in the 3.11 shape (its reply carries the request's flags). */
export const PROBE_311: Probe = {
  request: encodeAttrs([["request", "lookup"], ["table", "static:__probe_reply__"], ["instance_flags", "0"], ["flags", "0"], ["key", "probe"]]),
  reply: encodeAttrs([["status", "0"], ["flags", "0"], ["value", "__probe_reply__"]]),
};

/** Remove complete probe-reply lists found at list boundaries. */
export function stripProbes(s: string, probe: Probe = PROBE_37): string {
  const PROBE = probe.reply.toString("latin1");
  let out = "";
  let b = Buffer.from(s, "latin1");
  for (;;) {
    const p = parseList(b);
    if (!p) return out + b.toString("latin1");
    const l = b.toString("latin1", 0, p.used);
    if (l !== PROBE) out += l;
    b = b.subarray(p.used);
  }
}

const LARGE = 4000;

export async function runCase(path: string, c: Case, o: RunOptions): Promise<CaseResult> {
  const res: CaseResult = { id: c.id, greeting: "", rounds: [], stream: "", closed: false, sent: 0, inStep: false };
  let cl: WireClient;
  try {
    cl = await WireClient.connect(path, { greeting: true, timeoutMs: o.connectMs });
  } catch (e) {
    res.error = (e as Error).message;
    res.closed = true;
    return res;
  }
  res.greeting = text(cl.greeting!);
  const probe = o.probe ?? PROBE_37;
  const PROBE = probe.reply.toString("latin1");
  let all = "";
  // Probe until its reply comes back; returns what arrived before it.
  const sync = async (): Promise<string> => {
    let got = "";
    for (let i = 0; i < 5 && !cl.closed; i++) {
      await cl.send(probe.request);
      const q = await cl.readUntilTail(probe.reply, o.quietMs);
      got += text(q.data) + (q.found ? PROBE : "");
      if (q.found) {
        res.inStep = true;
        return got;
      }
    }
    res.inStep = false;
    return got;
  };
  try {
    for (const r of c.rounds) {
      if (cl.closed) break;
      await cl.send(r.bytes);
      res.sent++;
      let d: string;
      if (r.truncated) {
        d = text((await cl.readUntilQuiet(o.quietMs)).data);
        res.inStep = false;
      } else {
        d = text(await firstList(cl, o.roundMs));
        if (!d.length || r.bytes.length > LARGE) d += await sync();
        else res.inStep = true;
      }
      res.rounds.push(d);
      all += d;
    }
    const last = c.rounds[c.rounds.length - 1];
    if (!cl.closed && !last?.truncated) all += await sync();
    if (cl.closed) {
      all += text(cl.pending);
      res.closed = true;
    }
  } finally {
    cl.close();
  }
  res.stream = stripProbes(all, probe);
  return res;
}

/** Wait until at least one complete list is buffered (or ms pass); take everything buffered. */
async function firstList(cl: WireClient, ms: number): Promise<Buffer> {
  const deadline = Date.now() + ms;
  while (!cl.closed && !parseList(cl.pending) && Date.now() < deadline) {
    await cl.nextEvent(deadline - Date.now());
  }
  const out = Buffer.from(cl.pending);
  cl.discard(out.length);
  return out;
}

/** Run cases one after another; pathOf picks each case's socket. */
export async function runAll(cases: readonly Case[], o: RunOptions, pathOf: (c: Case) => string): Promise<Map<number, CaseResult>> {
  const out = new Map<number, CaseResult>();
  for (const c of cases) out.set(c.id, await runCase(pathOf(c), c, o));
  return out;
}

/** Reply lists of a stream (complete ones) and any incomplete tail. */
export function splitLists(s: string): { lists: [string, string][][]; tail: string } {
  const lists: [string, string][][] = [];
  let b = Buffer.from(s, "latin1");
  for (;;) {
    const p = parseList(b);
    if (!p) return { lists, tail: b.toString("latin1") };
    lists.push(p.attrs.map((a) => [a[0], a[1]]));
    b = b.subarray(p.used);
  }
}

/** Report lines for one side of a case. */
export function describeSide(tag: string, c: Case, r: CaseResult | undefined): string {
  if (!r) return `  ${tag} (not run)`;
  const lines: string[] = [];
  c.rounds.forEach((round, i) => {
    lines.push(`  ${tag} > ${show(round.bytes, 200)}`);
    if (i < r.rounds.length) lines.push(`  ${tag} < ${r.rounds[i].length ? show(r.rounds[i], 300) : "(nothing yet)"}`);
  });
  lines.push(`  ${tag} stream: ${r.stream.length ? show(r.stream, 600) : "(empty)"}${r.closed ? " [closed]" : ""}${r.inStep ? "" : " [probe not answered]"}${r.error ? ` [${r.error}]` : ""}`);
  return lines.join("\n");
}

/**
 * The kind of a log line: its wording with table names, numbers, quoted
 * text and the last ": detail" taken out, so that lines of the two logs
 * can be compared by kind when they cannot be compared line for line.
 */
export function warningTemplate(line: string): string {
  return line
    .replace(/unexpected attribute (?!instance_flags)\S+/, "unexpected attribute A")
    .slice(0, 200)
    .replace(/"[^"]*"/g, '"*"')
    .replace(/\b[a-z0-9_]+:\S*/gi, "T")
    .replace(/TABLES\S*/g, "T")
    .replace(/\d+/g, "N")
    .replace(/: [^:]*$/, ": *");
}

/**
 * Where the reference dies: did ours stay up, in step, and answer every
 * round of the case with one list that starts with a status?
 */
export function answeredEveryRound(c: Case, r: CaseResult): boolean {
  const { lists } = splitLists(r.stream);
  return !r.closed && r.inStep && r.sent === c.rounds.length && lists.length === c.rounds.length && lists.every((l) => l[0]?.[0] === "status");
}

// ---- comparing two runs ------------------------------------------------------

/** One reply list as name/value pairs. */
export type List = [string, string][];

/** The bytes of a list, as a byte string. */
export const enc = (l: List): string => encodeAttrs(l).toString("latin1");

/**
 * A reply list with a sequence hit's key and value replaced by "*": the C
 * proxymap walks its in-memory hash tables in an order seeded per process
 * from /dev/urandom (hash_fnv), so walk order is not a property to match.
 * The pairs are kept apart (`pairs`) and compared as sets.
 */
export function unorder(l: List, pairs: string[]): List {
  const names = l.map((a) => a[0]).join();
  if ((names === "status,key,value" || names === "status,flags,key,value") && l[0][1] === "0") {
    pairs.push(`${l[l.length - 2][1]}\0${l[l.length - 1][1]}`);
    return l.map((a, i): [string, string] => (i >= l.length - 2 ? [a[0], "*"] : a));
  }
  return l;
}

/** DICT_FLAG_RQST_MASK: the request bits of a flags word. */
export const RQST_BITS = F.FOLD_FIX | F.FOLD_MUL | F.LOCK | F.DUP_REPLACE | F.DUP_WARN | F.DUP_IGNORE | F.SYNC_UPDATE | F.NO_REGSUB | F.NO_PROXY | F.NO_UNAUTH | F.UTF8_REQUEST;

/**
 * Up to 3.10 the request bits of a reply's flags are those of the last
 * request any client made on that shared table instance in that process:
 * history, not a property of the request. The instance and implementation
 * bits must match. (From 3.11 a reply's flags are the request's own.)
 */
export function withoutHistory(l: List): List {
  return l.map(([n, v]) => (n === "flags" ? [n, String((Number(v) & ~RQST_BITS) >>> 0)] : [n, v]));
}

/** A case's stream as reply lists (sequence hits apart; request bits masked with maskHistory). */
export function normalStream(r: CaseResult, maskHistory: boolean): { lists: List[]; tail: string; pairs: string[] } {
  const { lists, tail } = splitLists(r.stream);
  const pairs: string[] = [];
  return { lists: lists.map((l) => unorder(l, pairs)).map((l) => (maskHistory ? withoutHistory(l) : l)), tail, pairs };
}

export function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * The proxymap and proxywrite lines of a maillog without time, host and
 * pid ("proxymap: warning: ..."), each passed through `clean` (table
 * directories and ports taken out), cut at 300 characters.
 */
export function serviceLines(log: string, clean: (line: string) => string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    const m = /^\S+\s+\d+\s+[\d:]+\s+\S+\s+postfix\/(proxymap|proxywrite)\[\d+\]: (.*)$/.exec(line);
    if (m) out.push(`${m[1]}: ${clean(m[2]).slice(0, 300)}`);
  }
  return out;
}

/** What one multiset of lines has more of than the other ("3x line"). */
export function multisetDiff(a: string[], b: string[]): { onlyA: string[]; onlyB: string[] } {
  const count = new Map<string, number>();
  for (const x of a) count.set(x, (count.get(x) ?? 0) + 1);
  for (const x of b) count.set(x, (count.get(x) ?? 0) - 1);
  const onlyA: string[] = [];
  const onlyB: string[] = [];
  for (const [k, v] of count) {
    if (v > 0) onlyA.push(`${v}x ${k}`);
    if (v < 0) onlyB.push(`${-v}x ${k}`);
  }
  return { onlyA, onlyB };
}

/** A case with both transcripts, for failure messages and reports. */
export function caseReport(c: Case, a: CaseResult | undefined, b: CaseResult | undefined, tags: { a: string; b: string }): string {
  return [
    `case ${c.id} [${c.service}] ${c.label}${c.kill ? ` (reference dies: ${c.kill})` : ""}`,
    describeSide(tags.a, c, a),
    describeSide(tags.b, c, b),
  ].join("\n");
}

/**
 * Fail at once when a service of an instance does not answer (a
 * configuration that kills it at start-up would make every case wait for
 * its greeting).
 */
export async function requireAnswering(socket: string, log: () => string, probe: Probe = PROBE_37): Promise<void> {
  const r = await runCase(socket, { id: -1, service: "proxymap", label: "probe", rounds: [] }, { roundMs: 30, quietMs: 150, connectMs: 10_000, probe });
  if (!r.greeting) throw new Error(`${socket}: the service does not answer (${r.error}):\n${log().slice(-2000)}`);
}

/** The table type a request asks about ("?" when it names none). */
export function roundType(b: Buffer): string {
  const t = parseList(b)?.attrs.find((a) => a[0] === "table")?.[1];
  return t === undefined ? "?" : typeOf(t) || "?";
}
