/** pipemap: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "pipemap",
  table: () => "pipemap:{inline:{alpha=a, beta=b}, inline:{a=1, {b = two words}}}",
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  async: true,
  impl: F.FIXED,
  folds: false,
  sequence: false,
  writable: false,
  failure: ["pipemap:{}", 'bad syntax: "pipemap:{}"; need "pipemap:{type:name...}"'],
});
