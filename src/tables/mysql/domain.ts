/**
 * domain.ts - the `domain` setting of SQL tables: a Postfix string list
 * (util/match_list.c with match_string) deciding which keys are worth a
 * query (global/db_common.c db_common_check_domain()).
 *
 * List items are separated by commas and blanks, "{...}" kept together;
 * "!item" negates; "/file/name" stands for the file's words (lines that
 * start with '#' skipped; an unreadable file is logged as an error and
 * becomes a "non-existent:/file/name" pattern whose every use fails with a
 * temporary error); "type:table" matches when the domain
 * is a key of that table (opened read-only through the dict layer with the
 * reference's flags lock,utf8_request); anything else is a literal,
 * compared case-insensitively (ASCII). The first item that matches decides.
 *
 * A key is eligible when it has an '@' with a non-empty local part before
 * it and its domain (after the last '@') matches.
 *
 * Errors: "no pattern after '!'" is the reference's fatal error, thrown as
 * TableError("config").
 * Logs: "NAME: comment at end of line is not supported: ...",
 * "NAME: TYPE:TABLE: table lookup problem", and the "is unavailable"
 * warning for an unreadable file.
 */
import { readFileSync } from "node:fs";
import { msg } from "../../log/msg";
import { DictFlag, Status } from "../../protocol/constants";
import { errnoText } from "../errno";
import { TableError } from "../table";
import { lowercaseAscii } from "../utf8";

const DICT_FLAGS = DictFlag.LOCK | DictFlag.UTF8_REQUEST;
const SEP = ", \t\r\n";
/** The type name of the stand-in for an unreadable /file/name (DICT_TYPE_NOFILE). */
const NOFILE = "non-existent";

/** Outcome of a domain check: eligible, not eligible, or a table error. */
export type DomainCheck = "match" | "nomatch" | "retry" | "config";

type Pattern =
  | { kind: "literal"; negate: boolean; text: string }
  | { kind: "table"; negate: boolean; table: string }
  | { kind: "nofile"; negate: boolean; path: string; reason: string };

function isTable(p: string): boolean {
  return p[0] !== "[" && p.includes(":");
}

/** mystrtokq() over a whole string. */
function tokens(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && SEP.includes(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    let level = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === "{") level++;
      else if (level > 0 && c === "}") level--;
      else if (level === 0 && SEP.includes(c)) break;
    }
    out.push(s.slice(start, i));
    if (i < s.length) i++;
  }
  return out;
}

export class DomainList {
  private constructor(
    private readonly pname: string,
    private readonly patterns: Pattern[],
  ) {}

  /** string_list_init(): parse the `domain` value of table NAME. */
  static parse(pname: string, value: string): DomainList {
    const patterns: Pattern[] = [];
    parseInto(pname, value, true, patterns);
    return new DomainList(pname, patterns);
  }

  /** db_common_check_domain() for a lookup key. */
  async check(key: string): Promise<DomainCheck> {
    const at = key.lastIndexOf("@");
    if (at <= 0) return "nomatch";
    const domain = lowercaseAscii(key.slice(at + 1));
    for (const p of this.patterns) {
      const match = !p.negate;
      if (p.kind === "literal") {
        if (p.text === domain) return match ? "match" : "nomatch";
        continue;
      }
      if (p.kind === "nofile") {
        msg.warn(`${NOFILE}:${p.path} is unavailable. ${p.reason}`);
        msg.warn(`${this.pname}: ${NOFILE}:${p.path}: table lookup problem`);
        return "retry";
      }
      const dictLayer = await import("../dict");
      const d = await dictLayer.openDict(p.table, false, DICT_FLAGS);
      const r = await dictLayer.dictGet(d, domain, DICT_FLAGS);
      if (r.status === Status.OK) return match ? "match" : "nomatch";
      if (r.status === Status.RETRY || r.status === Status.CONFIG || r.status === Status.BAD) {
        msg.warn(`${this.pname}: ${p.table}: table lookup problem`);
        return r.status === Status.CONFIG ? "config" : "retry";
      }
    }
    return "nomatch";
  }
}

function parseInto(pname: string, text: string, initMatch: boolean, out: Pattern[]): void {
  const words = tokens(text);
  for (let w = 0; w < words.length; w++) {
    const start = words[w];
    if (start.startsWith("#")) {
      msg.warn(`${pname}: comment at end of line is not supported: ${words.slice(w).join(" ")}`);
      break;
    }
    let match = initMatch;
    let i = 0;
    while (start[i] === "!") {
      match = !match;
      i++;
    }
    const item = start.slice(i);
    if (item === "") throw new TableError("config", `${pname}: no pattern after '!'`);
    if (item.startsWith("/")) {
      let data: string;
      try {
        data = readFileSync(Buffer.from(item, "latin1")).toString("latin1");
      } catch (e) {
        const reason = `open file ${item}: ${errnoText(e)}`;
        msg.error(reason);
        out.push({ kind: "nofile", negate: !match, path: item, reason });
        continue;
      }
      for (const line of data.split("\n")) if (!line.startsWith("#")) parseInto(pname, line, match, out);
    } else if (isTable(item)) {
      out.push({ kind: "table", negate: !match, table: item });
    } else {
      out.push({ kind: "literal", negate: !match, text: lowercaseAscii(item) });
    }
  }
}
