/** fail: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F, Status } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "fail",
  table: () => "fail:conformance",
  entries: [],
  missing: "alpha",
  impl: F.PATTERN,
  folds: false,
  sequence: true,
  writable: true,
  lookupStatus: Status.RETRY,
});
