/** sqlite: the conformance suite (test/helpers/conformance.ts), on a database of its own. */
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";

describeDriver({
  type: "sqlite",
  table: () => {
    const db = join(scratch(), "conf.sqlite");
    const cf = join(scratch(), "conf-sqlite.cf");
    const d = new Database(db);
    d.run("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)");
    d.run("INSERT OR REPLACE INTO t VALUES ('alpha', '1'), ('beta', 'two words')");
    d.close();
    // Dated back, so the configuration parser's "file still changing" pause does not apply.
    writeCoolFile(cf, `dbpath = ${db}\nquery = SELECT v FROM t WHERE k='%s'\n`);
    return `sqlite:${cf}`;
  },
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  // Queries run on a worker thread (a slow query must not stall the process).
  async: true,
  folds: true,
  sequence: false,
  writable: false,
  failure: ["sqlite:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
});
