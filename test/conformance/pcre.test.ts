/** pcre: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, patternFile } from "../helpers/conformance";

describeDriver({
  type: "pcre",
  table: () => patternFile("conf.pcre", "/^alpha$/ 1\n/^beta$/ two words\n"),
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.PATTERN,
  // Case-insensitive by default (flag i): an upper-case key matches with or without FOLD_FIX.
  folds: false,
  sequence: false,
  writable: false,
  failure: ["pcre:/nonexistent/conf.pcre", "open /nonexistent/conf.pcre: No such file or directory"],
});
