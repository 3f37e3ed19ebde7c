/**
 * pgsql-corpus.ts - the seeded request corpus of the pgsql differential
 * test (pgsql.test.ts): the table configurations both instances share
 * (against two databases of the machine's PostgreSQL, UTF8 and LATIN1),
 * their data, and the cases.
 *
 * Tables: plain lookups, multi-column and multi-row results with NULL and
 * empty values, %u/%d, an expansion_limit, a `domain` list (literals, a
 * negation, a table), result_format, a LATIN1 database, an echo of the
 * bytes the server received, and three that always fail (a query the
 * server refuses, a value LATIN1 cannot hold, a wrong password: the
 * reference then sets the host aside for 60 s and answers RETRY without
 * trying; the reply is the same either way).
 *
 * Cases: systematic (open, lookups of every known key with postmap's
 * flags and with none), then seeded random ones: lookups with random
 * keys (quoting-sensitive, 8-bit, invalid UTF-8, with and without '@',
 * long) and flags, opens, unapproved tables, the write service, and
 * malformed requests (corpus.ts's mutations). Cases where the reference
 * dies (sequence on a pgsql table: "sequence operation is not supported")
 * carry `kill`.
 *
 * Pure but for writeCorpusFiles().
 */
import { chmodSync, mkdirSync, writeFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { encodeAttrs, type Attr } from "../helpers/wire";
import { applyMutation, Pick, PROBE_TABLE, reqAttrs, rng, type Case, type Req, type Round, type Service } from "./corpus";

const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** What a database gives the table files. */
export interface DbInfo {
  user: string;
  password: string;
  db: string;
  port: number;
}

export interface PgsqlTables {
  dir: string;
  /** Approved table names (request `table` values), by role. */
  read: string[];
  write: string[];
  unapproved: string[];
  keys: Map<string, string[]>;
  files: Record<string, string>;
  readMaps: string;
  writeMaps: string;
}

/** Rows (k, v, v2), Unicode; LATIN1 gets those it can hold. */
export const PG_ROWS: Array<[string, string | null, string | null]> = [
  ["alice", "alice@dest.example", null],
  ["bob", "b1", "b2"],
  ["o'hara", "quote", null],
  ["back\\slash", "bs", null],
  ["x' OR '1'='1", "injected", null],
  ["café", "utf8-e", null],
  ["multi", "a", null],
  ["multi", "", "d"],
  ["multi", null, "e"],
  ["emptyonly", "", null],
  ["nullonly", null, null],
  ["user@example.com", "u@dest.example", "second"],
  ["@example.com", "catchall", null],
  ["user@other.example", "other", null],
  ["euro", "€", null],
  ["naïve", "Ünïcödé", null],
  ["pct", "100%", null],
];

/**
 * Keys of the tables that must not fail: "euro" is not among them (its value
 * fails every LATIN1 query, and the reference then sets the host aside for
 * 60 s: conv.cf has it to itself).
 */
export const KNOWN_KEYS = ["alice", "bob", "o'hara", "back\\slash", "x' OR '1'='1", "caf\xe9", u8("café"), "multi", "emptyonly", "nullonly", "user@example.com", "@example.com", "user@other.example", "na\xefve", "pct", "nosuch", "USER@Example.COM", "Alice", ""];

export function makePgsqlTables(dir: string, utf8: DbInfo, latin1: DbInfo): PgsqlTables {
  const files: Record<string, string> = {};
  const conn = (d: DbInfo, password = d.password) => `hosts = inet:127.0.0.1:${d.port}\nuser = ${d.user}\npassword = ${password}\ndbname = ${d.db}\n`;
  const add = (name: string, text: string) => {
    files[name] = text;
    return `pgsql:${join(dir, name)}`;
  };
  const t = {
    basic: add("basic.cf", conn(utf8) + "query = SELECT v FROM t WHERE k='%s'\n"),
    multi: add("multi.cf", conn(utf8) + "query = SELECT v, v2 FROM t WHERE k='%s' ORDER BY v NULLS FIRST\n"),
    ud: add("ud.cf", conn(utf8) + "query = SELECT v FROM t WHERE k='%u@%d' OR k='@%d'\nresult_format = %u|%d|%s|%S\n"),
    limit: add("limit.cf", conn(utf8) + "query = SELECT v, v2 FROM t WHERE k='%s'\nexpansion_limit = 1\n"),
    domain: add("domain.cf", conn(utf8) + "query = SELECT v FROM t WHERE k='%s'\ndomain = !bad.example.com, example.com, inline:{other.example=yes}\n"),
    latin1: add("latin1.cf", conn(latin1) + "query = SELECT v, v2 FROM t WHERE k='%s'\n"),
    echo: add("echo.cf", conn(utf8) + "query = SELECT encode(convert_to('%s', 'LATIN1'), 'hex')\n"),
    legacy: add("legacy.cf", conn(utf8) + "table = t\nselect_field = v\nwhere_field = k\nadditional_conditions = ORDER BY v\n"),
    sqlerr: add("sqlerr.cf", conn(utf8) + "query = SELECT nosuch FROM t WHERE k='%s'\n"),
    conv: add("conv.cf", conn(utf8) + "query = SELECT v FROM t WHERE k='euro' AND '%s' <> ''\n"),
    badpw: add("badpw.cf", conn(utf8, "wrong") + "query = SELECT v FROM t WHERE k='%s'\n"),
  };
  const read = [...Object.values(t), PROBE_TABLE];
  const write = [t.basic];
  const keys = new Map<string, string[]>();
  for (const name of Object.values(t)) keys.set(name, KNOWN_KEYS);
  keys.set(t.ud, ["user@example.com", "x@example.com", "user", "@example.com", "a@b@example.com", "user@", "USER@EXAMPLE.COM"]);
  keys.set(t.domain, ["user@example.com", "user@bad.example.com", "user@other.example", "alice", "@example.com", "USER@EXAMPLE.COM"]);
  return {
    dir,
    read,
    write,
    unapproved: [`pgsql:${join(dir, "unlisted.cf")}`, "pgsql:" + join(dir, "basic.cf") + " ", "pgsql:basic"],
    keys,
    files,
    readMaps: read.map((x) => `proxy:${x}`).join(" "),
    writeMaps: write.map((x) => `proxy:${x}`).join(" "),
  };
}

/** The table files (old mtimes: no hot-file pause), readable by mail_owner. */
export function writeCorpusFiles(t: PgsqlTables): void {
  mkdirSync(t.dir, { recursive: true, mode: 0o755 });
  chmodSync(t.dir, 0o755);
  for (const [name, text] of Object.entries(t.files)) {
    const p = join(t.dir, name);
    writeFileSync(p, Buffer.from(text, "latin1"), { mode: 0o644 });
    utimesSync(p, new Date(2020, 0, 1), new Date(2020, 0, 1));
  }
}

const LOOKUP_FLAGS = ["524353", "0", "16384", "64", "524288", "16448", "540736"];

function pickKey(pk: Pick, known: string[]): string {
  return pk.weighted<() => string>([
    [45, () => pk.one(known)],
    [8, () => pk.one(known).toUpperCase()],
    [10, () => pk.bytes(pk.range(1, 16), 1, 255)],
    [8, () => pk.one(["o'", "'", "''", "\\", "\\'", "x' OR '1'='1", "'; SELECT 1; --", "%", "%s", "_", "$1", "E'\\x41'"]) + pk.bytes(pk.range(0, 3), 0x20, 0x7e)],
    [6, () => pk.one(["\xc3\x28", "\xe9", "a\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", u8("Ä"), u8("€"), u8("😀")])],
    [8, () => `${pk.one(["", "u", "user", "o'x"])}@${pk.one(["", "example.com", "bad.example.com", "other.example", "a.b.c"])}`],
    [3, () => pk.one(["a", "L"]).repeat(pk.one([255, 1024, 5000]))],
  ])();
}

function round(r: Req): Round {
  return { bytes: encodeAttrs(reqAttrs(r, "3.7")), type: r.type };
}

export function generatePgsqlCorpus(t: PgsqlTables, opts: { seed: number; count: number }): Case[] {
  const pk = new Pick(rng(opts.seed));
  const cases: Case[] = [];
  const add = (service: Service, label: string, rounds: Round[], kill?: string) => cases.push({ id: cases.length, service, label, rounds, kill });
  const tables = t.read.filter((x) => x !== PROBE_TABLE);

  // 1. Systematic: a postmap-like client per table, then one without flags.
  for (const table of tables) {
    const keys = t.keys.get(table)!;
    add("proxymap", `postmap ${table}`, [round({ type: "open", table, flags: "0" }), ...keys.map((key) => round({ type: "lookup", table, flags: "524353", key }))]);
    add("proxymap", `plain ${table}`, keys.map((key) => round({ type: "lookup", table, flags: "0", key })));
    add("proxymap", `sequence ${table}`, [round({ type: "sequence", table, flags: "0", func: "0" })], "sequence on pgsql (fatal: sequence operation is not supported)");
  }
  for (const table of t.unapproved) add("proxymap", `unapproved ${table}`, [round({ type: "lookup", table, flags: "0", key: "alice" }), round({ type: "open", table, flags: "0" })]);
  add("proxymap", "update on the read service", [round({ type: "update", table: tables[0], flags: "0", key: "k", value: "v" }), round({ type: "delete", table: tables[0], flags: "0", key: "k" })]);
  add("proxywrite", "the write service", [round({ type: "open", table: t.write[0], flags: "0" }), round({ type: "lookup", table: t.write[0], flags: "0", key: "alice" }), round({ type: "update", table: t.write[0], flags: "0", key: "k", value: "v" }), round({ type: "delete", table: t.write[0], flags: "0", key: "k" })]);

  // 2. Seeded: random requests, some malformed.
  for (let i = 0; i < opts.count; i++) {
    const rounds: Round[] = [];
    const n = pk.range(1, 4);
    for (let j = 0; j < n; j++) {
      const table = pk.chance(0.9) ? pk.one(tables) : pk.one(t.unapproved);
      const type = pk.weighted<Req["type"]>([[85, "lookup"], [15, "open"]]);
      const r: Req = { type, table, flags: pk.one(LOOKUP_FLAGS) };
      if (type === "lookup") r.key = pickKey(pk, t.keys.get(table) ?? ["alice"]);
      const attrs: Attr[] = reqAttrs(r, "3.7");
      if (pk.chance(0.12)) {
        const m = applyMutation(attrs, pk);
        rounds.push({ bytes: m.bytes, type: "raw" });
      } else rounds.push({ bytes: encodeAttrs(attrs), type: r.type });
    }
    add("proxymap", `random ${i}`, rounds);
  }
  return cases;
}
