/**
 * dbCommon/domain.ts - the `domain` setting of SQL tables: a Postfix
 * string list (util/match_list.c with match_string) deciding which keys
 * are worth a query (global/db_common.c db_common_check_domain()), shared
 * by the mysql and sqlite drivers.
 *
 * List items are separated by commas and blanks, "{...}" kept together;
 * "!item" negates; "/file/name" stands for the file's words (lines that
 * start with '#' skipped; an unreadable file is logged as an error and
 * becomes a "non-existent:/file/name" pattern whose every use fails with a
 * temporary error); "type:table" matches when the domain is a key of that
 * table (opened read-only through the OpenContext, registered under its
 * name as match_list does, with the reference's flags lock,utf8_request); anything else is a literal, compared after
 * case folding. The first item that matches decides.
 *
 * A key is eligible when it has an '@' with a non-empty local part before
 * it and its domain (after the last '@') matches. The check is synchronous
 * unless a type:table item has to be consulted.
 *
 * As the reference's match_list: literals and the key's domain are
 * case-folded (UTF-8 aware when smtputf8_enable is on), a "#" word ends the
 * list with a warning printed as "%s %s" (the word, then the rest), and any
 * type:table answer other than found / not found is a lookup problem.
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
import { errnoText } from "../../util/errno";
import { CHARS_COMMA_SP } from "../../util/ctype";
import { tokensQ } from "../../util/mystrtok";
import { TableError, type Maybe, type OpenContext, type OpenedTable } from "../table";
import { casefold } from "../utf8";

const DICT_FLAGS = DictFlag.LOCK | DictFlag.UTF8_REQUEST;
/** The type name of the stand-in for an unreadable /file/name (DICT_TYPE_NOFILE). */
const NOFILE = "non-existent";

/** Outcome of a domain check: eligible, not eligible, or a table error. */
export type DomainCheck = "match" | "nomatch" | "retry" | "config";

type Pattern =
  | { kind: "literal"; negate: boolean; text: string }
  | { kind: "table"; negate: boolean; table: string; opened?: Maybe<OpenedTable> }
  | { kind: "nofile"; negate: boolean; path: string; reason: string };

export class DomainList {
  private constructor(
    private readonly pname: string,
    private readonly patterns: Pattern[],
    private readonly ctx: OpenContext,
  ) {}

  /**
   * string_list_init(): parse the `domain` value of table NAME. Its
   * type:table items are opened through ctx on first use.
   */
  static parse(pname: string, value: string, ctx: OpenContext): DomainList {
    const patterns: Pattern[] = [];
    parseInto(pname, value, true, patterns);
    return new DomainList(pname, patterns, ctx);
  }

  /** The owning table closes: let go of the tables opened for the list. */
  close(): void {
    for (const p of this.patterns) {
      if (p.kind !== "table" || p.opened === undefined) continue;
      const opened = p.opened;
      p.opened = undefined;
      if (opened instanceof Promise) opened.then((t) => t.release(), () => undefined);
      else opened.release();
    }
  }

  /** db_common_check_domain() for a lookup key. */
  check(key: string): DomainCheck | Promise<DomainCheck> {
    const at = key.lastIndexOf("@");
    if (at <= 0) return "nomatch";
    return this.matchFrom(casefold(key.slice(at + 1)), 0);
  }

  /** match_list_match() from pattern `from` on; a table pattern makes it asynchronous. */
  private matchFrom(domain: string, from: number): DomainCheck | Promise<DomainCheck> {
    for (let i = from; i < this.patterns.length; i++) {
      const p = this.patterns[i];
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
      return this.matchTable(p, match, domain, i);
    }
    return "nomatch";
  }

  private async matchTable(p: Pattern & { kind: "table" }, match: boolean, domain: string, index: number): Promise<DomainCheck> {
    p.opened ??= this.ctx.openTable(p.table, DICT_FLAGS);
    const r = await (await p.opened).lookup(domain);
    if (r.status === Status.OK) return match ? "match" : "nomatch";
    if (r.status !== Status.NOKEY) {
      msg.warn(`${this.pname}: ${p.table}: table lookup problem`);
      return r.status === Status.CONFIG ? "config" : "retry";
    }
    return this.matchFrom(domain, index + 1);
  }
}

function parseInto(pname: string, text: string, initMatch: boolean, out: Pattern[]): void {
  const words = tokensQ(text, CHARS_COMMA_SP);
  for (let w = 0; w < words.length; w++) {
    const start = words[w];
    if (start.startsWith("#")) {
      const tail = `${start} ${words.slice(w + 1).join(" ")}`;
      msg.warn(`${pname}: comment at end of line is not supported: ${tail}`);
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
        // A pseudo table that fails every lookup (the reference's graceful degradation).
        const reason = `open file ${item}: ${errnoText(e)}`;
        msg.error(reason);
        out.push({ kind: "nofile", negate: !match, path: item, reason });
        continue;
      }
      for (const line of data.split("\n")) if (!line.startsWith("#")) parseInto(pname, line, match, out);
    } else if (item[0] !== "[" && item.includes(":")) {
      out.push({ kind: "table", negate: !match, table: item });
    } else {
      out.push({ kind: "literal", negate: !match, text: casefold(item) });
    }
  }
}
