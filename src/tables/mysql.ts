/**
 * mysql.ts - the "mysql" table type (Postfix global/dict_mysql.c,
 * mysql_table(5)): its entry in the registry. The driver is mysql/driver.ts.
 * It is loaded, with what it needs (the mysql2 client), by prepare(): before
 * chroot when the approved lists name the type, else on its first open
 * (src/tables/prepare.ts). A process that serves no mysql table spends neither
 * the start-up time nor the memory; src/util/lazyModule.ts says how the single
 * executable still carries it.
 *
 * Reads and logs nothing itself.
 */
import { READ_ONLY, type TableType } from "./table";
import { lazyModule } from "../util/lazyModule";

const driver = lazyModule(() => import("./mysql/driver"));

export const mysqlTable: TableType = {
  type: "mysql",
  refuses: READ_ONLY,
  prepare: () => driver.load().then(() => undefined),
  open: (args, ctx) => driver.use((d) => d.open(args, ctx)),
};
