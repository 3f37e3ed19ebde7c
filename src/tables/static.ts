/**
 * static.ts - the "static" table type: every lookup finds the table's name
 * as its value, static:value or static:{ value with spaces } (Postfix
 * util/dict_static.c). Lookup only: no sequence, update or delete (the
 * reference exits on those; the dict layer answers CONFIG).
 *
 * Reads nothing but its name (and a -F file when SRC_RHS_IS_FILE is set).
 * Logs nothing; open failures carry the reference's texts.
 */
import { DictFlag } from "../protocol/constants";
import { TableError, type OpenArgs, type Table, type TableType } from "./table";
import { fileToBase64 } from "./dictFile";
import { SRC_RHS_IS_FILE } from "./flagsStr";
import { extpar } from "../util/stringops";

const TYPE = "static";

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  let value = name;
  if (name[0] === "{") {
    const x = extpar(name, true);
    if (x.err !== undefined) throw new TableError("retry", `bad ${TYPE}:name syntax: ${x.err}`);
    value = x.text;
  }
  if (flags & SRC_RHS_IS_FILE) {
    const f = fileToBase64(value);
    if ("err" in f) throw new TableError("retry", f.err);
    value = f.value;
  }
  const fixed = value;
  return {
    flags: flags | DictFlag.FIXED,
    lookup: () => fixed,
  };
}

export const staticTable: TableType = { type: TYPE, open };
