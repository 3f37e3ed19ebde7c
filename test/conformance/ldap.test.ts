/** ldap: the conformance suite (test/helpers/conformance.ts), against a private slapd. */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { DictFlag as F } from "../../src/protocol/constants";
import { describeDriver, scratch } from "../helpers/conformance";
import { writeCoolFile } from "../helpers/files";
import { BASE, conformanceLdif, mailDirectoryLdif } from "../helpers/ldap-data";
import { PrivateSlapd } from "../helpers/slapd";

let slapd: PrivateSlapd | undefined;
beforeAll(async () => {
  slapd = await PrivateSlapd.start({ label: "conformance", ldif: (s) => `${mailDirectoryLdif(s)}\n${conformanceLdif()}` });
}, 60_000);
afterAll(async () => {
  await slapd?.destroy();
});

describeDriver({
  type: "ldap",
  table: () => {
    const cf = join(scratch(), "conf-ldap.cf");
    writeCoolFile(cf, `server_host = 127.0.0.1:${slapd!.port}\nsearch_base = ou=conformance,${BASE}\nquery_filter = (labeledURI=%s)\nresult_attribute = description\n`);
    return `ldap:${cf}`;
  },
  async: true,
  entries: [["alpha", "1"], ["beta", "two words"]],
  missing: "gamma",
  impl: F.FIXED,
  folds: true,
  sequence: false,
  writable: false,
  failure: ["ldap:/nonexistent/conf.cf", "open /nonexistent/conf.cf: No such file or directory"],
});
