/** unix: the conformance suite (test/helpers/conformance.ts), through the system's NSS. */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver } from "../helpers/conformance";

describeDriver({
  type: "unix",
  table: () => "unix:passwd.byname",
  entries: [["root", "root:x:0:0:root:/root:/bin/bash"]],
  missing: "no-such-user-here",
  impl: F.FIXED,
  // NSS runs on a worker thread (a slow source must not stall the process).
  async: true,
  folds: true,
  sequence: false,
  writable: false,
  failure: ["unix:shadow.byname", "unknown table: unix:shadow.byname"],
});
