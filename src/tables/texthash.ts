/**
 * texthash.ts - the "texthash" table type: a postmap-format text file read
 * into memory at open (Postfix util/dict_thash.c).
 *
 * File format, as the reference reads it: logical lines (config/logicalLines.ts: comments,
 * blank lines, continuation lines); each is split at the first whitespace
 * that is not inside double quotes or after a backslash; the key keeps its
 * quotes and backslashes; the value has leading and trailing whitespace
 * removed. Keys are folded per the open flags (ht.ts). A duplicate key
 * keeps the first value with DUP_IGNORE or DUP_WARN (which warns), takes
 * the last with DUP_REPLACE, and without any of these the table fails to
 * open. When the file was modified within the last second it is read again
 * after 0.3 s, until it holds still, as the reference does.
 *
 * Only the read service can open it; the write service gets the reference's
 * "map requires O_RDONLY access mode" failure. The file is not watched for
 * changes: Postfix 3.7's texthash has no change detection either (only
 * hash, btree, dbm, sdbm and lmdb tables restart proxymap).
 *
 * Reads: the named file (bytes kept 1:1, latin1). Logs: the reference's
 * per-line warnings (non-UTF-8 input, unbalanced quote, missing value,
 * "key: value" format, duplicate entry, unreadable -F file).
 */
import { DictFlag } from "../protocol/constants";
import type { Gen } from "../protocol/scan";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type Table, type TableType, READ_ONLY } from "./table";
import { InternalTable, utf8LayerFor } from "./ht";
import { readCooled, readSourceFile } from "./coolFile";
import { logicalLines } from "../config/logicalLines";
import { fileToBase64 } from "./dictFile";
import { SRC_RHS_IS_FILE } from "./flagsStr";
import { allAscii, validUtf8 } from "./utf8";
import { cString, isSpaceCode } from "../util/ctype";
import { trimTrailing } from "../util/stringops";

const TYPE = "texthash";
const NON_ASCII = /[^\x00-\x7f]/;
const QUOTE_OR_ESCAPE = /["\\]/;
const SPACE = /[\t\n\v\f\r ]/;
/** One pass over the file: the loaded table and the file's mtime (seconds). */
function loadOnce(path: string, flags: number, gen: Gen): { table: InternalTable; mtime: number } {
  const { data, mtime } = readSourceFile(path, "open database");
  const table = new InternalTable(TYPE, path, flags, gen);
  // dict_thash checks lines when the UTF-8 layer is there (up to 3.10,
  // where it loads through it) or the client claimed it is, by sending
  // UTF8_ACTIVE (from 3.11 only then: the layer comes after the loading).
  const checkUtf8 = (gen === "classic" && utf8LayerFor(flags)) || (flags & DictFlag.UTF8_ACTIVE) !== 0;

  // A start-up loads its tables before the first reply, while the engine
  // still interprets rather than compiles: the common case (an ASCII file,
  // lines without quotes or backslashes) goes through native string
  // searches instead of per-character loops.
  const ascii = !NON_ASCII.test(data);
  for (const { text, lineno } of logicalLines(data, path)) {
    const line = cString(text);
    if (checkUtf8 && !ascii && !allAscii(line) && !validUtf8(text)) {
      msg.warn(`${path}, line ${lineno}: non-UTF-8 input "${line}" -- ignoring this line`);
      continue;
    }
    let key: string;
    let value: string;
    if (ascii && !QUOTE_OR_ESCAPE.test(line)) {
      const ws = SPACE.exec(line);
      const i = ws ? ws.index : line.length;
      key = line.slice(0, i);
      // trim() removes exactly C's isspace() set from an ASCII string.
      value = i < line.length ? line.slice(i + 1).trim() : "";
    } else {
      // Split at the first whitespace outside quotes and not escaped.
      let inQuotes = false;
      let i = 0;
      for (; i < line.length; i++) {
        const c = line.charCodeAt(i);
        if (c === 0x5c /* \ */) {
          if (++i >= line.length) break;
        } else if (isSpaceCode(c)) {
          if (!inQuotes) break;
        } else if (c === 0x22 /* " */) {
          inQuotes = !inQuotes;
        }
      }
      if (inQuotes) {
        msg.warn(`${path}, line ${lineno}: unbalanced '"' in '${line}' -- ignoring this line`);
        continue;
      }
      key = line.slice(0, i);
      let v = i + 1;
      while (v < line.length && isSpaceCode(line.charCodeAt(v))) v++;
      value = v < line.length ? trimTrailing(line.slice(v)) : "";
    }
    if (key.length === 0 || value.length === 0) {
      msg.warn(`${path}, line ${lineno}: expected format: key whitespace value -- ignoring this line`);
      continue;
    }
    if (key.endsWith(":")) {
      msg.warn(`${path}, line ${lineno}: record is in "key: value" format; is this an alias file?`);
    }
    if (flags & SRC_RHS_IS_FILE) {
      const f = fileToBase64(value);
      if ("err" in f) {
        msg.warn(`${path}, line ${lineno}: ${f.err}: skipping this entry`);
        continue;
      }
      value = f.value;
    }
    const stored = table.storeKey(key, ascii);
    if (stored !== undefined && table.hasStored(stored)) {
      if (flags & DictFlag.DUP_IGNORE) {
        // keep the first value
      } else if (flags & DictFlag.DUP_REPLACE) {
        table.put(stored, value, ascii);
      } else if (flags & DictFlag.DUP_WARN) {
        msg.warn(`${path}, line ${lineno}: duplicate entry: "${key}"`);
      } else {
        throw new TableError("retry", `${path}, line ${lineno}: duplicate entry: "${key}"`);
      }
    } else if (stored !== undefined) {
      table.put(stored, value, ascii);
    }
  }
  return { table, mtime };
}

function open(args: OpenArgs): Table | Promise<Table> {
  const path = args.name;
  return readCooled(() => {
    const { table, mtime } = loadOnce(path, args.flags, args.gen ?? "classic");
    return { value: table as Table, mtime };
  }, `pausing to let file ${path} cool down`);
}

export const texthash: TableType = { type: TYPE, open, utf8Inside: true, refuses: READ_ONLY };
