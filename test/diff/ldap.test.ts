/**
 * ldap.test.ts - the differential test of LDAP tables (issue 14): the same
 * requests go to the system's C proxymap (with Debian's postfix-ldap) and to
 * ours, each run by a private Postfix master, against one private slapd
 * (test/helpers/slapd.ts) loaded with a mail directory
 * (test/helpers/ldap-data.ts); replies must be equal byte for byte, and the
 * warnings the two processes log must be the same lines in the same order.
 *
 * Tables: test/helpers/ldap-tables.ts (plain, special/leaf/terminal
 * recursion, URL members, domain lists, scope one and base, size, expansion
 * and recursion limits, bound, anonymous and a wrong password, result
 * formats, non-ASCII values, aliases, referrals, ldapi with SASL EXTERNAL
 * and PLAIN, StartTLS and ldaps with a test CA, version 2, the ignored
 * cache fields), one in main.cf form (ldap:mainldap). Corpus:
 * test/diff/ldap-corpus.ts (seeded: LDAP_SEED, LDAP_COUNT random cases on
 * top of the systematic ones), played by runner.ts: one proxymap process
 * per side (maxproc 1), cases in the same order.
 *
 * Not compared, listed as deliberate differences: cases on which the
 * reference dies (sequence on an ldap table; a configuration it refuses
 * with a fatal error) are sent last, and ours must answer each round with a
 * status; rounds that are not exactly one attribute list (the reference
 * handles one request per read()): ours must stay up and in step.
 *
 * LDAP_AGAINST=c runs the C binary on both sides (self-check of the
 * harness). LDAP_REPORT=FILE writes every case with both transcripts.
 *
 * Needs: slapd and ldap-utils (apt-get install slapd ldap-utils), Postfix
 * with LDAP support (apt-get install postfix postfix-ldap), npm run build.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCoolFile } from "../helpers/files";
import { BASE } from "../helpers/ldap-data";
import { ldapTableFiles } from "../helpers/ldap-tables";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { PrivateSlapd } from "../helpers/slapd";
import { encodeAttrs, show } from "../helpers/wire";
import { singleLists, PROBE_TABLE, type Case } from "./corpus";
import { generateLdapCorpus } from "./ldap-corpus";
import { answeredEveryRound, describeSide, runAll, runCase, splitLists, stripProbes, type CaseResult } from "./runner";

const AGAINST = process.env.LDAP_AGAINST === "c" ? "c" : "ours";
const SEED = Number(process.env.LDAP_SEED ?? 20261214);
const COUNT = Number(process.env.LDAP_COUNT ?? 500);
const ROUND_MS = Number(process.env.LDAP_ROUND_MS ?? 200);
const QUIET_MS = Number(process.env.LDAP_QUIET_MS ?? 150);
/** DICT_FLAG_RQST_MASK: the bits of a reply's flags that are the last request's (history). */
const RQST_MASK = 16384 | 32768 | 64 | 128 | 1 | 2 | 256 | 2048 | 4096 | 8192 | 524288;

let slapd: PrivateSlapd | undefined;
let dir = "";
let ref: PostfixInstance | undefined;
let sut: PostfixInstance | undefined;
let cases: Case[] = [];
let refRes = new Map<number, CaseResult>();
let sutRes = new Map<number, CaseResult>();
let refLog = "";
let sutLog = "";

type List = [string, string][];
const enc = (l: List) => encodeAttrs(l).toString("latin1");
const withoutHistory = (l: List): List => l.map(([n, v]) => (n === "flags" ? [n, String((Number(v) & ~RQST_MASK) >>> 0)] : [n, v]));

/** The proxymap service's log lines, with what differs between the instances taken out. */
function serviceLines(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    const m = /^\S+\s+\d+\s+[\d:]+\s+\S+\s+postfix\/(proxymap|proxywrite)\[\d+\]: (.*)$/.exec(line);
    if (!m) continue;
    let text = m[2].replaceAll(dir, "TABLES");
    if (slapd) text = text.replaceAll(slapd.ldapiUrl, "LDAPI").replaceAll(String(slapd.port), "PORT").replaceAll(String(slapd.sslPort), "SSLPORT");
    out.push(`${m[1]}: ${text}`);
  }
  return out;
}

function report(c: Case, a: CaseResult | undefined, b: CaseResult | undefined): string {
  return [`case ${c.id} [${c.service}] ${c.label}${c.kill ? ` (reference dies: ${c.kill})` : ""}`, describeSide("C  ", c, a), describeSide(AGAINST === "c" ? "C2 " : "our", c, b)].join("\n");
}

describe(`LDAP tables differential: C proxymap vs ${AGAINST === "c" ? "C proxymap (self-check)" : "dist/proxymap"}`, () => {
  beforeAll(async () => {
    requirePostfix();
    requireFile("/usr/lib/postfix/postfix-ldap.so", "apt-get install postfix-ldap (the reference's ldap tables)");
    if (AGAINST === "ours") requireOurBinary();
    slapd = await PrivateSlapd.start({ label: "diff" });
    dir = mkdtempSync(join(tmpdir(), "pm-ldap-diff-"));
    chmodSync(dir, 0o755);
    const set = ldapTableFiles(slapd, dir);
    for (const [n, text] of Object.entries(set.files)) writeCoolFile(join(dir, `${n}.cf`), text);
    for (const [n, text] of Object.entries(set.extra)) writeCoolFile(join(dir, n), text);
    const fatal: Record<string, string> = {
      "fatal-version": "version = 1\n",
      "fatal-bind": "bind = bogus\n",
      "fatal-template": "query_filter = (mail=%x)\n",
      "fatal-reclimit": "recursion_limit = 0\n",
    };
    for (const [n, text] of Object.entries(fatal)) writeCoolFile(join(dir, `${n}.cf`), `server_host = 127.0.0.1:${slapd.port}\nsearch_base = ${BASE}\n${text}`);
    const read = [...Object.keys(set.files).map((n) => `ldap:${join(dir, `${n}.cf`)}`), "ldap:mainldap"];
    const write = [`ldap:${join(dir, "plain.cf")}`, `ldap:${join(dir, "special.cf")}`];
    const fatalNames = Object.keys(fatal).map((n) => `ldap:${join(dir, `${n}.cf`)}`);
    const unapproved = [`ldap:${join(dir, "nosuch.cf")}`, "ldap:unapproved", `ldap:${join(dir, "hidden.cf")}x`];
    const common = {
      mainCf: {
        proxy_read_maps: [...read, ...fatalNames, PROBE_TABLE].map((x) => `proxy:${x}`).join(" "),
        proxy_write_maps: [...write, PROBE_TABLE].map((x) => `proxy:${x}`).join(" "),
        max_use: "100000",
        mainldap_server_host: `127.0.0.1:${slapd.port}`,
        mainldap_search_base: BASE,
        mainldap_query_filter: "(mailLocalAddress=%s)",
        mainldap_result_attribute: "mail",
        mainldap_special_result_attribute: "member memberURL",
        mainldap_leaf_result_attribute: "mailRoutingAddress",
      },
      proxymapMaxproc: "1",
    };
    [ref, sut] = await Promise.all([PostfixInstance.start({ impl: "c", label: "ldap-ref", ...common }), PostfixInstance.start({ impl: AGAINST, label: `ldap-${AGAINST}`, ...common })]);
    for (const inst of [ref, sut]) {
      const probe = await runCase(inst.socket("proxymap"), { id: -1, service: "proxymap", label: "probe", rounds: [] }, { roundMs: ROUND_MS, quietMs: QUIET_MS, connectMs: 10_000 });
      if (!probe.greeting) throw new Error(`${inst.base}: the proxymap service does not answer (${probe.error}):\n${inst.log().slice(-2000)}`);
    }
    cases = generateLdapCorpus({ read, write, fatal: fatalNames, unapproved }, { seed: SEED, count: COUNT });
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    const framed = cases.filter((c) => !c.kill && !singleLists(c));
    const deaths = cases.filter((c) => c.kill);
    const run = (inst: PostfixInstance, list: Case[], quietMs: number) => runAll(list, { roundMs: ROUND_MS, quietMs, connectMs: 15_000 }, (c) => inst.socket(c.service));
    const t0 = Date.now();
    const [a, b] = await Promise.all([run(ref, compared, QUIET_MS), run(sut, compared, QUIET_MS)]);
    await Bun.sleep(500); // postlogd writes asynchronously
    refLog = ref.log();
    sutLog = sut.log();
    const t1 = Date.now();
    const [fa, fb] = await Promise.all([run(ref, framed, 80), run(sut, framed, 80)]);
    const [ka, kb] = await Promise.all([run(ref, deaths, 3000), run(sut, deaths, 3000)]);
    refRes = new Map([...a, ...fa, ...ka]);
    sutRes = new Map([...b, ...fb, ...kb]);
    const rounds = compared.reduce((s, c) => s + c.rounds.length, 0);
    console.log(`ldap: ${cases.length} cases, ${rounds} compared requests in ${compared.length} cases (${framed.length} framing cases, ${deaths.length} reference-death cases), seed ${SEED}; ${((t1 - t0) / 1000).toFixed(1)} s compared + ${((Date.now() - t1) / 1000).toFixed(1)} s framing and deaths`);
    if (process.env.LDAP_REPORT) writeFileSync(process.env.LDAP_REPORT, cases.map((c) => report(c, refRes.get(c.id), sutRes.get(c.id))).join("\n\n") + "\n");
  }, 900_000);

  afterAll(async () => {
    if (process.env.LDAP_KEEP) {
      console.log(`kept: ${ref?.base} ${sut?.base} ${dir} ${slapd?.dir}`);
      return;
    }
    ref?.stop();
    sut?.stop();
    await slapd?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the corpus has at least 3,000 compared requests over every table", () => {
    const compared = cases.filter((c) => !c.kill && singleLists(c));
    expect(compared.reduce((s, c) => s + c.rounds.length, 0)).toBeGreaterThanOrEqual(3000);
  });

  test("the reference survives every case not listed as deadly", () => {
    const bad = cases.filter((c) => !c.kill && singleLists(c) && refRes.get(c.id)!.closed).map((c) => report(c, refRes.get(c.id), sutRes.get(c.id)));
    expect(bad.slice(0, 5).join("\n\n")).toBe("");
  });

  test("replies are byte-identical", () => {
    const bad: string[] = [];
    let match = 0;
    let total = 0;
    let found = 0;
    for (const c of cases) {
      if (c.kill || !singleLists(c)) continue;
      const a = refRes.get(c.id)!;
      const b = sutRes.get(c.id)!;
      total++;
      const la = splitLists(a.stream).lists.map((l) => enc(withoutHistory(l)));
      const lb = splitLists(b.stream).lists.map((l) => enc(withoutHistory(l)));
      found += la.filter((l) => l.startsWith("status\x000\x00value\x00")).length;
      if (la.join("") === lb.join("") && splitLists(a.stream).tail === splitLists(b.stream).tail && a.closed === b.closed && a.inStep === b.inStep) match++;
      else bad.push(report(c, a, b));
    }
    console.log(`ldap: ${match}/${total} cases byte-identical (${found} found answers among the reference's replies)`);
    if (bad.length) console.log(`first mismatches (of ${bad.length}):\n${bad.slice(0, 8).join("\n\n")}`);
    expect(found).toBeGreaterThan(300);
    expect(bad.length).toBe(0);
  });

  /**
   * The table's warnings (dict_ldap_*, db_common, cfg_parser, table "ldap:..."), not the protocol
   * layer's (malformed requests, approval), whose wording for garbage input the foundation's
   * differential test checks: postlogd cuts very long lines where ours and C differ.
   */
  test("the two processes log the same table warnings, in the same order", () => {
    const protocol = /: (unexpected attribute|missing attribute|unrecognized request|request for unapproved table|to approve this table|refusing |malformed |.* socket: )/;
    const pick = (log: string) => serviceLines(log).filter((l) => / (warning|error|fatal|panic): /.test(l) && !protocol.test(l));
    const a = pick(refLog);
    const b = pick(sutLog);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    console.log(`warnings: reference ${a.length}, ours ${b.length}; identical up to line ${i}`);
    if (i < Math.max(a.length, b.length)) console.log(`first difference:\n  C:    ${a.slice(i, i + 5).join("\n        ")}\n  ours: ${b.slice(i, i + 5).join("\n        ")}`);
    expect(a.length).toBeGreaterThan(50);
    expect(b).toEqual(a);
  });

  test("rounds that are not exactly one list: ours stays up and in step (not compared)", () => {
    const bad = cases.filter((c) => !c.kill && !singleLists(c)).filter((c) => AGAINST === "ours" && (sutRes.get(c.id)!.closed || !sutRes.get(c.id)!.inStep));
    expect(bad.slice(0, 5).map((c) => report(c, refRes.get(c.id), sutRes.get(c.id))).join("\n\n")).toBe("");
  });

  test("where the reference dies, ours answers every round with a status and stays up", () => {
    const deadly = cases.filter((c) => c.kill);
    const lines: string[] = [];
    const bad: string[] = [];
    let died = 0;
    for (const c of deadly) {
      const a = refRes.get(c.id)!;
      const b = sutRes.get(c.id)!;
      if (a.closed) died++;
      lines.push(`  ${a.closed ? "reference died" : "reference survived"}: ${c.label}; ours: ${splitLists(stripProbes(b.stream)).lists.map((l) => show(enc(l), 80)).join(" ")}`);
      if (AGAINST === "ours" && !answeredEveryRound(c, b)) bad.push(report(c, a, b));
    }
    console.log(`deliberate differences: ${deadly.length} cases where the reference dies:\n${lines.join("\n")}`);
    expect(died).toBe(deadly.length);
    expect(bad.join("\n\n")).toBe("");
  });
});
