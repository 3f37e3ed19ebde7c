/**
 * memcache: the conformance suite (test/helpers/conformance.ts), against a
 * memcached of the test's own holding the entries (set again before each
 * test: the write-service test deletes its own key only). No backup, so
 * sequence answers not found with the reference's warning.
 */
import { afterAll, beforeAll, beforeEach } from "bun:test";
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { CONF_DATA, describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";
import { Memcached } from "../helpers/memcached";

let mc: Memcached | undefined;
beforeAll(async () => {
  mc = await Memcached.start();
});
beforeEach(async () => {
  for (const [k, v] of Object.entries(CONF_DATA)) await mc!.set(k, v);
});
afterAll(async () => {
  await mc?.close();
});

describeDriver({
  type: "memcache",
  table: () => `memcache:${writeCoolFile(join(scratch(), "conf-memcache.cf"), `memcache = ${mc!.server}\n`)}`,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  async: true,
  impl: F.FIXED | F.MULTI_WRITER,
  folds: true,
  sequence: false,
  sequenceWarning: (name) => `warning: database ${name}: first/next support requires backup database`,
  writable: true,
  writableOps: true,
  failure: ["memcache:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
});
