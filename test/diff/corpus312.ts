/**
 * corpus312.ts - the seeded corpus of the Postfix 3.12 differential test
 * (postfix312.test.ts): 3.11-shaped requests, as every client of a 3.11+
 * Postfix sends them, to the 3.12 C proxymap and to ours, each installed in
 * a private 3.12 instance.
 *
 * Tables: what the 3.12 oracle is built with (no PCRE, SQL or LDAP):
 * texthash, inline, static, fail, unix, hash, btree, lmdb (files made by the
 * tree's own postmap), cidr, regexp (patterns-corpus.ts's files), unionmap
 * and pipemap (one union has a socketmap member that answers in 50 ms),
 * environ, internal, socketmap, tcp (the test's own servers). The write
 * service gets its own hash, btree and lmdb files and an internal table.
 *
 * Each side has its own table directory (writes must not meet), so the corpus
 * is generated once per side from the same seed: the cases are the same, only
 * the directory in table names differs (makeTables312 names nothing by
 * position in that directory).
 *
 * Requests: every operation in the 3.11 shape with several instance_flags
 * values per table (with and without FOLD_FIX, UTF8_REQUEST, LOCK, 512 (DEBUG
 * up to 3.11; 3.12 dropped that flag for its debug: table type),
 * NO_REGSUB, ...), request flags as a client sends them (the flags the 3.12
 * server answered the open of that table and instance flags with, learned
 * first: `clientFlags`), with a request bit changed, with another instance's
 * flags (the 524353 / 540737 / 1589329 case) or random; then
 * malformed requests: missing, extra, duplicated, misordered and renamed
 * attributes, 3.7-shaped requests, `request=lookup table=`, bad numbers,
 * unknown request names. Only cases whose rounds are one attribute list
 * each (the reference reads one request per read()).
 *
 * What would kill the 3.12 C process is left out (tame312): instance flags
 * with OPEN_LOCK, BULK_UPDATE (lmdb's bulk transaction on a read-only file:
 * "lock dictionary: Bad file descriptor") or SRC_RHS_IS_FILE, NO_UNAUTH on untrusted tables, hash,
 * btree and lmdb requests whose flags lack both TRY0NULL and TRY1NULL (a
 * panic in dict_db and dict_lmdb), sequence on types without it, update/delete on types that refuse
 * them on the write service, a second failed open of one table (13 errors
 * end the process), "next" on an instance no "first" of the same case
 * started (dict_db panics without a cursor), an empty lmdb key (fatal:
 * MDB_BAD_VALSIZE). Pure except the file writers.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytes, encodeAttrs, type Attr } from "../helpers/wire";
import { F, Pick, applyMutation, cFlagsValue, pickFlags, reqAttrs, rng, singleLists, typeOf, type Case, type Req, type ReqType, type Round, type Service } from "./corpus";
import { patternFiles } from "./patterns-corpus";

const UTF8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** The socketmap and tcp endpoints (shared by both sides). */
export interface Servers312 {
  /** socketmap table that answers at once. */
  sockFast: string;
  /** socketmap table whose server answers 50 ms late (the asynchronous union member). */
  sockSlow: string;
  tcp: string;
}

/** What the socketmap and tcp servers know (map name -> key -> value). */
export const SERVER312_DATA: Record<string, string> = {
  a: "value-a",
  b: "value-b",
  key: "value of key",
  "8bit-\xe9": "8-bit \xe9t\xe9",
  carol: "carol-remote",
};

export const PROBE_TABLE = "static:__probe_reply__";

export interface Tables312 {
  dir: string;
  named: Record<string, string>;
  readMaps: string;
  writeMaps: string;
  approvedRead: string[];
  approvedWrite: string[];
  unapproved: string[];
  keys: Map<string, string[]>;
  /** Text sources: file name -> content (hash/btree/lmdb are made from *.src by postmap). */
  files: Record<string, string>;
  /** `postmap TYPE:FILE` runs that make the database files (FILE.src renamed first). */
  databases: string[];
  /** Tables whose open fails with an error-level line: one instance flags value only. */
  erroring: Record<Service, Set<string>>;
}

/** The lab table of the issue: a key that folds, an 8-bit one, UTF-8 ones. */
const LAB = [
  "Carol@Example.COM\tcarol-box",
  "alice\talice-box",
  "Bob\tbob-box",
  "UPPER\tupper-value",
  "8bit-\xe9t\xe9\tlatin1 key",
  `${UTF8("Müller")}\tumlaut`,
  `${UTF8("日本")}\tjapanese`,
  "multi\tfirst line",
  "  continued",
].join("\n") + "\n";

const DB_SRC = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(3, "0")}\tv${i}-${"x".repeat(i % 7)}`).concat(["Carol@Example.COM\tcarol-db", "alice\talice-db", "MiXeD\tmixed-db"]).join("\n") + "\n";

export function makeTables312(dir: string, s: Servers312): Tables312 {
  const p = (f: string) => join(dir, f);
  const pf = patternFiles(dir);
  const files: Record<string, string> = {
    lab: LAB,
    "db.src": DB_SRC,
    "bt.src": DB_SRC,
    "lm.src": DB_SRC,
    "wdb.src": "seed\tone\nalice\twrite-db\n",
    "wbt.src": "seed\tone\nalice\twrite-bt\n",
    "wlm.src": "seed\tone\nalice\twrite-lm\n",
    "main.cidr": pf["main.cidr"],
    "main.regexp": pf["main.regexp"],
  };
  const named: Record<string, string> = {
    lab: `texthash:${p("lab")}`,
    missing: `texthash:${p("missing")}`,
    inline: "inline:{a=1,b=2,Mixed=Case,{k=v w}}",
    static: "static:foo",
    fail: "fail:oops",
    unix: "unix:passwd.byname",
    hash: `hash:${p("db")}`,
    btree: `btree:${p("bt")}`,
    lmdb: `lmdb:${p("lm")}`,
    cidr: `cidr:${p("main.cidr")}`,
    regexp: `regexp:${p("main.regexp")}`,
    union: `unionmap:{texthash:${p("lab")},static:st}`,
    unionSlow: `unionmap:{inline:{a=inl-a},${s.sockSlow}}`,
    pipe: "pipemap:{inline:{a=b,x=y},inline:{b=c}}",
    environ: "environ:env",
    sock: s.sockFast,
    tcp: s.tcp,
    wHash: `hash:${p("wdb")}`,
    wBtree: `btree:${p("wbt")}`,
    wLmdb: `lmdb:${p("wlm")}`,
    internal: "internal:mem",
  };
  const n = named;
  const read = [n.lab, n.missing, n.inline, n.static, n.fail, n.unix, n.hash, n.btree, n.lmdb, n.cidr, n.regexp, n.union, n.unionSlow, n.pipe, n.environ, n.sock, n.tcp];
  const write = [n.wHash, n.wBtree, n.wLmdb, n.internal, n.inline];
  const keys = new Map<string, string[]>();
  const labKeys = ["Carol@Example.COM", "carol@example.com", "CAROL@EXAMPLE.COM", "alice", "ALICE", "bob", "Bob", "upper", "UPPER", "8bit-\xe9t\xe9", "8BIT-\xc9T\xc9", UTF8("müller"), UTF8("Müller"), UTF8("MÜLLER"), UTF8("日本"), "multi", "nope", "", "bad\xc3\x28"];
  const dbKeys = ["k000", "k013", "k039", "K001", "k040", "Carol@Example.COM", "carol@example.com", "alice", "mixed", "MiXeD", "", "\xe9"];
  keys.set(n.lab, labKeys);
  keys.set(n.missing, ["a"]);
  keys.set(n.inline, ["a", "A", "b", "mixed", "Mixed", "k", "c", ""]);
  keys.set(n.static, ["anything", ""]);
  keys.set(n.fail, ["x"]);
  keys.set(n.unix, ["root", "ROOT", "postfix", "nobody", "no-such-user-xyz", ""]);
  for (const t of [n.hash, n.btree, n.lmdb]) keys.set(t, dbKeys);
  for (const t of [n.wHash, n.wBtree, n.wLmdb, n.internal]) keys.set(t, ["seed", "alice", "ALICE", "new", "New", "gone", "", "\xe9t\xe9"]);
  keys.set(n.cidr, ["192.168.1.5", "10.0.0.1", "11.0.0.1", "172.16.5.9", "2001:db8::1", "::1", "9.9.9.9", "1.2.3.4", "foo", "", "256.1.1.1"]);
  keys.set(n.regexp, ["user1@example.com", "USER1@EXAMPLE.COM", "abcdefghi", "CASE", "strict", "STRICT", "neg", "nkeep", "if-yes", "dollar", "8bit-\xe9", UTF8("ü-mlaut"), "x", ""]);
  keys.set(n.union, labKeys.slice(0, 8));
  keys.set(n.unionSlow, ["a", "b", "A", "key", "none"]);
  keys.set(n.pipe, ["a", "x", "b", "A"]);
    // (MAIL_CONFIG differs per instance.)
  keys.set(n.environ, ["PATH", "path", "MAIL_LOGTAG", "mail_logtag", "NOSUCH", ""]);
  keys.set(n.sock, ["a", "b", "A", "key", "KEY", "8bit-\xe9", "carol", "none", ""]);
  keys.set(n.tcp, ["a", "b", "key", "8bit-\xe9", "carol", "none", ""]);
  return {
    dir, named, files, keys,
    databases: [`hash:${p("db")}`, `btree:${p("bt")}`, `lmdb:${p("lm")}`, `hash:${p("wdb")}`, `btree:${p("wbt")}`, `lmdb:${p("wlm")}`],
    readMaps: [PROBE_TABLE, ...read].map((t) => `proxy:${t}`).join(" "),
    writeMaps: [PROBE_TABLE, ...write].map((t) => `proxy:${t}`).join(" "),
    approvedRead: read,
    approvedWrite: write,
    unapproved: ["static:bar", `texthash:${dir}//lab`, "inline:{a=1}", "environ:x", "", "static", ":", "proxy:", "static:foo:bar"],
    erroring: {
      proxymap: new Set([n.missing]),
      // The write service opens O_RDWR|O_CREAT, which inline refuses.
      proxywrite: new Set([n.inline]),
    },
  };
}

/** Write the sources: 0755 directory, 0644 files (proxymap reads them as mail_owner). */
export function writeFiles312(t: Tables312): void {
  mkdirSync(t.dir, { recursive: true, mode: 0o755 });
  chmodSync(t.dir, 0o755);
  for (const [name, content] of Object.entries(t.files)) {
    const file = join(t.dir, name.endsWith(".src") ? name.slice(0, -4) : name);
    writeFileSync(file, bytes(content), { mode: 0o644 });
  }
}

// ---- flags -------------------------------------------------------------------

/** Instance flags real 3.11+ clients open with, and ones that change what an instance is. */
export const INST_FLAGS = [
  0, 64, 524353 /* postmap -q */, 540737 /* + FOLD_FIX (smtpd, cleanup) */, 524288, 16384, 540736,
  524865 /* + 512: DEBUG before 3.12, no flag in 3.12 */, 2048 /* NO_REGSUB */, 16385, 1,
] as const;

/** Request bits a client may change between requests on one table. */
const REQUEST_BITS = [F.FOLD_FIX, F.FOLD_MUL, F.UTF8_REQUEST, F.LOCK, F.DUP_WARN, F.DUP_IGNORE, F.DUP_REPLACE, F.NO_REGSUB, F.SYNC_UPDATE];

const strip = (name: string) => name.replace(/^(proxy:)+/, "");

/** hash, btree (dict_db) and lmdb panic on a request without TRY0NULL or TRY1NULL. */
function needsTry(table: string): boolean {
  return ["hash", "btree", "lmdb"].includes(typeOf(strip(table)));
}

/** Types whose sequence is fatal in the C proxymap (dict_alloc: "sequence operation is not supported"). */
const NO_SEQUENCE = new Set(["static", "unix", "cidr", "regexp", "unionmap", "pipemap", "environ", "socketmap", "tcp"]);

/** Key of the flags a client learned from the open reply: "table\0instance flags", the table directory as "@". */
export const clientKey = (table: string, inst: number) => `${table}\0${inst}`;

/**
 * Make a request one the 3.12 C process survives (see the file comment);
 * undefined when it cannot be made so (left out).
 */
export function tame312(service: Service, r: Req, t: Tables312, inCase: Set<string>): Req | undefined {
  const name = strip(r.table);
  const approved = (service === "proxymap" ? t.approvedRead : t.approvedWrite).includes(name);
  if (!approved) return r;
  const type = typeOf(name);
  const fix = (text: string | undefined, drop: number, add = 0): string | undefined => {
    if (text === undefined) return text;
    const v = cFlagsValue(text);
    if (v === null) return text;
    const w = ((v & ~drop) | add) >>> 0;
    return w === v ? text : String(w);
  };
  let inst = fix(r.inst, F.OPEN_LOCK | F.SRC_RHS_IS_FILE | F.BULK_UPDATE | (["socketmap", "tcp", "unionmap"].includes(type) ? F.NO_UNAUTH : 0));
  if (t.erroring[service].has(name)) inst = "0";
  const hasTry = ((cFlagsValue(r.flags) ?? F.TRY0NULL) & (F.TRY0NULL | F.TRY1NULL)) !== 0;
  const out: Req = { ...r, inst, flags: fix(r.flags, 0, needsTry(name) && !hasTry ? F.TRY1NULL : 0)! };
  if (service === "proxymap" && (r.type === "update" || r.type === "delete")) return out; // refused before any open
  // An empty lmdb key with TRY0NULL is a zero-length LMDB key: fatal (MDB_BAD_VALSIZE).
  if (type === "lmdb" && r.key === "") return undefined;
  const instV = cFlagsValue(inst ?? "0");
  if (instV === null || cFlagsValue(out.flags) === null) return out; // BAD before any open
  if (r.type === "sequence") {
    if (t.erroring[service].has(name)) return out; // a surrogate answers
    if (NO_SEQUENCE.has(type) || type === "fail") return undefined;
    const f = cFlagsValue(r.func ?? "0");
    if (f !== 0 && f !== 1) return out; // BAD
    const k = clientKey(name, instV);
    if (f === 1 && !inCase.has(k)) out.func = "0";
    inCase.add(k);
  }
  if (service === "proxywrite" && (r.type === "update" || r.type === "delete")) {
    if (!t.erroring.proxywrite.has(name) && !["hash", "btree", "lmdb", "internal"].includes(type)) return undefined;
    // A walk's cursor points into the table: a change under it is undefined behaviour in C.
    if ([...inCase].some((k) => k.startsWith(`${name}\0`))) return undefined;
  }
  return out;
}

// ---- cases -------------------------------------------------------------------

export interface Corpus312Options {
  seed: number;
  /** Random cases on top of the systematic ones. */
  count: number;
  /** The flags the 3.12 server answered each open with (clientKey -> flags); absent ones use the instance flags. */
  clientFlags: Map<string, number>;
}

/** Rounds that open every approved table with every INST_FLAGS value (the first case; it teaches clientFlags). */
export function openingRounds(t: Tables312, service: Service): Round[] {
  const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
  const out: Round[] = [];
  for (const table of approved)
    for (const inst of INST_FLAGS) {
      const r = tame312(service, { type: "open", table, flags: "0", inst: String(inst) }, t, new Set());
      if (r) out.push(round(r));
    }
  return out;
}

function round(r: Req, shape: "3.7" | "3.11" = "3.11"): Round {
  return { bytes: encodeAttrs(reqAttrs(r, shape)), type: r.type };
}

/** The whole corpus (3.11 shape), systematic cases first, then seeded random ones. */
export function generateCorpus312(t: Tables312, o: Corpus312Options): Case[] {
  const pk = new Pick(rng(o.seed));
  const cases: Case[] = [];
  const add = (service: Service, label: string, rounds: Round[]) => {
    const c: Case = { id: cases.length, service, label, rounds };
    if (rounds.length && singleLists(c)) cases.push(c);
  };
  const n = t.named;
  const flagsOf = (table: string, inst: number) => o.clientFlags.get(clientKey(strip(table).replaceAll(t.dir, "@"), inst)) ?? inst;
  const tamed = (service: Service, rs: Req[]) => {
    const seen = new Set<string>();
    return rs.map((r) => tame312(service, r, t, seen)).filter((r): r is Req => r !== undefined).map((r) => round(r));
  };

  add("proxymap", "opens (read)", openingRounds(t, "proxymap"));
  add("proxywrite", "opens (write)", openingRounds(t, "proxywrite"));

  // The first defect: one table, instance flags without and with FOLD_FIX.
  const labSteps: Req[] = [];
  for (const [inst, flags] of [[524353, 1589313], [540737, 1589329], [524353, 1589329], [540737, 1572929]] as const)
    for (const key of ["Carol@Example.COM", "carol@example.com", UTF8("MÜLLER")]) labSteps.push({ type: "lookup", table: n.lab, inst: String(inst), flags: String(flags), key });
  add("proxymap", "issue 11 defect 1: texthash instances per instance_flags", tamed("proxymap", labSteps));
  for (const inst of [524353, 540737]) {
    const walk: Req[] = [{ type: "sequence", table: n.lab, inst: String(inst), flags: String(flagsOf(n.lab, inst)), func: "0" }];
    for (let i = 0; i < 8; i++) walk.push({ type: "sequence", table: n.lab, inst: String(inst), flags: String(flagsOf(n.lab, inst)), func: "1" });
    add("proxymap", `walk texthash instance_flags=${inst}`, tamed("proxymap", walk));
  }

  // Systematic: every approved table, every INST_FLAGS value, its keys with the client's flags.
  for (const service of ["proxymap", "proxywrite"] as const) {
    const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
    for (const table of approved)
      for (const inst of INST_FLAGS) {
        const f = String(flagsOf(table, inst));
        const keys = t.keys.get(table) ?? ["a"];
        const rs: Req[] = [{ type: "open", table, flags: "0", inst: String(inst) }, ...keys.map((key): Req => ({ type: "lookup", table, inst: String(inst), flags: f, key }))];
        if (service === "proxywrite") {
          rs.push({ type: "update", table, inst: String(inst), flags: f, key: `new${inst}`, value: `v${inst}` });
          rs.push({ type: "lookup", table, inst: String(inst), flags: f, key: `new${inst}` });
          rs.push({ type: "delete", table, inst: String(inst), flags: f, key: `new${inst}` }, { type: "delete", table, inst: String(inst), flags: f, key: `new${inst}` });
        }
        add(service, `systematic ${service} ${table} instance_flags=${inst}`, tamed(service, rs));
        const walk: Req[] = [{ type: "sequence", table, inst: String(inst), flags: f, func: "0" }];
        for (let i = 0; i < 4; i++) walk.push({ type: "sequence", table, inst: String(inst), flags: f, func: "1" });
        add(service, `walk ${service} ${table} instance_flags=${inst}`, tamed(service, walk));
      }
  }
  for (const table of t.unapproved) add("proxymap", `unapproved ${JSON.stringify(table)}`, tamed("proxymap", [{ type: "open", table, flags: "0", inst: "0" }, { type: "lookup", table, flags: "0", inst: "0", key: "a" }]));

  // Malformed, systematically: the shapes the issue names.
  const raw = (attrs: Attr[] | string): Round => ({ bytes: typeof attrs === "string" ? bytes(attrs) : encodeAttrs(attrs), type: "raw" });
  const L = (table: string, key: string): Req => ({ type: "lookup", table, inst: "524353", flags: String(flagsOf(table, 524353)), key });
  for (const table of [n.static, n.lab, n.hash]) {
    const req = L(table, "alice");
    const a311 = reqAttrs(req, "3.11");
    add("proxymap", `malformed lookups ${table}`, [
      raw([["request", "lookup"], ["table", ""]]),
      raw([["request", "lookup"], ["table", table]]),
      raw(reqAttrs(req, "3.7")),
      raw(reqAttrs({ type: "open", table, flags: "0" }, "3.7")),
      raw([a311[0], a311[1], a311[3], a311[2], a311[4]]),
      raw([a311[0], a311[2], a311[1], a311[3], a311[4]]),
      raw([...a311.slice(0, 4)]),
      raw([...a311, ["extra", "x"]]),
      raw([...a311.slice(0, 2), ["instance_flags", "x1"], ...a311.slice(3)]),
      raw([...a311.slice(0, 3), ["flags", "-"], ...a311.slice(4)]),
      raw([["request", "frob"], ...a311.slice(1)]),
      raw([["request", ""]]),
      round(req),
    ]);
  }
  for (const op of ["open", "update", "delete", "sequence"] as const) {
    const r: Req = { type: op, table: n.internal, inst: "0", flags: "0", key: "k", value: "v", func: "0" };
    add("proxywrite", `malformed ${op} (3.7 shape, then missing attributes)`, [round(r, "3.7"), raw(reqAttrs(r, "3.11").slice(0, 3)), raw([["request", op], ["table", ""]]), round(r)]);
  }

  // Seeded random cases.
  for (let c = 0; c < o.count; c++) {
    const service: Service = pk.chance(0.8) ? "proxymap" : "proxywrite";
    const nRounds = pk.weighted([[45, 1], [25, 2], [15, 4], [15, 8]] as const);
    const rounds: Round[] = [];
    const notes: string[] = [];
    const inCase = new Set<string>();
    for (let i = 0; i < nRounds; i++) {
      const r0 = pickReq(pk, t, service, flagsOf);
      const r = tame312(service, r0, t, inCase);
      if (!r) continue;
      const shape = pk.chance(0.08) ? "3.7" : "3.11";
      if (pk.chance(0.2)) {
        const m = applyMutation(reqAttrs(r, shape), pk);
        rounds.push({ bytes: m.bytes, type: r.type });
        notes.push(`${r.type}/${shape}/${m.name}`);
      } else {
        rounds.push(round(r, shape));
        notes.push(`${r.type}/${shape}`);
      }
    }
    add(service, `random ${notes.join(" ")}`, rounds);
  }
  cases.forEach((c, i) => (c.id = i));
  return cases;
}

function pickTable(pk: Pick, t: Tables312, service: Service): string {
  const approved = service === "proxymap" ? t.approvedRead : t.approvedWrite;
  return pk.weighted<() => string>([
    [82, () => pk.one(approved)],
    [6, () => pk.one(t.unapproved)],
    [6, () => pk.one(service === "proxymap" ? t.approvedWrite : t.approvedRead)],
    [6, () => pk.one(["proxy:", "proxy:proxy:"]) + pk.one(approved)],
  ])();
}

function pickReq(pk: Pick, t: Tables312, service: Service, flagsOf: (table: string, inst: number) => number): Req {
  const table = pickTable(pk, t, service);
  const type = pk.weighted<ReqType>(service === "proxymap"
    ? [[62, "lookup"], [15, "open"], [11, "sequence"], [6, "update"], [6, "delete"]]
    : [[35, "lookup"], [10, "open"], [15, "sequence"], [25, "update"], [15, "delete"]]);
  const instV = pk.chance(0.9) ? pk.one(INST_FLAGS) : cFlagsValue(pickFlags(pk)) ?? 0;
  const inst = pk.chance(0.03) ? pk.one(["", "x", "-1", "4294967296", " 7"]) : String(instV);
  const client = flagsOf(table, instV);
  const flags = pk.weighted<() => string>([
    [50, () => String(client)],
    [20, () => String((client ^ pk.one(REQUEST_BITS)) >>> 0)],
    [12, () => String(flagsOf(table, pk.one(INST_FLAGS)))],
    [18, () => pickFlags(pk)],
  ])();
  const r: Req = { type, table, inst, flags };
  const keys = t.keys.get(strip(table)) ?? ["a", "alice"];
  if (type === "lookup" || type === "update" || type === "delete")
    r.key = pk.weighted<() => string>([
      [70, () => pk.one(keys)],
      [10, () => pk.one(keys).toUpperCase()],
      [8, () => pk.bytes(pk.range(1, 10), 1, 255)],
      [6, () => pk.one(["\xc3\x28", "\xe9", UTF8("Ä"), UTF8("ÄÖÜ")])],
      [6, () => `new${pk.int(5)}`],
    ])();
  if (type === "update") r.value = pk.weighted<() => string>([[80, () => `v${pk.int(100)}`], [10, () => ""], [10, () => pk.bytes(pk.range(1, 20), 32, 255)]])();
  if (type === "sequence") r.func = pk.weighted<() => string>([[40, () => "0"], [50, () => "1"], [10, () => pk.one(["2", "-1", "", "x"])]])();
  return r;
}

/**
 * Requests the 3.12 C process dies on (what tame312 keeps out of the
 * compared corpus), one case each: ours must answer every round with a
 * status and stay up. Sent last, on the read service.
 */
export function deadlyCases312(t: Tables312, firstId: number): Case[] {
  const n = t.named;
  const one = (label: string, kill: string, r: Req): Case => ({ id: 0, service: "proxymap", label, kill, rounds: [round(r)] });
  const cases = [
    one("kill: hash lookup whose flags lack TRY0NULL and TRY1NULL", "panic: dict_db_lookup: no DICT_FLAG_TRY1NULL | DICT_FLAG_TRY0NULL flag", { type: "lookup", table: n.hash, inst: "0", flags: "16", key: "k000" }),
    one("kill: lmdb lookup whose flags lack TRY0NULL and TRY1NULL", "panic: dict_lmdb_lookup: no DICT_FLAG_TRY1NULL | DICT_FLAG_TRY0NULL flag", { type: "lookup", table: n.lmdb, inst: "0", flags: "0", key: "k000" }),
    one("kill: lmdb lookup of the empty key", "fatal: error reading lmdb:...: MDB_BAD_VALSIZE", { type: "lookup", table: n.lmdb, inst: "0", flags: "262172", key: "" }),
    one("kill: lmdb opened with BULK_UPDATE", "fatal: ...: lock dictionary: Bad file descriptor", { type: "lookup", table: n.lmdb, inst: String(F.BULK_UPDATE), flags: "262172", key: "k000" }),
    one("kill: instance_flags with OPEN_LOCK and LOCK", "panic: dict_open: attempt to open ... with both \"open\" lock and \"access\" lock", { type: "open", table: n.static, inst: String(F.OPEN_LOCK | F.LOCK), flags: "0" }),
    one("kill: sequence on static", "fatal: table static:foo: sequence operation is not supported", { type: "sequence", table: n.static, inst: "0", flags: "0", func: "0" }),
  ];
  cases.forEach((c, i) => (c.id = firstId + i));
  return cases;
}
