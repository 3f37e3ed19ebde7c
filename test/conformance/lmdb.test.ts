/** lmdb: the conformance suite (test/helpers/conformance.ts), on a file the installed postmap(1) built. */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, postmapTable } from "../helpers/conformance";

describeDriver({
  type: "lmdb",
  table: () => postmapTable("lmdb", "apt-get install postfix postfix-lmdb"),
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED | F.MULTI_WRITER,
  folds: true,
  sequence: true,
  writable: true,
  failure: ["lmdb:/nonexistent/conf", "open database /nonexistent/conf.lmdb: No such file or directory"],
  nullBits: F.TRY1NULL,
  writableOps: true,
});
