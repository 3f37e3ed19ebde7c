/** btree: the conformance suite (test/helpers/conformance.ts), on a file the installed postmap(1) built. */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, postmapTable } from "../helpers/conformance";

describeDriver({
  type: "btree",
  table: () => postmapTable("btree", "apt-get install postfix"),
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: true,
  writable: true,
  failure: ["btree:/nonexistent/conf", "open database /nonexistent/conf.db: No such file or directory"],
  nullBits: F.TRY1NULL,
  writableOps: true,
  labelName: (name) => `${name}.db`,
});
