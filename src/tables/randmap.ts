/**
 * randmap.ts - the "randmap" table type, randmap:{value, value, ...}: every
 * lookup answers one of the listed values, picked at random whatever the
 * key (Postfix util/dict_random.c). Values are split on commas and
 * whitespace; a {...} group stays one value, braces included, as in the
 * reference. With SRC_RHS_IS_FILE each value names files whose contents
 * (base64) are the values. Lookup only, read service only.
 *
 * Errors at open (surrogates: RETRY on every operation, logged once):
 * "randmap:NAME map requires O_RDONLY access mode", 'bad syntax:
 * "randmap:NAME"; need "randmap:{value...}"', and file errors.
 *
 * Reads: -F files only. Logs: the open errors.
 */
import { DictFlag } from "../protocol/constants";
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { fileToBase64 } from "./dictFile";
import { SRC_RHS_IS_FILE } from "./flagsStr";
import { balpar } from "../util/stringops";
import { tokensQ } from "../util/mystrtok";

const TYPE = "randmap";

function open(args: OpenArgs): Table {
  const { name, flags } = args;
  const syntax = () => new TableError("retry", `bad syntax: "${TYPE}:${name}"; need "${TYPE}:{value...}"`);
  const len = balpar(name);
  if (len === 0 || len !== name.length || len === 2) throw syntax();
  const replies: string[] = [];
  for (const word of tokensQ(name.slice(1, len - 1))) {
    if (flags & SRC_RHS_IS_FILE) {
      const f = fileToBase64(word);
      if ("err" in f) throw new TableError("retry", f.err);
      replies.push(f.value);
    } else {
      replies.push(word);
    }
  }
  if (replies.length === 0) throw syntax();
  return {
    flags: flags | DictFlag.PATTERN,
    lookup: () => replies[Math.floor(Math.random() * replies.length)],
  };
}

export const randmap: TableType = { type: TYPE, open, refuses: READ_ONLY };
