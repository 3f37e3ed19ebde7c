/**
 * fail.ts - the "fail" table type: every operation fails with a temporary
 * error (RETRY), silently; the name is only a label (Postfix
 * util/dict_fail.c). Update and delete exist only when opened by the write
 * service, as in the reference.
 *
 * Reads nothing. Logs nothing.
 */
import { DictFlag } from "../protocol/constants";
import { TableError, type OpenArgs, type Table, type TableType } from "./table";

const TYPE = "fail";

function fail(): never {
  // An empty message: the reference logs nothing for these failures.
  throw new TableError("retry", "");
}

function open(args: OpenArgs): Table {
  const table: Table = {
    flags: args.flags | DictFlag.PATTERN,
    lookup: fail,
    sequence: fail,
  };
  if (args.write) {
    table.update = fail;
    table.delete = fail;
  }
  return table;
}

export const failTable: TableType = { type: TYPE, open };
