/** mysql: the conformance suite (test/helpers/conformance.ts), against the real MariaDB. */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";
import { createTestDatabase, requireMariadb, type TestDatabase } from "../helpers/mariadb";

let db: TestDatabase | undefined;
beforeAll(async () => {
  await requireMariadb();
});
afterAll(() => {
  db?.drop();
});

describeDriver({
  type: "mysql",
  table: () => {
    db ??= createTestDatabase("conformance");
    db.sql("CREATE TABLE IF NOT EXISTS t (k VARCHAR(64) COLLATE utf8mb4_bin PRIMARY KEY, v TEXT);" + "REPLACE INTO t VALUES ('alpha', '1'), ('beta', 'two words');");
    const cf = join(scratch(), "conf-mysql.cf");
    writeCoolFile(cf, `hosts = unix:${db.socket}\nuser = ${db.user}\npassword = ${db.password}\n` + `dbname = ${db.db}\nquery = SELECT v FROM t WHERE k='%s'\n`);
    return `mysql:${cf}`;
  },
  async: true,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: false,
  writable: false,
  failure: ["mysql:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
});
