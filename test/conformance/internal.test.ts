/** internal: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "internal",
  // Empty at open; filled through the write service.
  table: () => "internal:conformance",
  entries: [],
  missing: "alpha",
  impl: F.FIXED,
  folds: false,
  sequence: true,
  writable: true,
  writableOps: true,
});
