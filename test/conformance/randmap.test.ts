/** randmap: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "randmap",
  // One member: deterministic (test/unit/randmap.test.ts covers the pick).
  table: () => "randmap:{{two words}}",
  entries: [["alpha", "{two words}"], ["beta", "{two words}"]],
  impl: F.PATTERN,
  folds: false,
  sequence: false,
  writable: false,
  failure: ["randmap:{}", 'bad syntax: "randmap:{}"; need "randmap:{value...}"'],
});
