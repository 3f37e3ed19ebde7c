/**
 * cdb.ts - the "cdb" table type: FILE.cdb as written by `postmap cdb:FILE`
 * (Postfix util/dict_cdb.c, query mode), read by positioned reads
 * (cdb/reader.ts), never loaded whole.
 *
 * Lookups as the reference: FOLD_FIX lowercases ASCII letters of the key;
 * with TRY1NULL the key is tried with a trailing NUL byte, then with
 * TRY0NULL without it; the first hit fixes the convention for this table
 * (the other bit is cleared from `flags`). A table opened with neither bit
 * tries both. The value is what the C code sees: the bytes up to the first
 * NUL.
 *
 * cdb files are constant: there is no update or delete. The reference's
 * proxywrite exits when asked to open one for writing; we open it read-only
 * there too, and the dict layer answers update/delete with a warning and
 * CONFIG ("operation is not supported"), so the file is never touched.
 * `sequence` walks the records in file order (the reference exits on it).
 *
 * A rebuilt file (postmap writes FILE.cdb.tmp and renames it) is noticed by
 * changed(): the path then names another inode, or the file was modified.
 *
 * Reads: FILE.cdb, and FILE's mtime. Logs: "database FILE.cdb is older than
 * source file FILE" at open, as the reference.
 */
import { statSync } from "node:fs";
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, settledIf, type OpenArgs, type Out, type Table, type TableType } from "./table";
import { CdbReader } from "./cdb/reader";
import { errnoText } from "../util/errno";
import { lowercaseAscii } from "./utf8";
import { cString } from "../util/ctype";

const TYPE = "cdb";
const TRY_BOTH = DictFlag.TRY0NULL | DictFlag.TRY1NULL;

class CdbTable implements Table {
  flags: number;
  /**
   * The reference's dict->name: FILE.cdb, which its DEBUG and UTF-8 lines
   * show (for the dict layer, when it uses the property).
   */
  readonly dictName: string;
  private seqPos = -1;

  constructor(
    private readonly reader: CdbReader,
    private readonly cdbPath: string,
    flags: number,
  ) {
    this.flags = flags;
    this.dictName = cdbPath;
  }

  /**
   * Find the key with the call's NUL conventions (TRY1NULL: with a trailing
   * NUL; TRY0NULL: without); a hit fixes the convention: the other bit is
   * cleared from the call's flags, which the dict layer keeps.
   */
  private findRecord(key: string, flags: number): [ReturnType<CdbReader["find"]>, number] {
    const k = Buffer.from(key + "\0", "latin1");
    if (flags & DictFlag.TRY1NULL) {
      const r = this.reader.find(k);
      if (r) return [r, flags & ~DictFlag.TRY0NULL];
    }
    if (flags & DictFlag.TRY0NULL) {
      const r = this.reader.find(k.subarray(0, k.length - 1));
      if (r) return [r, flags & ~DictFlag.TRY1NULL];
    }
    return [undefined, flags];
  }

  lookup(key: string, flags: number): Out<string | undefined> {
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    try {
      const [r, after] = this.findRecord(name, flags);
      return settledIf(r ? cString(this.reader.bytes(r.dataPos, r.dataLen)) : undefined, flags, after);
    } catch (e) {
      throw new TableError("retry", `error reading ${this.cdbPath}: ${errnoText(e)}`);
    }
  }

  sequence(fn: 0 | 1): [string, string] | undefined {
    try {
      if (fn === 0) this.seqPos = this.reader.firstRecord;
      else if (this.seqPos < 0) return undefined;
      const r = this.reader.recordAt(this.seqPos);
      if (!r) {
        this.seqPos = -1;
        return undefined;
      }
      this.seqPos = r.dataPos + r.dataLen;
      return [cString(this.reader.bytes(r.keyPos, r.keyLen)), cString(this.reader.bytes(r.dataPos, r.dataLen))];
    } catch (e) {
      this.seqPos = -1;
      throw new TableError("retry", `error reading ${this.cdbPath}: ${errnoText(e)}`);
    }
  }

  changed(): boolean {
    try {
      const st = statSync(Buffer.from(this.cdbPath, "latin1"));
      return st.ino !== this.reader.ino || st.dev !== this.reader.dev || st.mtimeMs !== this.reader.mtimeMs || st.size !== this.reader.size;
    } catch {
      // Gone (or mid-rename): keep serving the file we have open.
      return false;
    }
  }

  close(): void {
    this.reader.close();
  }
}

function open(args: OpenArgs): Table {
  const cdbPath = `${args.name}.cdb`;
  let reader: CdbReader;
  try {
    reader = new CdbReader(Buffer.from(cdbPath, "latin1"));
  } catch (e) {
    if ((e as { code?: string }).code === "EPROTO") {
      // tinycdb refuses it; the reference exits ("unable to init").
      throw new TableError("config", `dict_cdbq_open: unable to init ${cdbPath}: ${errnoText(e)}`);
    }
    throw new TableError("retry", `open database ${cdbPath}: ${errnoText(e)}`);
  }
  try {
    const src = statSync(Buffer.from(args.name, "latin1"));
    const srcMtime = Math.floor(src.mtimeMs / 1000);
    if (srcMtime > Math.floor(reader.mtimeMs / 1000) && srcMtime < Math.floor(Date.now() / 1000) - 100) {
      msg.warn(`database ${cdbPath} is older than source file ${args.name}`);
    }
  } catch {
    // no source file: nothing to compare
  }
  let flags = args.flags;
  if ((flags & TRY_BOTH) === 0) flags |= TRY_BOTH;
  return new CdbTable(reader, cdbPath, flags | DictFlag.FIXED);
}

export const cdb: TableType = { type: TYPE, open };
