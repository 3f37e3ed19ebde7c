/** cdb: the conformance suite (test/helpers/conformance.ts), on a file the installed postmap(1) built. */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, postmapTable } from "../helpers/conformance";

describeDriver({
  type: "cdb",
  table: () => postmapTable("cdb", "apt-get install postfix postfix-cdb"),
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: true,
  // The reference's proxywrite exits on a cdb table; ours opens it read-only (cdb.ts).
  writable: true,
  failure: ["cdb:/nonexistent/conf", "open database /nonexistent/conf.cdb: No such file or directory"],
  nullBits: F.TRY0NULL,
  labelName: (name) => `${name}.cdb`,
});
