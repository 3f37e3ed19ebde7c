/** socketmap: the conformance suite (test/helpers/conformance.ts), against a real socketmap server of the test's own. */
import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { CONF_DATA, describeDriver } from "../helpers/conformance";
import { SocketmapServer } from "../helpers/socketmap-server";

const path = join(mkdtempSync(join(tmpdir(), "conf-sm-")), "sm.sock");
let srv: SocketmapServer | undefined;
beforeAll(async () => {
  srv = await SocketmapServer.start({ path, data: { conf: CONF_DATA } });
});
afterAll(async () => {
  await srv?.close();
});

describeDriver({
  type: "socketmap",
  table: () => `socketmap:unix:${path}:conf`,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  async: true,
  impl: F.PATTERN,
  folds: false,
  sequence: false,
  writable: false,
  failure: ["socketmap:nocolon", "socketmap requires server:socketmap argument"],
});
