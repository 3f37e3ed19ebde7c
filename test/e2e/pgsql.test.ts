/**
 * pgsql.test.ts - real Postfix clients resolve proxy:pgsql: tables through
 * our proxymap, against the machine's PostgreSQL.
 *
 * A private master (test/helpers/postfix-instance.ts) runs dist/proxymap as
 * the proxymap service, and an smtpd on a loopback port (with anvil and
 * trivial-rewrite beside it) whose recipient restrictions are two pgsql
 * tables behind proxy: (one keyed by the whole address, one by its domain
 * through %d), then reject. Each RCPT reply shows which table answered
 * through ours. Real `postmap -q KEY` and `postmap -q -` clients then query
 * the tables (hits, misses, quoting-sensitive keys, Latin-1 and UTF-8 keys,
 * multi-row results, a table whose query fails) through the same proxymap,
 * and the same commands against an instance running the C proxymap must
 * print the same and exit the same.
 *
 * Needs Postfix with postfix-pgsql and PostgreSQL. Runs as root.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OUR_PROXYMAP, PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";
import { requireFile, requireOurBinary, requirePostfix } from "../helpers/require";
import { freeTcpPort, lastLine, smtpSession } from "../helpers/smtp";

setDefaultTimeout(60_000);

let db: TestDatabase;
let ours: PostfixInstance | undefined;
let ref: PostfixInstance | undefined;
let smtpPort = 0;

const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

function files(d: TestDatabase): Record<string, string> {
  const conn = `hosts = inet:127.0.0.1:${d.port}\nuser = ${d.user}\npassword = ${d.password}\ndbname = ${d.db}\n`;
  return {
    "rcpt.cf": conn + "query = SELECT action FROM access WHERE k='%s'\n",
    "domain.cf": conn + "query = SELECT action FROM domains WHERE d='%d'\n",
    "alias.cf": conn + "query = SELECT v FROM aliases WHERE k='%u' ORDER BY v\nresult_format = %s@dest.example\n",
    "broken.cf": conn + "query = SELECT nosuch FROM access WHERE k='%s'\n",
  };
}

const table = (inst: PostfixInstance, f: string) => `pgsql:${inst.table(f)}`;

async function start(impl: ProxymapImpl, withSmtpd: boolean): Promise<PostfixInstance> {
  const inst = await PostfixInstance.start({
    impl,
    label: `e2e-pg-${typeof impl === "string" ? impl : "x"}`,
    files: files(db),
    proxymapMaxproc: "2",
    masterCfExtra: withSmtpd
      ? [`127.0.0.1:${smtpPort} inet n - n - 1 smtpd`, "anvil     unix  -       -       n       -       1       anvil", "rewrite   unix  -       -       n       -       -       trivial-rewrite"]
      : [],
  });
  for (const f of Object.keys(files(db))) {
    const { utimesSync } = await import("node:fs");
    utimesSync(inst.table(f), new Date(2020, 0, 1), new Date(2020, 0, 1));
  }
  const maps = Object.keys(files(db)).map((f) => `proxy:${table(inst, f)}`);
  const cf = join(inst.configDir, "main.cf");
  const extra: Record<string, string> = {
    proxy_read_maps: maps.join(" "),
    smtpd_recipient_restrictions: `check_recipient_access proxy:${table(inst, "rcpt.cf")}, check_recipient_access proxy:${table(inst, "domain.cf")}, reject`,
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

describe("e2e: smtpd and postmap resolve proxy:pgsql: tables through our proxymap", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    requireFile("/usr/lib/postfix/postfix-pgsql.so", "apt-get install postfix-pgsql");
    requireFile("/usr/lib/postfix/sbin/smtpd", "apt-get install postfix");
    await requirePostgres();
    db = createTestDatabase("e2e");
    db.sql(
      u8(
        "CREATE TABLE access (k text, action text);\n" +
          "INSERT INTO access VALUES ('bad@pg.example', 'REJECT pgsql says no'), ('o''hara@pg.example', 'REJECT quoted key'), ('café@pg.example', 'REJECT latin'), ('a\\b@pg.example', 'REJECT backslash');\n" +
          "CREATE TABLE domains (d text, action text);\n" +
          "INSERT INTO domains VALUES ('blocked.example', 'REJECT domain blocked by pgsql');\n" +
          "CREATE TABLE aliases (k text, v text);\n" +
          "INSERT INTO aliases VALUES ('team', 'ann'), ('team', 'bob'), ('team', ''), ('solo', 'sam');\n",
      ),
    );
    smtpPort = await freeTcpPort();
    [ours, ref] = await Promise.all([start("ours", true), start("c", false)]);
  }, 60_000);

  afterAll(() => {
    ours?.stop();
    ref?.stop();
    db?.drop();
  });

  test("smtpd rejects recipients through proxy:pgsql (address, then domain by %d)", async () => {
    const rcpts = ["bad@pg.example", "o'hara@pg.example", "someone@blocked.example", "nobody@else.example"];
    const r = await smtpSession(smtpPort, "127.0.0.1", ["EHLO client.example", "MAIL FROM:<s@sender.example>", ...rcpts.map((a) => `RCPT TO:<${a}>`), "QUIT"]);
    expect(lastLine(r[1])).toStartWith("250 ");
    expect(r.slice(2, 2 + rcpts.length).map(lastLine)).toEqual([
      "554 5.7.1 <bad@pg.example>: Recipient address rejected: pgsql says no",
      "554 5.7.1 <o'hara@pg.example>: Recipient address rejected: quoted key",
      "554 5.7.1 <someone@blocked.example>: Recipient address rejected: domain blocked by pgsql",
      "554 5.7.1 <nobody@else.example>: Recipient address rejected: Access denied",
    ]);
  });

  test("the proxymap that answered is our executable, and smtpd saw no table trouble", async () => {
    const pids = await ours!.waitServicePids("proxymap");
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(readlinkSync(`/proc/${pid}/exe`)).toBe(OUR_PROXYMAP);
    expect(ours!.log()).not.toMatch(/smtpd\[\d+\]: (warning|error|fatal): .*(proxy|table|lookup)/);
  });

  test("postmap -q through proxy:pgsql answers as with the C proxymap", async () => {
    const queries: Array<[string, string]> = [
      ["rcpt.cf", "bad@pg.example"],
      ["rcpt.cf", "BAD@PG.EXAMPLE"],
      ["rcpt.cf", "o'hara@pg.example"],
      ["rcpt.cf", "x' OR '1'='1"],
      ["rcpt.cf", "a\\b@pg.example"],
      ["rcpt.cf", "caf\xe9@pg.example"],
      ["rcpt.cf", u8("café@pg.example")],
      ["rcpt.cf", "nobody"],
      ["domain.cf", "x@blocked.example"],
      ["domain.cf", "blocked.example"],
      ["alias.cf", "team@anything"],
      ["alias.cf", "solo"],
      ["alias.cf", "none"],
      ["broken.cf", "bad@pg.example"],
    ];
    const norm = (inst: PostfixInstance, s: string) => s.replaceAll(inst.base, "BASE");
    for (const [f, key] of queries) {
      const [o, c] = await Promise.all([ours!.runAsync("postmap", ["-q", key, `proxy:${table(ours!, f)}`]), ref!.runAsync("postmap", ["-q", key, `proxy:${table(ref!, f)}`])]);
      expect({ q: `${f} ${key}`, code: o.code, out: o.stdout, err: norm(ours!, o.stderr) }).toEqual({ q: `${f} ${key}`, code: c.code, out: c.stdout, err: norm(ref!, c.stderr) });
    }
    expect((await ours!.runAsync("postmap", ["-q", "team", `proxy:${table(ours!, "alias.cf")}`])).stdout).toBe("ann@dest.example,bob@dest.example\n");
    expect((await ours!.runAsync("postmap", ["-q", "bad@pg.example", `proxy:${table(ours!, "rcpt.cf")}`])).stdout).toBe("REJECT pgsql says no\n");
  });

  test("postmap -q - (keys on stdin) through proxy:pgsql", async () => {
    const input = "bad@pg.example\nnobody\no'hara@pg.example\nteam\n";
    for (const f of ["rcpt.cf", "alias.cf"]) {
      const [o, c] = await Promise.all([ours!.runAsync("postmap", ["-q", "-", `proxy:${table(ours!, f)}`], input), ref!.runAsync("postmap", ["-q", "-", `proxy:${table(ref!, f)}`], input)]);
      expect({ f, code: o.code, out: o.stdout }).toEqual({ f, code: c.code, out: c.stdout });
    }
  });

  test("the failing query is logged with the reference's words", async () => {
    const line = (inst: PostfixInstance) => inst.log().split("\n").find((l) => l.includes("pgsql query failed"))?.replace(/^.*?postfix\/proxymap\[\d+\]: /, "");
    expect(line(ours!)).toBeDefined();
    expect(line(ours!)).toBe(line(ref!));
    expect(existsSync(ours!.maillog)).toBe(true);
  });
});
