/**
 * source.ts - where a cidr, regexp or pcre table's rules come from, as
 * Postfix's dict_stream_open() (util/dict_stream.c) opens them: a file, or,
 * when the table name starts with "{", the name itself ("cidr:{ {rule1},
 * {rule2} }": the outer braces are removed, the text is split on commas and
 * whitespace outside braces, each piece must be "{...}" and is unwrapped and
 * stripped; each piece is one line). Both are then read as logical lines
 * (config/logicalLines.ts: comments, blank lines, continuation lines).
 *
 * Failures, with the reference's texts:
 * - the file cannot be opened: "open NAME: <strerror>" (the table becomes a
 *   surrogate: RETRY);
 * - a bad inline spec: "TYPE map: <extpar error>" (also a surrogate);
 * - the "file" is a directory: C opens it and then fails to read it; the
 *   caller decides (cidr exits with a read error, regexp and pcre see an
 *   empty table).
 *
 * FileStamp remembers the file's identity (device, inode, size, mtime) so
 * that changed() can tell when it was rewritten or replaced.
 *
 * Reads: the table file. Logs: the line reader's "logical line must not
 * start with whitespace" warning (path "unknown_stream" for inline text, as
 * the reference's memory stream has no path).
 */
import { readFileSync, statSync } from "node:fs";
import { TableError } from "../table";
import { logicalLines, type LogicalLine } from "../../config/logicalLines";
import { errnoText } from "../../util/errno";
import { extpar } from "../../util/stringops";
import { tokensQ } from "../../util/mystrtok";

export interface PatternSource {
  lines: LogicalLine[];
  /** Set when the file could be opened but not read (a directory): the strerror text. */
  readError?: string;
  /** The file's identity at open; undefined for inline text. */
  stamp?: FileStamp;
}

/** Identity of a file on disk, to notice a rewrite or a replacement. */
export class FileStamp {
  private constructor(
    private readonly path: Buffer,
    private readonly id: string,
  ) {}

  private static idOf(path: Buffer): string | undefined {
    try {
      const st = statSync(path, { bigint: true });
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch {
      return undefined;
    }
  }

  static of(path: Buffer): FileStamp | undefined {
    const id = FileStamp.idOf(path);
    return id === undefined ? undefined : new FileStamp(path, id);
  }

  /**
   * True when the file now on disk is not the one that was read. A file
   * that cannot be found is not "changed": the loaded rules stay in use
   * (re-opening would only turn every lookup into an error).
   */
  changed(): boolean {
    const now = FileStamp.idOf(this.path);
    return now !== undefined && now !== this.id;
  }
}

/** Inline rules "{ {rule}, {rule} }" as the text of a file (dict_inline_to_multiline). */
function inlineText(type: string, name: string): string {
  const outer = extpar(name, false);
  if (outer.err !== undefined) throw new TableError("retry", `${type} map: ${outer.err}`);
  let text = "";
  for (const token of tokensQ(outer.text)) {
    const rule = extpar(token, true);
    if (rule.err !== undefined) throw new TableError("retry", `${type} map: ${rule.err}`);
    text += rule.text + "\n";
  }
  return text;
}

/** Open and read a table's rules; throws TableError("retry") when it cannot be opened. */
export function readPatternSource(type: string, name: string): PatternSource {
  if (name.startsWith("{")) return { lines: logicalLines(inlineText(type, name), "unknown_stream") };
  const path = Buffer.from(name, "latin1");
  const stamp = FileStamp.of(path);
  let data: string;
  try {
    data = readFileSync(path).toString("latin1");
  } catch (e) {
    if ((e as { code?: string }).code === "EISDIR") return { lines: [], readError: errnoText(e), stamp };
    throw new TableError("retry", `open ${name}: ${errnoText(e)}`);
  }
  return { lines: logicalLines(data, name), stamp };
}
