/** environ: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "environ",
  table: () => {
    process.env.alpha = "1";
    process.env.beta = "two words";
    return "environ:conformance";
  },
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma_not_in_the_environment",
  impl: F.FIXED,
  folds: true,
  sequence: false,
  writable: true,
  // update works (setenv), delete does not exist: OK, then CONFIG.
  updateOnly: true,
});
