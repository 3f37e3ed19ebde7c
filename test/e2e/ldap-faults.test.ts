/**
 * ldap-faults.test.ts - LDAP tables when the directory misbehaves, ours and
 * the C proxymap side by side: each under its own private Postfix master,
 * clients on the real proxymap sockets, one private slapd for both.
 *
 *  - slapd stopped: every lookup answers RETRY at once (both); started
 *    again: ours answers within one second of its return, and the first
 *    lookup after the return succeeds on both (reconnect and retry once),
 *    also when slapd restarted with no lookup in between;
 *  - slapd frozen (SIGSTOP: connections stay open, nothing is answered): a
 *    search exceeding `timeout` is RETRY after about that time on both,
 *    with the reference's warning; thawed, lookups answer again;
 *  - a wrong bind password: RETRY with the reference's warning, every time;
 *  - a referral: RETRY ("Search error 10: Referral") without
 *    chase_referrals, the referred entries with it; a referral that refers
 *    to itself: followed until the hop limit, then RETRY with "Referral".
 *
 * Needs slapd and ldap-utils (apt-get install slapd ldap-utils), Postfix
 * with LDAP support (apt-get install postfix postfix-ldap), npm run build.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCoolFile } from "../helpers/files";
import { BASE, mailDirectoryLdif, SERVICE_DN } from "../helpers/ldap-data";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { PrivateSlapd } from "../helpers/slapd";
import { WireClient } from "../helpers/wire";

setDefaultTimeout(120_000);

let slapd: PrivateSlapd;
let dir = "";
let ours: PostfixInstance;
let ref: PostfixInstance;
const T: Record<string, string> = {};

function tables(port: number): Record<string, string> {
  const head = `server_host = 127.0.0.1:${port}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n`;
  return {
    plain: head,
    nobind: head + "bind = no\n",
    quick: head + "timeout = 1\n",
    badpw: head + `bind_dn = ${SERVICE_DN}\nbind_pw = not the password\n`,
    referral: head.replace(`search_base = ${BASE}`, `search_base = ou=remote,${BASE}`),
    chase: head.replace(`search_base = ${BASE}`, `search_base = ou=remote,${BASE}`) + "chase_referrals = yes\n",
    loop: head.replace(`search_base = ${BASE}`, `search_base = ou=loop,${BASE}`) + "chase_referrals = yes\nrecursion_limit = 5\n",
  };
}

type Side = { inst: PostfixInstance; cl: WireClient };
let sides: Side[] = [];

async function lookup(s: Side, table: string, key = "alice@example.com"): Promise<string> {
  const r = await s.cl.lookup(T[table], key);
  return `${r.status}:${r.value ?? ""}`;
}

/** The same lookup on both sides, in parallel: [C, ours]. */
async function both(table: string, key?: string): Promise<[string, string]> {
  const [a, b] = await Promise.all(sides.map((s) => lookup(s, table, key)));
  return [a, b];
}

function warnings(inst: PostfixInstance, mark: number): string[] {
  return inst
    .logSince(mark)
    .split("\n")
    .filter((l) => /postfix\/proxymap\[\d+\]: warning: /.test(l))
    .map((l) => l.replace(/^.*?warning: /, "").replaceAll(dir, "DIR").replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT"));
}

describe("LDAP tables when the server fails (ours and the C proxymap)", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    requireFile("/usr/lib/postfix/postfix-ldap.so", "apt-get install postfix-ldap");
    // A referral that refers to itself, for the chase loop (only base searches of ou=loop meet it).
    slapd = await PrivateSlapd.start({
      label: "faults",
      ldif: (x) => `${mailDirectoryLdif(x)}\ndn: ou=loop,${BASE}\nobjectClass: referral\nobjectClass: extensibleObject\nou: loop\nref: ldap://127.0.0.1:${x.port}/ou=loop,${BASE}\n`,
    });
    dir = mkdtempSync(join(tmpdir(), "pm-ldap-faults-"));
    chmodSync(dir, 0o755);
    for (const [n, text] of Object.entries(tables(slapd.port))) {
      writeCoolFile(join(dir, `${n}.cf`), text);
      T[n] = `ldap:${join(dir, `${n}.cf`)}`;
    }
    const common = { mainCf: { proxy_read_maps: Object.values(T).map((t) => `proxy:${t}`).join(" ") }, proxymapMaxproc: "1" };
    [ref, ours] = await Promise.all([PostfixInstance.start({ impl: "c", label: "ldapf-ref", ...common }), PostfixInstance.start({ impl: "ours", label: "ldapf-ours", ...common })]);
    sides = await Promise.all([ref, ours].map(async (inst) => ({ inst, cl: await WireClient.connect(inst.socket("proxymap"), { greeting: true, timeoutMs: 10_000 }) })));
  }, 120_000);

  afterAll(async () => {
    for (const s of sides) s.cl.close();
    ref?.stop();
    ours?.stop();
    await slapd?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("slapd stopped: RETRY at once; back: ours answers within a second, the first lookup succeeds on both", async () => {
    expect(await both("plain")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    expect(await both("nobind")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    await slapd.stop();
    const marks = sides.map((s) => s.inst.logMark());
    const t0 = Date.now();
    expect(await both("plain")).toEqual(["2:", "2:"]);
    expect(await both("nobind")).toEqual(["2:", "2:"]);
    expect(await both("plain")).toEqual(["2:", "2:"]);
    expect(Date.now() - t0).toBeLessThan(3000);
    await Bun.sleep(300);
    const [wc, wo] = sides.map((s, i) => warnings(s.inst, marks[i]));
    console.log(`slapd down, C: ${wc.join(" | ")}\nslapd down, ours: ${wo.join(" | ")}`);
    expect(wo).toEqual(wc);
    expect(wo).toContain("dict_ldap_connect: Unable to bind to server ldap://127.0.0.1:PORT with dn empty or implicit: -1 (Can't contact LDAP server)");
    expect(wo).toContain("dict_ldap_lookup: Search error -1: Can't contact LDAP server ");

    // Back: poll ours until it answers; it must within a second of the server's return.
    const back = slapd.start();
    await back;
    const returned = Date.now();
    let answered = -1;
    while (Date.now() - returned < 5000) {
      if ((await lookup(sides[1], "plain")) === "0:alice@example.com") {
        answered = Date.now() - returned;
        break;
      }
      await Bun.sleep(50);
    }
    console.log(`ours answered ${answered} ms after slapd answered ldapsearch again`);
    expect(answered).toBeGreaterThanOrEqual(0);
    expect(answered).toBeLessThan(1000);
    expect(await lookup(sides[0], "plain")).toBe("0:alice@example.com");
    expect(await both("nobind")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
  });

  test("slapd restarted with no lookup in between: the first lookup succeeds (reconnect and retry once)", async () => {
    expect(await both("plain")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    await slapd.stop();
    await slapd.start();
    expect(await both("plain", "bob@example.com")).toEqual(["0:bob@example.com,bob@mail.example.com", "0:bob@example.com,bob@mail.example.com"]);
    expect(await both("nobind", "bob@example.com")).toEqual(["0:bob@example.com,bob@mail.example.com", "0:bob@example.com,bob@mail.example.com"]);
  });

  test("a search exceeding the timeout: RETRY after about `timeout` on both; answers again after", async () => {
    expect(await both("quick")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    const marks = sides.map((s) => s.inst.logMark());
    slapd.pause();
    let took: number[] = [];
    try {
      const t0 = Date.now();
      const r = await Promise.all(
        sides.map(async (s) => {
          const v = await lookup(s, "quick");
          return { v, ms: Date.now() - t0 };
        }),
      );
      took = r.map((x) => x.ms);
      expect(r.map((x) => x.v)).toEqual(["2:", "2:"]);
    } finally {
      slapd.resume();
    }
    console.log(`timed out after C ${took[0]} ms, ours ${took[1]} ms`);
    for (const ms of took) {
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(4000);
    }
    await Bun.sleep(300);
    const [wc, wo] = sides.map((s, i) => warnings(s.inst, marks[i]));
    expect(wc).toEqual(["dict_ldap_lookup: Search error -5: Timed out "]);
    expect(wo).toEqual(wc);
    expect(await both("quick")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    expect(await both("plain")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
  });

  test("a wrong bind password: RETRY with the reference's warning, each time", async () => {
    const marks = sides.map((s) => s.inst.logMark());
    expect(await both("badpw")).toEqual(["2:", "2:"]);
    expect(await both("badpw")).toEqual(["2:", "2:"]);
    await Bun.sleep(300);
    const [wc, wo] = sides.map((s, i) => warnings(s.inst, marks[i]));
    const line = `dict_ldap_connect: Unable to bind to server ldap://127.0.0.1:PORT with dn ${SERVICE_DN}: 49 (Invalid credentials)`;
    expect(wc).toEqual([line, line]);
    expect(wo).toEqual(wc);
  });

  test("a referral: RETRY without chase_referrals, the referred entry with it", async () => {
    const marks = sides.map((s) => s.inst.logMark());
    expect(await both("referral")).toEqual(["2:", "2:"]);
    expect(await both("chase")).toEqual(["0:alice@example.com", "0:alice@example.com"]);
    await Bun.sleep(300);
    const [wc, wo] = sides.map((s, i) => warnings(s.inst, marks[i]));
    expect(wc).toEqual(["dict_ldap_lookup: Search error 10: Referral "]);
    expect(wo).toEqual(wc);
  });

  test("a referral to itself: followed until the hop limit, then the referral is the answer (RETRY)", async () => {
    const marks = sides.map((s) => s.inst.logMark());
    expect(await both("loop")).toEqual(["2:", "2:"]);
    await Bun.sleep(300);
    const [wc, wo] = sides.map((s, i) => warnings(s.inst, marks[i]));
    expect(wc).toEqual(["dict_ldap_lookup: Search error 10: Referral "]);
    expect(wo).toEqual(wc);
  });
});
