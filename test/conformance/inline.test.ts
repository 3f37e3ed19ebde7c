/** inline: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "inline",
  table: () => "inline:{alpha=1, {beta = two words}}",
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: true,
  writable: false,
  failure: ["inline:{}", 'bad syntax: "inline:{}"; need "inline:{name=value...}"'],
});
