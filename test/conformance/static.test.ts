/** static: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "static",
  table: () => "static:{ two words }",
  entries: [["alpha", "two words"], ["anything", "two words"]],
  impl: F.FIXED,
  folds: true,
  sequence: false,
  writable: true,
  failure: ["static:{a}b", `bad static:name syntax: syntax error after '}' in "{a}b"`],
});
