/**
 * pgsql.ts - the "pgsql" table type (Postfix global/dict_pgsql.c,
 * pgsql_table(5)): its entry in the registry. The driver is pgsql/driver.ts.
 * It is loaded, with what it needs (Bun's SQL client, node:net and node:dns),
 * by prepare(): before chroot when the approved lists name the type, else on
 * its first open (src/tables/prepare.ts). A process that serves no pgsql table
 * spends neither the start-up time nor the memory; src/util/lazyModule.ts says
 * how the single executable still carries it.
 *
 * Reads and logs nothing itself.
 */
import { READ_ONLY, type TableType } from "./table";
import { lazyModule } from "../util/lazyModule";

const driver = lazyModule(() => import("./pgsql/driver"));

export const pgsql: TableType = {
  type: "pgsql",
  refuses: READ_ONLY,
  prepare: () => driver.load().then(() => undefined),
  open: (args, ctx) => driver.use((d) => d.open(args, ctx)),
};
