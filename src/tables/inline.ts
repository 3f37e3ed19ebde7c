/**
 * inline.ts - the "inline" table type: the table is its own name,
 * inline:{ key=value, { key = value with spaces }, ... } (Postfix
 * util/dict_inline.c).
 *
 * The name must be one balanced "{...}" group with something inside; its
 * content is split on commas and whitespace, keeping "{...}" groups whole;
 * a group is unwrapped and stripped; each element is "key = value" (the key
 * may be quoted, and stays quoted). A repeated key takes the last value
 * (the reference does not check duplicates here). Keys are folded per the
 * open flags (ht.ts). Read service only.
 *
 * Reads nothing but its name (and -F files when SRC_RHS_IS_FILE is set).
 * Logs nothing; open failures carry the reference's texts.
 */
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { InternalTable } from "./ht";
import { fileToBase64 } from "./dictFile";
import { SRC_RHS_IS_FILE } from "./flagsStr";
import { allAscii, needUtf8Activation, validUtf8 } from "./utf8";
import { balpar, extpar, splitQnameval } from "../util/stringops";
import { tokensQ } from "../util/mystrtok";

const TYPE = "inline";

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  if (needUtf8Activation(flags) && !allAscii(name) && !validUtf8(name)) {
    throw new TableError("retry", `bad UTF-8 syntax: "${TYPE}:${name}"; need "${TYPE}:{name=value...}"`);
  }
  const len = balpar(name);
  if (len === 0 || len !== name.length || len === 2) {
    throw new TableError("retry", `bad syntax: "${TYPE}:${name}"; need "${TYPE}:{name=value...}"`);
  }
  const table = new InternalTable(TYPE, name, flags, args.gen);
  let err: string | undefined;
  let count = 0;
  for (let nameval of tokensQ(name.slice(1, len - 1))) {
    if (nameval[0] === "{") {
      const x = extpar(nameval, true);
      if (x.err !== undefined) {
        err = x.err;
        break;
      }
      nameval = x.text;
    }
    const kv = splitQnameval(nameval);
    if ("err" in kv) {
      err = kv.err;
      break;
    }
    let value = kv.value;
    if (flags & SRC_RHS_IS_FILE) {
      const f = fileToBase64(value);
      if ("err" in f) {
        err = f.err;
        break;
      }
      value = f.value;
    }
    const stored = table.storeKey(kv.key);
    if (stored !== undefined) table.put(stored, value);
    count++;
  }
  if (err !== undefined || count === 0) {
    const what = flags & SRC_RHS_IS_FILE ? "filename" : "value";
    throw new TableError("retry", `${err ?? "empty table"}: "${TYPE}:${name}"; need "${TYPE}:{name=${what}...}"`);
  }
  return table;
}

export const inline: TableType = { type: TYPE, open, utf8Inside: true, refuses: READ_ONLY };
