/**
 * ldap-corpus.ts - the seeded corpus of the LDAP differential test: cases
 * in the shape of corpus.ts (one client connection each, rounds of raw
 * request bytes) against the table configurations of
 * test/helpers/ldap-tables.ts, played by runner.ts.
 *
 *  1. systematic: every table, every key of the mail directory
 *     (ldap-data.ts MAIL_KEYS) with postmap's flags (UTF8_REQUEST | LOCK |
 *     DUP_WARN); a part of them with flags 0 and FOLD_FIX (the key's case
 *     reaches the server, %U keeps it); an open of each table;
 *  2. seeded random cases: 1 to 8 requests each, mostly lookups, with keys
 *     from the directory, their case variants, filter and DN specials,
 *     8-bit and invalid UTF-8 bytes, empty and long keys; random flags; some
 *     open, update, delete requests, some on the write service, a few
 *     unapproved names; 3.7-shape mutations (malformed requests) on a
 *     quarter of the rounds;
 *  3. cases on which the reference process dies (sent last, not compared):
 *     `sequence` on an ldap table ("sequence operation is not supported"),
 *     and the tables whose configuration the reference refuses with a fatal
 *     error (version = 1, bind = bogus, an invalid template, recursion_limit
 *     = 0): ours must answer each round with a status and stay up.
 *
 * Pure; logs nothing.
 */
import { MAIL_KEYS } from "../helpers/ldap-data";
import { encodeAttrs } from "../helpers/wire";
import { Pick, applyMutation, reqAttrs, rng, type Case, type Req, type ReqType, type Round, type Service } from "./corpus";

export interface LdapCorpusTables {
  /** Compared tables: "ldap:/path/NAME.cf" (and main.cf-style names), approved for reading. */
  read: string[];
  /** Approved for the write service (proxywrite opens them read-write: the reference's surrogate). */
  write: string[];
  /** Tables the reference exits on: "ldap:/path/fatal-*.cf". */
  fatal: string[];
  /** Names nobody approved. */
  unapproved: string[];
}

const UTF8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** Keys as a client sends them: UTF-8 bytes (the directory's non-ASCII keys included). */
const KEYS = MAIL_KEYS.map(UTF8);

const FLAGS = ["524353", "524353", "0", "16384", "524288", "540672", "64", "1", "4", "8", "12", "2048", "8192", "540736", "557120", "1048576", "17", "32768"];

function pickKey(pk: Pick): string {
  return pk.weighted<() => string>([
    [55, () => pk.one(KEYS)],
    [8, () => pk.one(KEYS).toUpperCase()],
    [4, () => ""],
    [6, () => pk.bytes(pk.range(1, 12), 1, 255)],
    [6, () => pk.one(["\xc3\x28", "\xe9", "a\xff@example.com", "\xed\xa0\x80", "\xc0\xaf", UTF8("Jörg Müller"), UTF8("JÖRG MÜLLER"), UTF8("Grüße aus Köln"), UTF8("müller@example.com")])],
    [4, () => pk.one(["a", "x@example.com"]).repeat(pk.one([100, 300, 1000]))],
    [10, () => pk.one(["*", "*@example.com", "a*", "(", ")", "\\", "\\2A", "(uid=*)", ")(|(uid=*", "a\\*b@example.com", " alice@example.com", "alice@example.com ", "al ice@example.com", "#x@example.com", "x,y@example.com", "x+y@example.com", "x;y@example.com", "<x>@example.com", '"x"@example.com', "%s", "%"])],
    [7, () => `${pk.one(["alice", "bob", "carol", "nobody", "staff", "ALICE", "Bob.Builder"])}@${pk.one(["example.com", "EXAMPLE.COM", "example.org", "mail.example.com", "other.example", "", "example.com."])}`],
  ])();
}

/** The whole corpus: systematic cases, random ones, then the deadly ones. */
export function generateLdapCorpus(t: LdapCorpusTables, opts: { seed: number; count: number }): Case[] {
  const pk = new Pick(rng(opts.seed));
  const cases: Case[] = [];
  const add = (service: Service, label: string, rounds: Round[], kill?: string) => cases.push({ id: cases.length, service, label, rounds, kill });
  const r37 = (r: Req): Round => ({ bytes: encodeAttrs(reqAttrs(r, "3.7")), type: r.type });

  for (const table of t.read) {
    add("proxymap", `open ${table}`, [r37({ type: "open", table, flags: "0" })]);
    add("proxymap", `postmap-like ${table}`, KEYS.map((key) => r37({ type: "lookup", table, flags: "524353", key })));
    const some = KEYS.filter((_, i) => i % 3 === 0);
    add("proxymap", `flags 0 / FOLD_FIX ${table}`, some.flatMap((key) => [r37({ type: "lookup", table, flags: "0", key }), r37({ type: "lookup", table, flags: "16384", key: key.toUpperCase() })]));
  }
  for (const table of t.write) {
    add("proxywrite", `write service ${table}`, [
      r37({ type: "open", table, flags: "0" }),
      r37({ type: "lookup", table, flags: "524353", key: "alice@example.com" }),
      r37({ type: "update", table, flags: "0", key: "alice@example.com", value: "x" }),
      r37({ type: "delete", table, flags: "0", key: "alice@example.com" }),
    ]);
  }
  for (const table of t.unapproved) add("proxymap", `unapproved ${table}`, [r37({ type: "lookup", table, flags: "524353", key: "alice@example.com" })]);

  for (let n = 0; n < opts.count; n++) {
    const service: Service = pk.chance(0.92) ? "proxymap" : "proxywrite";
    const nRounds = pk.weighted([[40, 1], [30, 2], [20, 4], [10, 8]] as const);
    const rounds: Round[] = [];
    const notes: string[] = [];
    for (let i = 0; i < nRounds; i++) {
      const pool = service === "proxywrite" ? t.write : t.read;
      const table = pk.weighted<() => string>([[88, () => pk.one(pool)], [6, () => pk.one(t.unapproved)], [6, () => `proxy:${pk.one(pool)}`]])();
      const type = pk.weighted<ReqType>([[82, "lookup"], [8, "open"], [5, "update"], [5, "delete"]]);
      const r: Req = { type, table, flags: pk.one(FLAGS) };
      if (type !== "open") r.key = pickKey(pk);
      if (type === "update") r.value = "v";
      const attrs = reqAttrs(r, "3.7");
      if (pk.chance(0.25)) {
        const m = applyMutation(attrs, pk);
        rounds.push({ bytes: m.bytes, type });
        notes.push(`${type}/${m.name}`);
      } else {
        rounds.push(r37(r));
        notes.push(type);
      }
    }
    add(service, `random ${notes.join(" ")}`, rounds);
  }

  // Deaths last: each costs a restart of the reference's process.
  add("proxymap", "kill: sequence on an ldap table", [r37({ type: "sequence", table: t.read[0], flags: "0", func: "0" })], "sequence on ldap (fatal: sequence operation is not supported)");
  for (const table of t.fatal) {
    add("proxymap", `kill: ${table}`, [r37({ type: "lookup", table, flags: "524353", key: "alice@example.com" }), r37({ type: "lookup", table, flags: "0", key: "bob@example.com" })], "a configuration the reference refuses with a fatal error");
  }
  return cases;
}
