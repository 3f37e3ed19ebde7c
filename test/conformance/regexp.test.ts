/** regexp: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, patternFile } from "../helpers/conformance";

describeDriver({
  type: "regexp",
  table: () => patternFile("conf.regexp", "/^alpha$/ 1\n/^beta$/ two words\n"),
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.PATTERN,
  // Case-insensitive by default (flag i): an upper-case key matches with or without FOLD_FIX.
  folds: false,
  sequence: false,
  writable: false,
  failure: ["regexp:/nonexistent/conf.regexp", "open /nonexistent/conf.regexp: No such file or directory"],
});
