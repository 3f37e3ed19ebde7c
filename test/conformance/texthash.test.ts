/** texthash: the conformance suite (test/helpers/conformance.ts). */
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";

describeDriver({
  type: "texthash",
  table: () => `texthash:${writeCoolFile(join(scratch(), "conf.map"), "alpha 1\nbeta two words\n")}`,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: true,
  writable: false,
  failure: ["texthash:/nonexistent/conf.map", "open database /nonexistent/conf.map: No such file or directory"],
});
