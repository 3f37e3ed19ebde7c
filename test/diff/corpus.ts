/**
 * corpus.ts - the seeded request corpus of the differential test.
 *
 * Builds (1) the table files and the proxy_read_maps / proxy_write_maps
 * settings both instances share, and (2) a list of cases. A case is one
 * client connection: a service (proxymap or proxywrite) and rounds of raw
 * request bytes, good and malformed: every request type in both request
 * shapes, wrong order, missing and extra attributes, odd flag strings (as
 * glibc's sscanf("%u%c") reads them), unknown requests, a first attribute
 * that is not `request`, empty, 8-bit, invalid UTF-8 and long keys,
 * names with no name part, unapproved tables, update/delete on the read
 * service, sequence walks, write refusals, garbage and truncated lists.
 *
 * Cases on which the reference process dies (PROTOCOL.md section 7) carry a
 * `kill` reason: the runner sends them last and does not compare them.
 * 3.11-shape rounds (with instance_flags) go to both sides as they are: a
 * 3.7 installation answers them BAD, and so must ours there.
 *
 * Pure: no I/O except in writeTableFiles(). Request bytes are built here
 * by hand, independent of src/.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytes, encodeAttrs, parseList, type Attr } from "../helpers/wire";

// ---- deterministic randomness ------------------------------------------------

/** mulberry32: small, fast, seeded; good enough to pick cases. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Pick {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  one<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  /** Pick by weight: [[weight, value], ...]. */
  weighted<T>(xs: ReadonlyArray<readonly [number, T]>): T {
    const total = xs.reduce((s, [w]) => s + w, 0);
    let x = this.r() * total;
    for (const [w, v] of xs) if ((x -= w) < 0) return v;
    return xs[xs.length - 1][1];
  }
  bytes(n: number, lo = 0, hi = 255): string {
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.range(lo, hi));
    return s;
  }
}

// ---- flag facts --------------------------------------------------------------

export const F = {
  DUP_WARN: 1, DUP_IGNORE: 2, TRY0NULL: 4, TRY1NULL: 8, FIXED: 16, PATTERN: 32, LOCK: 64,
  DUP_REPLACE: 128, SYNC_UPDATE: 256, DEBUG: 512, NO_REGSUB: 2048, NO_PROXY: 4096,
  NO_UNAUTH: 8192, FOLD_FIX: 16384, FOLD_MUL: 32768, OPEN_LOCK: 65536, BULK_UPDATE: 131072,
  MULTI_WRITER: 262144, UTF8_REQUEST: 524288, UTF8_ACTIVE: 1048576,
  /** 3.7's dict.h has this one too: the table's values are file names to read. */
  SRC_RHS_IS_FILE: 2097152,
} as const;
const ALL_BITS = Object.values(F).filter((b) => b !== F.SRC_RHS_IS_FILE);
const IMPL = F.FIXED | F.PATTERN | F.MULTI_WRITER;
const RQST = F.FOLD_FIX | F.FOLD_MUL | F.LOCK | F.DUP_REPLACE | F.DUP_WARN | F.DUP_IGNORE | F.SYNC_UPDATE | F.NO_REGSUB | F.NO_PROXY | F.NO_UNAUTH | F.UTF8_REQUEST;
/** Bits that select a table instance (everything but implementation and per-request bits). */
export const INST_MASK = ~(IMPL | RQST) >>> 0;

/**
 * The unsigned value the C reference reads from a flags string, as glibc's
 * sscanf(s, "%u%c") does (skip white space, optional sign, decimal digits,
 * strtoul wrap-around, then truncation to 32 bits; anything after the digits
 * is junk), or null when it calls the string malformed.
 */
export function cFlagsValue(s: string): number | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)$/.exec(s);
  if (!m) return null;
  let v = BigInt(m[2]);
  const max = (1n << 64n) - 1n;
  if (v > max) v = max;
  else if (m[1] === "-") v = (1n << 64n) - v;
  return Number(v & 0xffffffffn);
}

// ---- tables ------------------------------------------------------------------

export interface TableSet {
  dir: string;
  /** proxy_read_maps value. */
  readMaps: string;
  /** proxy_write_maps value. */
  writeMaps: string;
  /** Approved for the read service / the write service (request `table` values). */
  approvedRead: string[];
  approvedWrite: string[];
  /** Table names nobody approved, odd ones included. */
  unapproved: string[];
  /** Keys worth looking up, per table name. */
  keys: Map<string, string[]>;
  /** How many entries a sequence walk may see, per table (for walk length). */
  sizes: Map<string, number>;
  /** Table names by driver type. */
  byType: Map<string, string[]>;
  /** Tables whose open fails with an error-level log line, per service (see tame()). */
  erroring: Record<"proxymap" | "proxywrite", Set<string>>;
  /** Empty in-memory tables: `next` after a `first` reads past the end in the reference. */
  empty: Set<string>;
  files: Record<string, string>;
}

export const PROBE_TABLE = "static:__probe_reply__";
export const PROBE_REQUEST = encodeAttrs([["request", "lookup"], ["table", PROBE_TABLE], ["flags", "0"], ["key", "probe"]]);
export const PROBE_REPLY = encodeAttrs([["status", "0"], ["value", "__probe_reply__"]]);

const UTF8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** Describe the tables in dir (files are written by writeTableFiles). */
export function makeTables(dir: string): TableSet {
  const p = (f: string) => join(dir, f);
  const files: Record<string, string> = {};

  files["basic"] = [
    "# a comment line",
    "alice\talice@example.com",
    "Bob     bob@example.com",
    "carol   value with  inner   spaces   ",
    "dup     first",
    "dup     second",
    "multi   first line",
    "  continued here",
    "\tand here",
    "",
    "   # indented comment",
    "UPPER   Mixed Case Value",
    "lower   v",
    "nokey",
    "trail   x\r",
    "8bit-\xe9t\xe9   latin1 key",
    "key=eq  a=b,c",
    "empty-next",
    "last    no newline at end",
  ].join("\n");
  files["utf8"] = [
    UTF8("müller    umlaut"),
    UTF8("MÜLLER    upper umlaut"),
    UTF8("日本語      japanese"),
    "bad\xc3\x28key  invalid utf8",
    "plain     ascii",
  ].join("\n") + "\n";
  const big: string[] = [];
  for (let i = 0; i < 300; i++) big.push(`k${String(i).padStart(4, "0")}\tvalue-${(i * 7919) % 1000}-${"x".repeat(i % 13)}`);
  files["big"] = big.join("\n") + "\n";
  files["empty"] = "";
  files["long"] = `${"L".repeat(2000)} long-key-value\nshort ${"V".repeat(5000)}\n`;

  const th = (f: string) => `texthash:${p(f)}`;
  const tables = {
    texthash: [th("basic"), th("utf8"), th("big"), th("empty"), th("long"), th("missing")],
    inline: ["inline:{a=1,b=2}", "inline:{ {key with space = value with space}, UP=Case, x= }", "inline:{ a=1, {b=two words}, UP=Case }", "inline:{}", "inline:{broken"],
    static: ["static:foo", "static:{a value with spaces}", "static:"],
    fail: ["fail:oops", "fail:"],
    unix: ["unix:passwd.byname", "unix:group.byname"],
  };
  // The unbalanced brace stays last: it swallows whatever follows it in the list.
  const approvedRead = [PROBE_TABLE, ...Object.values(tables).flat().filter((x) => x !== "inline:{broken"), "inline:{broken"];
  const approvedWrite = [PROBE_TABLE, th("basic"), th("missing"), "inline:{a=1,b=2}", "static:foo", "fail:oops", "unix:passwd.byname"];
  const unapproved = [
    "static:bar", "texthash:/etc/passwd", "environ:", "environ:x", "unix:", "inline:{a=1, b=2}",
    "hash:/etc/aliases", "STATIC:foo", `${th("basic")} `, `texthash:${dir}//basic`, "inline:{a=1,b=2}x",
  ];
  // Odd names: no colon (BAD before approval), proxy: prefixes (stripped), empty.
  const odd = ["", "static", ":", "proxy:static:foo", "proxy:proxy:inline:{a=1,b=2}", "proxy:", "static:foo:bar"];

  const keys = new Map<string, string[]>();
  const basicKeys = ["alice", "ALICE", "Alice", "bob", "Bob", "BOB", "carol", "dup", "multi", "UPPER", "upper", "lower", "nokey", "trail", "8bit-\xe9t\xe9", "8BIT-\xc9T\xc9", "key=eq", "empty-next", "last", "missing", "#", "continued", ""];
  keys.set(th("basic"), basicKeys);
  keys.set(th("utf8"), [UTF8("müller"), UTF8("MÜLLER"), UTF8("Müller"), UTF8("日本語"), "bad\xc3\x28key", "plain", "PLAIN", "m\xfcller", "\xff\xfe", ""]);
  keys.set(th("big"), ["k0000", "k0150", "k0299", "K0001", "k0300", "k", ""]);
  keys.set(th("empty"), ["a", ""]);
  keys.set(th("long"), ["L".repeat(2000), "l".repeat(2000), "short", "L".repeat(1999)]);
  keys.set(th("missing"), ["a"]);
  keys.set("inline:{a=1,b=2}", ["a", "b", "A", "c", ""]);
  keys.set("inline:{ {key with space = value with space}, UP=Case, x= }", ["key with space", "up", "UP", "x", "Case"]);
  keys.set("inline:{ a=1, {b=two words}, UP=Case }", ["a", "b", "B", " a", "a "]);
  keys.set("inline:{}", ["a"]);
  keys.set("inline:{broken", ["a"]);
  for (const t of tables.static) keys.set(t, ["anything", ""]);
  for (const t of tables.fail) keys.set(t, ["x"]);
  keys.set("unix:passwd.byname", ["root", "ROOT", "postfix", "nobody", "daemon", "no-such-user-xyz", "0", "root\xe9", ""]);
  keys.set("unix:group.byname", ["root", "postdrop", "postfix", "nogroup", "no-such-group", ""]);

  const sizes = new Map<string, number>([
    [th("basic"), 16], [th("utf8"), 5], [th("big"), 300], [th("empty"), 0], [th("long"), 2],
    ["inline:{a=1,b=2}", 2], ["inline:{ {key with space = value with space}, UP=Case, x= }", 3],
  ]);
  const byType = new Map<string, string[]>(Object.entries(tables));
  const brokenInline = tables.inline.filter((x) => x !== "inline:{a=1,b=2}");
  const erroring = {
    // basic has a duplicate key: an error unless the first open ignores or replaces duplicates.
    proxymap: new Set([th("missing"), th("basic"), ...brokenInline]),
    // The write service opens O_RDWR, which these types refuse.
    proxywrite: new Set([...tables.texthash, ...tables.inline, ...tables.unix]),
  };
  return {
    erroring,
    empty: new Set([th("empty")]),
    dir,
    readMaps: approvedRead.map((t) => `proxy:${t}`).join(" "),
    writeMaps: approvedWrite.map((t) => `proxy:${t}`).join(" "),
    approvedRead,
    approvedWrite,
    unapproved: [...unapproved, ...odd],
    keys,
    sizes,
    byType,
    files,
  };
}

/** Write the table files (readable by mail_owner: 0755 dir, 0644 files). */
export function writeTableFiles(t: TableSet): void {
  mkdirSync(t.dir, { recursive: true, mode: 0o755 });
  chmodSync(t.dir, 0o755);
  for (const [name, content] of Object.entries(t.files)) writeFileSync(join(t.dir, name), bytes(content), { mode: 0o644 });
}

export function typeOf(table: string): string {
  let t = table;
  while (t.startsWith("proxy:")) t = t.slice(6);
  const i = t.indexOf(":");
  return i < 0 ? "" : t.slice(0, i);
}

// ---- cases -------------------------------------------------------------------

export type Service = "proxymap" | "proxywrite";
export type ReqType = "open" | "lookup" | "update" | "delete" | "sequence";

export interface Round {
  /** Bytes sent. */
  bytes: Buffer;
  /** Request type as built (before any mutation), for reading the reply. */
  type: ReqType | "raw";
  /** A list cut short: no reply is expected until more bytes come; always the last round. */
  truncated?: boolean;
}

/**
 * How the bytes of a round frame: exactly one attribute list ("one"), more
 * than one ("several"), or a list left open ("partial"). The reference
 * parses one request per readable event and discards whatever else the same
 * read() brought in, so only "one" rounds have timing-free answers there.
 */
export function framing(b: Uint8Array): "one" | "several" | "partial" {
  const first = parseList(b);
  if (!first) return "partial";
  if (first.used === b.length) return "one";
  let rest = Buffer.from(b).subarray(first.used);
  for (;;) {
    const p = parseList(rest);
    if (!p) return rest.length ? "partial" : "several";
    rest = rest.subarray(p.used);
    if (!rest.length) return "several";
  }
}

/** True when every round frames as exactly one list (the compared cases). */
export function singleLists(c: Case): boolean {
  return c.rounds.every((r) => !r.truncated && framing(r.bytes) === "one");
}

export interface Case {
  id: number;
  service: Service;
  label: string;
  rounds: Round[];
  /** Why the reference process dies on this case (PROTOCOL.md section 7). */
  kill?: string;
}

/** A request before encoding. */
export interface Req {
  type: ReqType;
  table: string;
  flags: string;
  key?: string;
  value?: string;
  func?: string;
  /** 3.11 shape: the instance_flags value. */
  inst?: string;
}

export function reqAttrs(r: Req, shape: "3.7" | "3.11"): Attr[] {
  const a: Attr[] = [["request", r.type], ["table", r.table]];
  if (shape === "3.11") {
    a.push(["instance_flags", r.inst ?? "0"]);
    if (r.type !== "open") a.push(["flags", r.flags]);
  } else {
    a.push(["flags", r.type === "open" && r.inst !== undefined ? r.inst : r.flags]);
  }
  if (r.type === "lookup" || r.type === "update" || r.type === "delete") a.push(["key", r.key ?? ""]);
  if (r.type === "update") a.push(["value", r.value ?? ""]);
  if (r.type === "sequence") a.push(["function", r.func ?? "0"]);
  return a;
}

/** Would this request kill the 3.7.11 reference process? Returns the reason. */
export function killReason(service: Service, r: Req, t: TableSet): string | undefined {
  let name = r.table;
  while (name.startsWith("proxy:")) name = name.slice(6);
  const approved = (service === "proxymap" ? t.approvedRead : t.approvedWrite).includes(name);
  if (!approved) return undefined;
  // The read service refuses update and delete before it opens anything.
  if (service === "proxymap" && (r.type === "update" || r.type === "delete")) return undefined;
  const flagsText = r.type === "open" ? r.inst ?? r.flags : r.flags;
  const v = cFlagsValue(flagsText);
  if (v === null) return undefined;
  if (r.type === "sequence" && ![0, 1].includes(cFlagsValue(r.func ?? "0") ?? -1)) return undefined;
  if (v & F.OPEN_LOCK && v & F.LOCK) return "flags with both OPEN_LOCK and LOCK (panic in dict_open)";
  const type = typeOf(name);
  if (name.endsWith(":") && name.indexOf(":") === name.length - 1) return "table name with no name part (fatal: open dictionary: expecting \"type:name\" form)";
  if (r.type === "sequence" && (type === "static" || (type === "unix" && service === "proxymap")))
    return `sequence on ${type} (fatal: sequence operation is not supported)`;
  if ((r.type === "update" || r.type === "delete") && service === "proxywrite" && type === "static")
    return `${r.type} on ${type} through proxywrite (fatal: ${r.type} operation is not supported)`;
  return undefined;
}

/**
 * Keep the reference alive in the compared phase. Each failed table open logs
 * one error-level line, and the reference's msg(3) ends the process at its
 * 13th error ("fatal: too many errors - program terminated"). An open
 * happens once per table name and instance flags (the INST bits), so on
 * tables whose open fails, requests keep their per-request bits but lose
 * their instance bits: at most one error per such table and process.
 * The death itself is exercised by the "13 errors" case of the last phase.
 */
export function tame(service: Service, r: Req, t: TableSet): Req {
  let name = r.table;
  while (name.startsWith("proxy:")) name = name.slice(6);
  // SRC_RHS_IS_FILE makes most opens fail ("open foo: No such file"), so it goes everywhere.
  if (r.type === "sequence" && t.empty.has(name) && cFlagsValue(r.func ?? "0") === 1) r = { ...r, func: "0" };
  const drop = t.erroring[service].has(name) ? INST_MASK : F.SRC_RHS_IS_FILE;
  const fix = (f: string | undefined) => {
    if (f === undefined) return f;
    const v = cFlagsValue(f);
    return v === null || (v & drop) === 0 ? f : String((v & ~drop) >>> 0);
  };
  return { ...r, flags: fix(r.flags)!, inst: fix(r.inst) };
}

/** Instance-flag values for the case that makes the reference log 13 errors. */
export const ERROR_BOUND_FLAGS = [4, 8, 12, 1024, 1028, 1032, 1036, 131072, 131076, 131080, 131084, 132096, 132100, 132104];

export const COMMON_FLAGS = [
  "0", "524353", "16384", "524288", "64", "1", "4", "8", "12", "16448", "540672", "557120", "8192", "2048", "4096",
];
export const WEIRD_FLAGS = [
  "", "abc", "12abc", "-1", "+5", " 5", "5 ", "0x10", "007", "4294967296", "4294967297", "99999999999999999999",
  "2147483648", "-2147483649", "1e3", "\t64", "--1", "+", "-0", "18446744073709551615", "18446744073709551616",
];

/** A flags string: common values, random bit sets, random 32-bit numbers, or weird text. */
export function pickFlags(pk: Pick): string {
  return pk.weighted<() => string>([
    [40, () => pk.one(COMMON_FLAGS)],
    [30, () => {
      let v = 0;
      for (const b of ALL_BITS) if (pk.chance(0.2)) v |= b;
      return String(v >>> 0);
    }],
    [8, () => String(pk.int(4294967296))],
    [12, () => pk.one(WEIRD_FLAGS)],
  ])();
}

/** A key for a table: known keys, case variants, empty, 8-bit, invalid UTF-8, long. */
function pickKey(pk: Pick, t: TableSet, table: string): string {
  const known = t.keys.get(table) ?? ["a", "root", "alice"];
  return pk.weighted<() => string>([
    [55, () => pk.one(known)],
    [8, () => pk.one(known).toUpperCase()],
    [6, () => ""],
    [8, () => pk.bytes(pk.range(1, 12), 1, 255)],
    [5, () => pk.one(["\xc3\x28", "\xe9", "a\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", UTF8("Ä"), UTF8("ÄÖÜ")])],
    [5, () => pk.one(["a", "L", "k"]).repeat(pk.one([255, 256, 1023, 1024, 4096, 5000, 10000, 70000]))],
    [5, () => pk.one(["key with space", " lead", "trail ", "tab\there", "a=b", "a,b", "{a}", "#", "$name", "%s"])],
    [8, () => `k${String(pk.int(320)).padStart(4, "0")}`],
  ])();
}

function pickTable(pk: Pick, t: TableSet, service: Service): string {
  const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
  return pk.weighted<() => string>([
    [70, () => pk.one(approved.filter((x) => x !== PROBE_TABLE))],
    [12, () => pk.one(t.unapproved)],
    [10, () => pk.one(service === "proxymap" ? t.approvedWrite.filter((x) => x !== PROBE_TABLE) : t.approvedRead)],
    [8, () => pk.one(["proxy:", "proxy:proxy:"]) + pk.one(approved.filter((x) => x !== PROBE_TABLE))],
  ])();
}

function pickReq(pk: Pick, t: TableSet, service: Service, type?: ReqType): Req {
  const table = pickTable(pk, t, service);
  const rt = type ?? pk.weighted<ReqType>([[35, "lookup"], [20, "open"], [15, "sequence"], [15, "update"], [15, "delete"]]);
  const r: Req = { type: rt, table, flags: pickFlags(pk) };
  if (rt === "lookup" || rt === "update" || rt === "delete") r.key = pickKey(pk, t, table);
  if (rt === "update") r.value = pk.weighted<() => string>([[70, () => "v"], [15, () => ""], [15, () => pk.bytes(pk.range(1, 40), 1, 255)]])();
  if (rt === "sequence") r.func = pk.weighted<() => string>([[45, () => "0"], [40, () => "1"], [15, () => pk.one(["2", "-1", "", "x", "01", " 1"])]])();
  return r;
}

type Mutation = (a: Attr[], pk: Pick) => Attr[] | string;

const MUTATIONS: ReadonlyArray<readonly [number, string, Mutation]> = [
  [10, "drop", (a, pk) => { const i = pk.range(1, a.length - 1); return a.filter((_, j) => j !== i); }],
  [10, "swap", (a, pk) => { if (a.length < 3) return a; const i = pk.range(1, a.length - 2); const b = [...a]; [b[i], b[i + 1]] = [b[i + 1], b[i]]; return b; }],
  [8, "dup", (a, pk) => { const i = pk.range(0, a.length - 1); const b = [...a]; b.splice(i, 0, a[i]); return b; }],
  [10, "extra", (a, pk) => { const b = [...a]; b.splice(pk.range(1, a.length), 0, pk.one<Attr>([["foo", "bar"], ["instance_flags", "0"], ["key", "x"], ["value", "y"], ["flags", "0"], ["status", "0"]])); return b; }],
  [10, "request", (a, pk) => [["request", pk.one(["frob", "", "LOOKUP", "open ", "lookup\x01", "look", "sequence2", "Open", "\xe9"])], ...a.slice(1)]],
  [8, "not-first", (a, pk) => (pk.chance(0.5) ? a.slice(1) : [...a.slice(1, 2), a[0], ...a.slice(2)])],
  [6, "rename", (a, pk) => { const i = pk.range(0, a.length - 1); const b = [...a]; b[i] = [pk.one(["Request", "tabl", "flag", "keys", "x", "\xff"]), a[i][1]]; return b; }],
  [5, "empty-list", () => []],
  [5, "early-end", (a, pk) => {
    // An empty name inside the list ends it early; the rest reads as the next list.
    const i = pk.range(1, a.length - 1);
    let s = "";
    a.forEach(([n, v], j) => { s += j === i ? `\0${n}\0${v}\0` : `${n}\0${v}\0`; });
    return s + "\0";
  }],
  [5, "garbage", (a, pk) => pk.bytes(pk.range(1, 64)) + "\0\0"],
  [4, "no-value", (a) => a.map(([n, v]) => `${n}\0${v}\0`).join("").slice(0, -1) + "\0"],
];

export function applyMutation(attrs: Attr[], pk: Pick): { bytes: Buffer; name: string } {
  const [, name, m] = pk.weighted(MUTATIONS.map((x) => [x[0], x] as const));
  const out = m(attrs, pk);
  return { bytes: typeof out === "string" ? bytes(out) : encodeAttrs(out), name };
}

export interface CorpusOptions {
  seed: number;
  /** Random cases on top of the systematic ones. */
  count: number;
}

/** The whole corpus: systematic cases first, then seeded random ones. */
export function generateCorpus(t: TableSet, opts: CorpusOptions): Case[] {
  const pk = new Pick(rng(opts.seed));
  const cases: Case[] = [];
  const add = (service: Service, label: string, rounds: Round[], kill?: string) =>
    cases.push({ id: cases.length, service, label, rounds, kill });
  const r37 = (r: Req): Round => ({ bytes: encodeAttrs(reqAttrs(r, "3.7")), type: r.type });
  const r311 = (r: Req): Round => ({ bytes: encodeAttrs(reqAttrs(r, "3.11")), type: r.type });
  const kill = (service: Service, rs: Req[]) => rs.map((r) => killReason(service, r, t)).find((x) => x);

  // 1. Systematic: every approved table, every request type, a real client's flags.
  for (const service of ["proxymap", "proxywrite"] as const) {
    const approved = (service === "proxymap" ? t.approvedRead : t.approvedWrite).filter((x) => x !== PROBE_TABLE);
    for (const table of [...approved, ...t.unapproved]) {
      const rs: Req[] = [{ type: "open", table, flags: "0" }];
      for (const key of t.keys.get(table) ?? ["a"]) rs.push({ type: "lookup", table, flags: "524353", key });
      for (const key of (t.keys.get(table) ?? ["a"]).slice(0, 3)) rs.push({ type: "lookup", table, flags: "0", key });
      rs.push({ type: "update", table, flags: "0", key: "new", value: "v" }, { type: "delete", table, flags: "0", key: "alice" });
      const safe = rs.filter((r) => !killReason(service, r, t));
      add(service, `systematic ${service} ${table}`, safe.map(r37));
      for (const r of rs.filter((r) => killReason(service, r, t))) add(service, `systematic-kill ${r.type} ${table}`, [r37(r)], killReason(service, r, t));
      // Sequence walk: first, then next past the end.
      const walk: Req[] = [{ type: "sequence", table, flags: "0", func: "0" }];
      for (let i = 0; i <= Math.min(t.sizes.get(table) ?? 2, 400); i++) walk.push({ type: "sequence", table, flags: "0", func: "1" });
      const k = kill(service, walk) ?? (t.empty.has(table.replace(/^(proxy:)+/, "")) ? "sequence next after first on an empty table (reads past the end of the list: SIGSEGV)" : undefined);
      add(service, `walk ${service} ${table}`, k && !t.empty.has(table.replace(/^(proxy:)+/, "")) ? walk.slice(0, 1).map(r37) : walk.map(r37), k);
    }
  }
  // postmap-like clients: open with 0, lookups with 524353 (UTF8_REQUEST|LOCK|DUP_WARN), keys folded.
  for (const table of t.approvedRead.filter((x) => x !== PROBE_TABLE)) {
    const keys = t.keys.get(table) ?? ["a"];
    const rs: Req[] = [{ type: "open", table, flags: "0" }, ...keys.map((key): Req => ({ type: "lookup", table, flags: "524353", key: key.toLowerCase() }))];
    const k = kill("proxymap", rs);
    add("proxymap", `postmap-like ${table}`, (k ? rs.slice(0, 1) : rs).map(r37), k);
  }
  // Odd flag strings on a lookup (the reference's sscanf reading), odd sequence functions.
  for (const flags of WEIRD_FLAGS) {
    const r: Req = { type: "lookup", table: "static:foo", flags, key: "k" };
    add("proxymap", `flags ${JSON.stringify(flags)}`, [r37(r)], killReason("proxymap", r, t));
  }
  for (const func of ["2", "-1", "", "x", "01", " 1", "4294967296", "1 "]) add("proxymap", `function ${JSON.stringify(func)}`, [r37({ type: "sequence", table: "inline:{a=1,b=2}", flags: "0", func })]);
  // 3.11 shapes of every request type: a 3.7 installation reads them as malformed.
  for (const table of ["static:foo", "inline:{a=1,b=2}", t.approvedRead[0], "unix:passwd.byname", "fail:oops", "static:bar"]) {
    add("proxymap", `3.11 shapes ${table}`, [
      r311({ type: "open", table, flags: "0", inst: "0" }),
      r311({ type: "lookup", table, flags: "524353", inst: "0", key: (t.keys.get(table) ?? ["a"])[0] }),
      r311({ type: "lookup", table, flags: "16384", inst: "0", key: "NOPE" }),
      r311({ type: "update", table, flags: "0", inst: "0", key: "k", value: "v" }),
      r311({ type: "delete", table, flags: "0", inst: "0", key: "k" }),
    ]);
  }
  add("proxymap", "3.11 walk inline", [r311({ type: "sequence", table: "inline:{a=1,b=2}", flags: "0", inst: "0", func: "0" }), r311({ type: "sequence", table: "inline:{a=1,b=2}", flags: "0", inst: "0", func: "1" }), r311({ type: "sequence", table: "inline:{a=1,b=2}", flags: "0", inst: "0", func: "1" })]);
  add("proxywrite", "3.11 write refusals", [r311({ type: "update", table: "inline:{a=1,b=2}", flags: "0", inst: "0", key: "k", value: "v" }), r311({ type: "delete", table: "fail:oops", flags: "0", inst: "0", key: "k" })]);
  add("proxymap", "rhs-is-file", ["static:foo", "inline:{a=1,b=2}", `texthash:${t.dir}/big`, "unix:passwd.byname", "fail:oops"].map((table) => r37({ type: "lookup", table, flags: String(F.SRC_RHS_IS_FILE), key: "k0001" })));
  // Empty attribute lists and a lone garbage stream, many lists in one write.
  add("proxymap", "empty list then lookup", [{ bytes: bytes("\0"), type: "raw" }, r37({ type: "lookup", table: "static:foo", flags: "0", key: "k" })]);
  add("proxymap", "pipelined lookups in one write", [{ bytes: Buffer.concat(["alice", "bob", "nobody"].map((key) => encodeAttrs(reqAttrs({ type: "lookup", table: t.approvedRead[1], flags: "0", key }, "3.7")))), type: "raw" }]);

  // 2. Section 7 deaths, each on its own connection (sent last, not compared).
  add("proxymap", "kill: lookup with OPEN_LOCK|LOCK", [r37({ type: "lookup", table: t.approvedRead[1], flags: String(F.OPEN_LOCK | F.LOCK), key: "alice" })], "flags with both OPEN_LOCK and LOCK (panic in dict_open)");
  add("proxymap", "kill: open with OPEN_LOCK|LOCK", [r37({ type: "open", table: "inline:{a=1,b=2}", flags: String(F.OPEN_LOCK | F.LOCK | F.FOLD_FIX) })], "flags with both OPEN_LOCK and LOCK (panic in dict_open)");
  add("proxymap", "kill: flags -1", [r37({ type: "lookup", table: "unix:passwd.byname", flags: "-1", key: "root" })], "flags with both OPEN_LOCK and LOCK (panic in dict_open)");
  add("proxymap", "kill: sequence static", [r37({ type: "sequence", table: "static:foo", flags: "0", func: "0" })], "sequence on static (fatal: sequence operation is not supported)");
  add("proxymap", "kill: sequence unix", [r37({ type: "sequence", table: "unix:passwd.byname", flags: "0", func: "0" })], "sequence on unix (fatal: sequence operation is not supported)");
  add("proxywrite", "kill: update static", [r37({ type: "update", table: "static:foo", flags: "0", key: "k", value: "v" })], "update on static through proxywrite (fatal: update operation is not supported)");
  add("proxywrite", "kill: delete static", [r37({ type: "delete", table: "static:foo", flags: "0", key: "k" })], "delete on static through proxywrite (fatal: delete operation is not supported)");

  add("proxymap", "kill: 13 failed opens", ERROR_BOUND_FLAGS.map((f) => r37({ type: "lookup", table: `texthash:${t.dir}/missing`, flags: String(f), key: "a" })), "13th error-level log line (fatal: too many errors - program terminated)");

  // 3. Seeded random cases.
  for (let n = 0; n < opts.count; n++) {
    const service: Service = pk.chance(0.8) ? "proxymap" : "proxywrite";
    const nRounds = pk.weighted([[50, 1], [25, 2], [15, 4], [10, 8]] as const);
    const rounds: Round[] = [];
    const notes: string[] = [];
    let killed: string | undefined;
    for (let i = 0; i < nRounds; i++) {
      let r = pickReq(pk, t, service);
      const shape = pk.chance(0.12) ? "3.11" : "3.7";
      if (shape === "3.11") r.inst = pk.chance(0.8) ? String((cFlagsValue(r.flags) ?? 0) & INST_MASK) : pickFlags(pk);
      r = tame(service, r, t);
      const k = killReason(service, r, t) ?? (shape === "3.11" ? killReason(service, { ...r, flags: r.type === "open" ? r.inst! : r.flags }, t) : undefined);
      if (k) {
        // Keep deaths rare and last: at most one per case, and only 1 in 20 is kept.
        if (!pk.chance(0.05)) continue;
        killed = k;
      }
      const attrs = reqAttrs(r, shape);
      if (pk.chance(0.3) && !killed) {
        const m = applyMutation(attrs, pk);
        rounds.push({ bytes: m.bytes, type: r.type });
        notes.push(`${r.type}/${shape}/${m.name}`);
      } else {
        rounds.push(shape === "3.11" ? r311(r) : r37(r));
        notes.push(`${r.type}/${shape}`);
      }
      if (killed) break;
    }
    if (!rounds.length) continue;
    if (!killed && pk.chance(0.03)) {
      const last = rounds[rounds.length - 1].bytes;
      rounds.push({ bytes: last.subarray(0, pk.range(1, last.length - 1)), type: "raw", truncated: true });
      notes.push("truncated");
    }
    add(service, `random ${notes.join(" ")}`, rounds, killed);
  }
  // Each death costs a restart of the reference (master throttles the service): keep the
  // explicit ones and one more of each kind.
  const seen = new Map<string, number>();
  const kept = cases.filter((c) => {
    if (!c.kill || c.label.startsWith("kill:")) return true;
    const k = `${c.service} ${c.kill}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
    return seen.get(k)! <= 1;
  });
  kept.forEach((c, i) => (c.id = i));
  return kept;
}
