/**
 * sqlite/dbCommon.ts - query and result templates of the SQL table types,
 * with the semantics of Postfix's global/db_common.c:
 *   %% a '%'; %s the whole key (query) or result (result template);
 *   %u / %d the local part / domain of it; %S, %U, %D the same of the
 *   lookup key inside a result template; %1..%9 the labels of the key's
 *   domain counted from the right.
 * A key without the '@' or domain that the query needs is skipped (no
 * query); so is a key whose domain has fewer labels than the highest %N,
 * or empty labels among those used. Each expansion of a multi-row result
 * is appended with a ',' separator. Values substituted into a query pass
 * through the driver's quote function.
 *
 * The optional "domain" list (string_list semantics: patterns separated by
 * commas and blanks, "!" negation, /file/name contents inline, type:table
 * lookups, case-insensitive exact match) skips keys whose domain is not
 * listed.
 *
 * Note: the mysql driver (src/tables/mysql/) has its own copy of this
 * logic; the two are meant to be merged.
 *
 * Reads: /file/name domain lists. Logs: the reference's warnings for an
 * empty query string or an empty result, "comment at end of line is not
 * supported", and "lookup key ... skipped after query".
 */
import { readFileSync } from "node:fs";
import { msg } from "../../log/msg";
import { TableError } from "../table";
import { CHARS_COMMA_SP, tokensQ } from "../strings";
import { casefold } from "../utf8";
import { errnoText } from "../errno";
import { dictGet, openDict } from "../dict";
import { DictFlag, Status } from "../../protocol/constants";

const KEY_DOMAIN = 1;
const KEY_USER = 2;
const VALUE_DOMAIN = 4;
const VALUE_USER = 8;
const KEY_PARTIAL = 16;

export type Quote = (raw: string) => string;

/** Pattern: exact (folded) string, or a table to look the domain up in, or an unreadable file. */
type Pattern = { neg: boolean; str?: string; table?: string; badFile?: string };

export class DbCommon {
  private flags = 0;
  private nparts = 0;
  private domain: Pattern[] | undefined;
  /** The domain list's name in messages (the configuration's name). */
  private pname = "";

  /** label: "type:name" for messages; dictName: the name as the reference's messages print it. */
  constructor(
    private readonly type: string,
    private readonly dictName: string,
  ) {}

  /** db_common_parse(): check a template, note what it uses. Returns true when it has % expansions. */
  parse(format: string, query: boolean): boolean {
    let dynamic = false;
    for (let i = 0; i < format.length; i++) {
      if (format[i] !== "%") continue;
      const c = format[++i];
      switch (c) {
        case "%":
          break;
        case "u":
          this.flags |= query ? KEY_USER | KEY_PARTIAL : VALUE_USER;
          dynamic = true;
          break;
        case "d":
          this.flags |= query ? KEY_DOMAIN | KEY_PARTIAL : VALUE_DOMAIN;
          dynamic = true;
          break;
        case "s":
        case "S":
          dynamic = true;
          break;
        case "U":
          this.flags |= KEY_PARTIAL | KEY_USER;
          dynamic = true;
          break;
        case "1": case "2": case "3": case "4": case "5": case "6": case "7": case "8": case "9":
          this.nparts = Math.max(this.nparts, Number(c));
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
        case "D":
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
        default:
          throw new TableError("config", `db_common_parse: ${this.dictName}: Invalid ${query ? "query" : "result"} template: ${format}`);
      }
    }
    return dynamic;
  }

  /** db_common_parse_domain(): the "domain" setting ("" = no filter). */
  parseDomain(list: string, pname: string): void {
    if (list === "") return;
    this.pname = pname;
    this.domain = parseList(list, pname, true);
  }

  /**
   * db_common_check_domain(): 1 to query, 0 to skip the key, -1 on a
   * lookup error in the domain list (warned).
   */
  checkDomain(addr: string): number | Promise<number> {
    if (!this.domain) return 1;
    const at = addr.lastIndexOf("@");
    if (at <= 0) return 0;
    return this.matchDomain(casefold(addr.slice(at + 1)), 0);
  }

  /** match_list_match() from pattern `from` on; a table pattern makes it asynchronous. */
  private matchDomain(domain: string, from: number): number | Promise<number> {
    const list = this.domain!;
    for (let i = from; i < list.length; i++) {
      const p = list[i];
      if (p.badFile !== undefined) {
        msg.warn(`non-existent:${p.badFile} is unavailable. ${p.str}`);
        msg.warn(`${this.pname}: non-existent:${p.badFile}: table lookup problem`);
        return -1;
      }
      if (p.table !== undefined) {
        const table = p.table;
        return (async () => {
          const d = await openDict(table, false, DictFlag.LOCK | DictFlag.UTF8_REQUEST);
          const r = await dictGet(d, domain, DictFlag.LOCK | DictFlag.UTF8_REQUEST);
          if (r.status === Status.OK) return p.neg ? 0 : 1;
          if (r.status !== Status.NOKEY) {
            msg.warn(`${this.pname}: ${table}: table lookup problem`);
            return -1;
          }
          return this.matchDomain(domain, i + 1);
        })();
      }
      if (p.str === domain) return p.neg ? 0 : 1;
    }
    return 0;
  }

  /**
   * db_common_expand(): append the expansion of format to `out` (with a
   * ',' first when out is not empty). value is the lookup key (query
   * template, key undefined) or a result (key = the lookup key). Returns
   * undefined when the input is skipped.
   */
  expand(format: string, value: string | null, key: string | undefined, out: string, quote?: Quote): string | undefined {
    if (value === null) return undefined;
    if (value === "") {
      if (key !== undefined) msg.warn(`table "${this.type}:${this.dictName}": empty lookup result for: "${key}" -- ignored`);
      else msg.warn(`table "${this.type}:${this.dictName}": empty query string -- ignored`);
      return undefined;
    }
    let vdomain: number | undefined; // index just past the '@' in value
    let kdomain: number | undefined;
    if (key !== undefined) {
      if (this.flags & (VALUE_DOMAIN | VALUE_USER)) vdomain = atDomain(value);
      if (((vdomain === undefined || vdomain === value.length) && this.flags & VALUE_DOMAIN) || (vdomain === 1 && this.flags & VALUE_USER)) return undefined;
      if (this.flags & (KEY_DOMAIN | KEY_USER)) kdomain = atDomain(key);
      if (((kdomain === undefined || kdomain === key.length) && this.flags & KEY_DOMAIN) || (kdomain === 1 && this.flags & KEY_USER)) {
        msg.warn(`db_common_expand: ${this.dictName}: lookup key '${value}' skipped after query`);
        return undefined;
      }
    } else {
      if (this.flags & (KEY_DOMAIN | KEY_USER)) vdomain = atDomain(value);
      if (((vdomain === undefined || vdomain === value.length) && this.flags & KEY_DOMAIN) || (vdomain === 1 && this.flags & KEY_USER)) return undefined;
    }
    let parts: string[] | undefined;
    if (this.nparts > 0) {
      const d = key !== undefined ? kdomain : vdomain;
      const src = d === undefined ? "" : (key !== undefined ? key : value).slice(d);
      // argv_split(".") drops empty tokens... except that Postfix's
      // argv_split uses mystrtok, which skips empty fields: "a..b" gives
      // ["a", "b"]. The check below then cannot see empty labels, as in C.
      parts = src.split(".").filter((p) => p !== "");
      if (parts.length < this.nparts) return undefined;
      for (let i = 0; i < this.nparts; i++) if (parts[parts.length - i - 1] === "") return undefined;
    }
    const q = (s: string) => (quote ? quote(s) : s);
    let res = out.length > 0 ? out + "," : out;
    const vuser = () => (vdomain !== undefined ? value.slice(0, vdomain - 1) : value);
    for (let i = 0; i < format.length; i++) {
      const ch = format[i];
      if (ch !== "%") {
        res += ch;
        continue;
      }
      const c = format[++i];
      switch (c) {
        case "%":
          res += "%";
          break;
        case "s":
          res += q(value);
          break;
        case "u":
          res += q(vuser());
          break;
        case "d":
          if (vdomain === undefined) throw new TableError("config", `db_common_expand: ${this.dictName}: ${format}: expanding domain-less key or value`);
          res += q(value.slice(vdomain));
          break;
        case "S":
          res += q(key !== undefined ? key : value);
          break;
        case "U":
          if (key !== undefined) res += q(kdomain !== undefined ? key.slice(0, kdomain - 1) : key);
          else res += q(vuser());
          break;
        case "D": {
          const d = key !== undefined ? kdomain : vdomain;
          if (d === undefined) throw new TableError("config", `db_common_expand: ${this.dictName}: ${format}: expanding domain-less key or value`);
          res += q((key !== undefined ? key : value).slice(d));
          break;
        }
        case "1": case "2": case "3": case "4": case "5": case "6": case "7": case "8": case "9":
          if (!parts) throw new TableError("config", `db_common_expand: ${this.dictName}: ${format}: bad query/result template context`);
          res += q(parts[parts.length - Number(c)]);
          break;
        default:
          throw new TableError("config", `db_common_expand: ${this.dictName}: invalid ${key !== undefined ? "result" : "query"} template '${format}'`);
      }
    }
    return res;
  }
}

/** Index just past the last '@', or undefined. */
function atDomain(s: string): number | undefined {
  const at = s.lastIndexOf("@");
  return at < 0 ? undefined : at + 1;
}

/** match_list_parse() for a string list. */
function parseList(text: string, pname: string, initMatch: boolean): Pattern[] {
  const out: Pattern[] = [];
  const toks = tokensQ(text, CHARS_COMMA_SP);
  for (let t = 0; t < toks.length; t++) {
    const start = toks[t];
    if (start.startsWith("#")) {
      msg.warn(`${pname}: comment at end of line is not supported: ${start} ${toks.slice(t + 1).join(" ")}`);
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
        const why = `open file ${item}: ${errnoText(e)}`;
        msg.error(why);
        out.push({ neg: !match, badFile: item, str: why });
        continue;
      }
      for (const line of data.split("\n")) if (!line.startsWith("#")) out.push(...parseList(line, pname, match));
    } else if (!item.startsWith("[") && item.includes(":")) {
      out.push({ neg: !match, table: item });
    } else {
      out.push({ neg: !match, str: casefold(item) });
    }
  }
  return out;
}
