/** tcp: the conformance suite (test/helpers/conformance.ts), against a real tcp_table server of the test's own. */
import { afterAll, beforeAll } from "bun:test";
import { DictFlag as F } from "../../src/protocol/constants";
import { CONF_DATA, describeDriver } from "../helpers/conformance";
import { TcpTableServer } from "../helpers/tcp-server";

let srv: TcpTableServer | undefined;
beforeAll(async () => {
  srv = await TcpTableServer.start({ data: CONF_DATA });
});
afterAll(async () => {
  await srv?.close();
});

describeDriver({
  type: "tcp",
  table: () => `tcp:${srv!.address}`,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  async: true,
  impl: F.PATTERN,
  folds: false,
  sequence: false,
  writable: false,
});
