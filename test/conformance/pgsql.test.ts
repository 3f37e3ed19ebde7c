/** pgsql: the conformance suite (test/helpers/conformance.ts), against the machine's PostgreSQL. */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";
import { createTestDatabase, requirePostgres, type TestDatabase } from "../helpers/postgres";

let db: TestDatabase | undefined;
beforeAll(async () => {
  await requirePostgres();
});
afterAll(() => {
  db?.drop();
});

describeDriver({
  type: "pgsql",
  table: () => {
    db ??= createTestDatabase("conformance");
    db.sql("CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY, v text); INSERT INTO t VALUES ('alpha', '1'), ('beta', 'two words') ON CONFLICT DO NOTHING;");
    const cf = join(scratch(), "conf-pgsql.cf");
    writeCoolFile(cf, `hosts = inet:127.0.0.1:${db.port}\nuser = ${db.user}\npassword = ${db.password}\ndbname = ${db.db}\nquery = SELECT v FROM t WHERE k='%s'\n`);
    return `pgsql:${cf}`;
  },
  async: true,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: false,
  writable: false,
  failure: ["pgsql:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
});
