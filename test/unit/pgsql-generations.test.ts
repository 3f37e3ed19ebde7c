/**
 * pgsql tables as Postfix 3.8 and later read them, against the machine's
 * PostgreSQL (no C reference of those generations with pgsql support is
 * installed here, so the expectations are libpq's and the server's, which
 * pgsql-libpq.test.ts checks against libpq itself):
 *  - the UTF8 client encoding (3.8's default): a UTF-8 key finds the UTF-8
 *    row, a Latin-1 key cannot be quoted (RETRY with the reference's
 *    "cannot escape input string" warning), values come back as UTF-8
 *    bytes (no conversion failure for '€'), from UTF8 and LATIN1 databases;
 *  - `encoding = LATIN1` brings back 3.7's behaviour; an encoding name
 *    PostgreSQL does not know fails each connection with the reference's
 *    warning;
 *  - 3.10: a URI of another scheme is a URI; no dbname with a host that is
 *    not a URI is the reference's surrogate (RETRY).
 * The generation comes from the installed version the configuration
 * reports (a stand-in main.cf view here).
 *
 * Needs PostgreSQL (apt-get install postgresql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { setTableMainConfig } from "../../src/tables/dbCommon/mainConfig";
import { closeOurTables, ourLookup, writeOld } from "../helpers/sqlLookup";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";

let utf8db: TestDatabase;
let latin1db: TestDatabase;
let dir: string;
const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

beforeAll(async () => {
  await requirePostgres();
  utf8db = createTestDatabase("gen8u", { encoding: "UTF8" });
  latin1db = createTestDatabase("gen8l", { encoding: "LATIN1" });
  for (const db of [utf8db, latin1db]) {
    const euro = db.encoding === "UTF8" ? ", ('euro', '€')" : "";
    db.sql(u8(`CREATE TABLE t (k text, v text); INSERT INTO t VALUES ('café', 'utf8-e'), ('naïve', 'Ünïcödé'), ('plain', 'p')${euro};`));
  }
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-gen-"));
});

afterAll(async () => {
  await closeOurTables(true);
  setTableMainConfig(undefined);
  utf8db?.drop();
  latin1db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function generation(version: string): void {
  setTableMainConfig({ raw: () => undefined, get: () => "", installedVersion: version });
}

let n = 0;
function cf(db: TestDatabase, body: string, conn = true): string {
  const path = join(dir, `g${++n}.cf`);
  writeOld(path, (conn ? `hosts = inet:127.0.0.1:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\n` : "") + body);
  return `pgsql:${path}`;
}

const Q = "query = SELECT v FROM t WHERE k='%s'\n";

describe("Postfix 3.8 and later", () => {
  test("UTF8 client encoding: UTF-8 keys match, a Latin-1 key cannot be quoted, values are UTF-8", async () => {
    generation("3.8.4");
    for (const db of [utf8db, latin1db]) {
      const table = cf(db, Q);
      const hit = await ourLookup(table, u8("café"));
      expect({ status: hit.status, value: hit.value }).toEqual({ status: Status.OK, value: "utf8-e" });
      expect((await ourLookup(table, u8("naïve"))).value).toBe(u8("Ünïcödé"));
      const bad = await ourLookup(table, "caf\xe9 au lait");
      expect(bad.status).toBe(Status.RETRY);
      expect(bad.log).toEqual([`warning: dict pgsql: (host inet:127.0.0.1:${db.port}) cannot escape input string: invalid multibyte character\n`]);
      const cut = await ourLookup(table, "caf\xe9");
      expect(cut.log).toEqual([`warning: dict pgsql: (host inet:127.0.0.1:${db.port}) cannot escape input string: incomplete multibyte character\n`]);
    }
    expect((await ourLookup(cf(utf8db, Q), "euro")).value).toBe(u8("€"));
  }, 30_000);

  test("encoding = LATIN1 brings back 3.7's behaviour; an unknown name fails each connection", async () => {
    generation("3.9.1");
    const latin = cf(utf8db, `${Q}encoding = LATIN1\n`);
    expect((await ourLookup(latin, "caf\xe9")).value).toBe("utf8-e");
    expect((await ourLookup(latin, u8("café"))).status).toBe(Status.NOKEY);
    const euro = await ourLookup(latin, "euro");
    expect(euro.status).toBe(Status.RETRY);
    expect(euro.log[0]).toContain('has no equivalent in encoding "LATIN1"');
    const bogus = await ourLookup(cf(utf8db, `${Q}encoding = bogus\n`), "plain");
    expect(bogus.status).toBe(Status.RETRY);
    expect(bogus.log).toEqual([`warning: dict_pgsql: cannot set the encoding to bogus, skipping inet:127.0.0.1:${utf8db.port}`]);
  }, 30_000);

  test("3.10: URIs of any scheme (libpq's own or not); no dbname for a plain host is the surrogate", async () => {
    generation("3.10.2");
    const uri = `postgres://${encodeURIComponent(utf8db.user)}:${encodeURIComponent(utf8db.password)}@127.0.0.1:${utf8db.port}/${utf8db.db}`;
    expect((await ourLookup(cf(utf8db, `hosts = ${uri}\n${Q}`, false), "plain")).value).toBe("p");
    const other = await ourLookup(cf(utf8db, `hosts = mysql://x/y\n${Q}`, false), "plain");
    expect(other.status).toBe(Status.RETRY);
    expect(other.log).toEqual(['warning: connect to pgsql server mysql://x/y: missing "=" after "mysql://x/y" in connection info string\n']);
    const noDb = await ourLookup(cf(utf8db, `hosts = inet:127.0.0.1:${utf8db.port}\nuser = ${utf8db.user}\n${Q}`, false), "plain");
    expect(noDb.status).toBe(Status.RETRY);
    expect(noDb.log.join("\n")).toContain("host target '127.0.0.1' requires dbname setting");
    // 3.7 refuses the same configuration.
    generation("3.7.11");
    expect((await ourLookup(cf(utf8db, `hosts = inet:127.0.0.1:${utf8db.port}\nuser = ${utf8db.user}\n${Q}`, false), "plain")).status).toBe(Status.CONFIG);
  }, 30_000);
});
