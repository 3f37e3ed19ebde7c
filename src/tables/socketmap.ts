/**
 * socketmap.ts - the "socketmap" table type (Postfix util/dict_sockmap.c,
 * socketmap_table(5)): its entry in the registry. The driver is
 * socketmap/driver.ts. It is loaded, with what it needs (node:net), by
 * prepare(): before chroot when the approved lists name the type, else on its
 * first open (src/tables/prepare.ts). A process that serves no socketmap table
 * spends neither the start-up time nor the memory; src/util/lazyModule.ts says
 * how the single executable still carries it.
 *
 * Reads and logs nothing itself.
 */
import type { TableType } from "./table";
import { lazyModule } from "../util/lazyModule";

const driver = lazyModule(() => import("./socketmap/driver"));

export const socketmap: TableType = {
  type: "socketmap",
  refuses: ["write", { unauth: "security-sensitive data" }],
  prepare: () => driver.load().then(() => undefined),
  open: (args) => driver.use((d) => d.open(args)),
};
