/**
 * ldap.test.ts - real Postfix clients resolve LDAP tables through our
 * proxymap: a private master (test/helpers/postfix-instance.ts) runs
 * dist/proxymap as the proxymap service, beside an smtpd on a loopback port
 * whose recipient restrictions ask an LDAP table through proxy:
 *
 *   smtpd_recipient_restrictions =
 *       check_recipient_access proxy:ldap:BASE/tables/access.cf, reject
 *
 * where access.cf maps a recipient to "REJECT ldap: <its mail values>"
 * (result_format), following group members (special_result_attribute). An
 * SMTP conversation gets each recipient rejected with the text the
 * directory gave (so each reply proves a lookup went through ours to
 * slapd), a recipient the directory does not know with "Access denied".
 * Then real `postmap -q KEY proxy:ldap:...` clients query several tables
 * (plain, groups, a main.cf-style table, ldapi with SASL EXTERNAL) through
 * ours and through a second instance running the C proxymap: the outputs
 * must be the same.
 *
 * Needs slapd and ldap-utils (apt-get install slapd ldap-utils), Postfix
 * with LDAP support (apt-get install postfix postfix-ldap), npm run build.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BASE, MAIL_KEYS } from "../helpers/ldap-data";
import { OUR_PROXYMAP, PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { freePort, PrivateSlapd } from "../helpers/slapd";
import { lastLine, smtpSession } from "../helpers/smtp";

setDefaultTimeout(60_000);

let slapd: PrivateSlapd;
let ours: PostfixInstance | undefined;
let ref: PostfixInstance | undefined;
let smtpPort = 0;

function files(s: PrivateSlapd): Record<string, string> {
  const head = `server_host = ldap://127.0.0.1:${s.port}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\n`;
  return {
    "access.cf": head + "result_attribute = mail\nspecial_result_attribute = member, memberURL\nresult_format = REJECT ldap: %s\n",
    "plain.cf": head + "result_attribute = mail\n",
    "groups.cf": head + "result_attribute = mail\nterminal_result_attribute = mailRoutingAddress\nspecial_result_attribute = member, memberURL\n",
    "ldapi.cf": `server_host = ${s.ldapiUrl}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\nbind = sasl\nsasl_mechs = EXTERNAL\n`,
  };
}

const TABLES = ["plain.cf", "groups.cf", "ldapi.cf"];

async function start(impl: ProxymapImpl, withSmtpd: boolean): Promise<PostfixInstance> {
  const inst = await PostfixInstance.start({
    impl,
    label: `e2e-ldap-${typeof impl === "string" ? impl : "x"}`,
    files: files(slapd),
    proxymapMaxproc: "2",
    masterCfExtra: withSmtpd
      ? [`127.0.0.1:${smtpPort} inet n - n - 1 smtpd`, "anvil     unix  -       -       n       -       1       anvil", "rewrite   unix  -       -       n       -       -       trivial-rewrite"]
      : [],
  });
  const access = `ldap:${inst.table("access.cf")}`;
  const cf = join(inst.configDir, "main.cf");
  const extra: Record<string, string> = {
    proxy_read_maps: [access, ...TABLES.map((t) => `ldap:${inst.table(t)}`), "ldap:mainldap"].map((x) => `proxy:${x}`).join(" "),
    mainldap_server_host: `127.0.0.1:${slapd.port}`,
    mainldap_search_base: BASE,
    mainldap_query_filter: "(mailLocalAddress=%s)",
    mainldap_result_attribute: "mail",
    mainldap_special_result_attribute: "member memberURL",
    smtpd_recipient_restrictions: `check_recipient_access proxy:${access}, reject`,
    smtpd_relay_restrictions: "",
    smtpd_reject_unlisted_recipient: "no",
    local_recipient_maps: "",
    smtpd_peername_lookup: "no",
    smtpd_banner: "$myhostname ESMTP",
    biff: "no",
  };
  writeFileSync(cf, (await Bun.file(cf).text()).replace(/^proxy_read_maps = .*\n/m, "") + Object.entries(extra).map(([k, v]) => `${k} = ${v}\n`).join(""));
  inst.reload();
  await Bun.sleep(300);
  return inst;
}

/** One SMTP session from 127.0.0.1: the reply (all lines) to each command, after the greeting. */
const smtp = (commands: string[]) => smtpSession(smtpPort, "127.0.0.1", commands);

describe("e2e: smtpd and postmap resolve LDAP tables through our proxymap", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    requireFile("/usr/lib/postfix/postfix-ldap.so", "apt-get install postfix-ldap");
    requireFile("/usr/lib/postfix/sbin/smtpd", "apt-get install postfix");
    slapd = await PrivateSlapd.start({ label: "e2e" });
    smtpPort = await freePort();
    [ours, ref] = await Promise.all([start("ours", true), start("c", false)]);
  }, 60_000);

  afterAll(async () => {
    ours?.stop();
    ref?.stop();
    await slapd?.destroy();
  });

  test("smtpd rejects recipients with the text the directory gave (through proxy:ldap, ours)", async () => {
    const rcpts = ["alice@example.com", "staff@example.com", "sales-list@example.com", "a*b@example.com", "nobody@example.com"];
    const r = await smtp(["EHLO client.example", "MAIL FROM:<s@sender.example>", ...rcpts.map((a) => `RCPT TO:<${a}>`), "QUIT"]);
    expect(lastLine(r[1])).toStartWith("250 ");
    expect(r.slice(2, 2 + rcpts.length).map(lastLine)).toEqual([
      "554 5.7.1 <alice@example.com>: Recipient address rejected: ldap: alice@example.com",
      // result_format applies to every value: each member's address comes as "REJECT ldap: ...".
      "554 5.7.1 <staff@example.com>: Recipient address rejected: ldap: alice@example.com,REJECT ldap: bob@example.com,REJECT ldap: bob@mail.example.com,REJECT ldap: bob@example.com,REJECT ldap: bob@mail.example.com,REJECT ldap: carol@example.com",
      "554 5.7.1 <sales-list@example.com>: Recipient address rejected: ldap: alice@example.com,REJECT ldap: dave@example.com",
      "554 5.7.1 <a*b@example.com>: Recipient address rejected: ldap: star@example.com",
      "554 5.7.1 <nobody@example.com>: Recipient address rejected: Access denied",
    ]);
  });

  test("the proxymap that answered is our executable, and smtpd logged no table trouble", async () => {
    const pids = await ours!.waitServicePids("proxymap");
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(readlinkSync(`/proc/${pid}/exe`)).toBe(OUR_PROXYMAP);
    expect(ours!.log()).not.toMatch(/smtpd\[\d+\]: (warning|error|fatal): .*(proxy|table|lookup)/);
  });

  test("postmap -q through proxy:ldap prints what it prints with the C proxymap", async () => {
    const keys = MAIL_KEYS.filter((k) => k !== "" && !k.includes(" ")).slice(0, 24);
    const norm = (inst: PostfixInstance, s: string) => s.replaceAll(inst.base, "BASE");
    let found = 0;
    for (const table of [...TABLES, "mainldap"]) {
      const name = (inst: PostfixInstance) => (table === "mainldap" ? "proxy:ldap:mainldap" : `proxy:ldap:${inst.table(table)}`);
      for (const key of keys) {
        const [o, c] = await Promise.all([ours!.runAsync("postmap", ["-q", key, name(ours!)]), ref!.runAsync("postmap", ["-q", key, name(ref!)])]);
        if (o.code === 0) found++;
        expect({ table, key, code: o.code, out: o.stdout, err: norm(ours!, o.stderr) }).toEqual({ table, key, code: c.code, out: c.stdout, err: norm(ref!, c.stderr) });
      }
    }
    console.log(`postmap -q: ${(TABLES.length + 1) * keys.length} queries, ${found} found`);
    expect(found).toBeGreaterThan(25);
    expect((await ours!.runAsync("postmap", ["-q", "devs@example.com", `proxy:ldap:${ours!.table("groups.cf")}`])).stdout).toBe("bob@example.com,bob@mail.example.com,carol@elsewhere.org\n");
  });

  test("postmap -q - (keys on stdin) through proxy:ldap", async () => {
    const input = "alice@example.com\nnobody@example.com\nbob@example.com\n";
    const [o, c] = await Promise.all([ours!.runAsync("postmap", ["-q", "-", `proxy:ldap:${ours!.table("plain.cf")}`], input), ref!.runAsync("postmap", ["-q", "-", `proxy:ldap:${ref!.table("plain.cf")}`], input)]);
    expect({ code: o.code, out: o.stdout }).toEqual({ code: c.code, out: c.stdout });
    expect(o.stdout).toBe("alice@example.com\talice@example.com\nbob@example.com\tbob@example.com,bob@mail.example.com\n");
  });
});
