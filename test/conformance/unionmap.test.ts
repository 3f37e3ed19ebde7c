/** unionmap: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "unionmap",
  table: () => "unionmap:{inline:{alpha=1}, inline:{{beta = two words}}}",
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  async: true,
  impl: F.FIXED,
  // Members fold with their own open flags, not the request's (as the reference).
  folds: false,
  sequence: false,
  writable: false,
  failure: ["unionmap:{}", 'bad syntax: "unionmap:{}"; need "unionmap:{type:name...}"'],
});
