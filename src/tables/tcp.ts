/**
 * tcp.ts - the "tcp" table type (Postfix util/dict_tcp.c, tcp_table(5)): its
 * entry in the registry. The driver is tcp/driver.ts. It is loaded, with what
 * it needs (node:net), by prepare(): before chroot when the approved lists
 * name the type, else on its first open (src/tables/prepare.ts). A process
 * that serves no tcp table spends neither the start-up time nor the memory;
 * src/util/lazyModule.ts says how the single executable still carries it.
 *
 * Reads and logs nothing itself.
 */
import type { TableType } from "./table";
import { lazyModule } from "../util/lazyModule";

const driver = lazyModule(() => import("./tcp/driver"));

export const tcp: TableType = {
  type: "tcp",
  refuses: [{ unauth: "security sensitive data" }, "write"],
  prepare: () => driver.load().then(() => undefined),
  open: (args) => driver.use((d) => d.open(args)),
};
