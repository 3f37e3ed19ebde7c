/**
 * ldap.ts - the "ldap" table type (Postfix global/dict_ldap.c, ldap_table(5)):
 * its entry in the registry. The driver is ldap/driver.ts. It is loaded, with
 * what it needs (ldapts's BER codec, node:net and node:tls), by prepare():
 * before chroot when the approved lists name the type, else on its first open
 * (src/tables/prepare.ts). A process that serves no ldap table spends neither
 * the start-up time nor the memory; src/util/lazyModule.ts says how the single
 * executable still carries it.
 *
 * Reads and logs nothing itself.
 */
import { READ_ONLY, type TableType } from "./table";
import { lazyModule } from "../util/lazyModule";

const driver = lazyModule(() => import("./ldap/driver"));

export const ldapTable: TableType = {
  type: "ldap",
  refuses: READ_ONLY,
  prepare: () => driver.load().then(() => undefined),
  open: (args, ctx) => driver.use((d) => d.open(args, ctx)),
};
