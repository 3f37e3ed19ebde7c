/** cidr: the conformance suite (test/helpers/conformance.ts). */
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, patternFile } from "../helpers/conformance";

describeDriver({
  type: "cidr",
  table: () => patternFile("conf.cidr", "192.0.2.1 1\n192.0.2.0/24 two words\n"),
  entries: [["192.0.2.1", "1"], ["192.0.2.2", "two words"]],
  missing: "198.51.100.1",
  impl: F.PATTERN,
  folds: false,
  sequence: false,
  writable: false,
  failure: ["cidr:/nonexistent/conf.cidr", "open /nonexistent/conf.cidr: No such file or directory"],
});
