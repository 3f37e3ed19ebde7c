/**
 * template.ts - the %-templates of SQL tables: `query` and `result_format`
 * (Postfix global/db_common.c, the facts written down in mysql_table(5)).
 *
 * Both templates of a table share one context: what they need from the
 * lookup key (%d, %D and %1..%9 need a domain, %u and %U a local part,
 * %1..%9 at least that many domain labels). A key that lacks something
 * either template needs is not looked up at all: expandQuery() returns
 * undefined and the lookup answers "not found" without a query.
 *
 * Expansion rules (lower case = the value being expanded, the key for the
 * query and each column value for result_format; upper case = always the
 * lookup key):
 *   %%  a literal '%'          %s / %S  the whole value / key
 *   %u / %U  the local part (all of it when there is no '@')
 *   %d / %D  the domain part (after the LAST '@')
 *   %1..%9   the n-th label of the key's domain, counted from the right
 * Labels come from splitting the domain at '.', empty labels dropped, as
 * the reference's argv_split() does. Each substituted piece goes through
 * the quote function (SQL escaping) when one is given; literal template
 * text is copied as is.
 *
 * Errors: an invalid template (unknown %x, '%' at the end) throws
 * TableError("config") with the reference's fatal text.
 * Logs: the reference's warnings for an empty key ("empty query string")
 * and for empty result values ("empty lookup result for: ...").
 */
import { msg } from "../../log/msg";
import { TableError } from "../table";

const KEY_DOMAIN = 1 << 0;
const KEY_USER = 1 << 1;
const VALUE_DOMAIN = 1 << 2;
const VALUE_USER = 1 << 3;
const KEY_PARTIAL = 1 << 4;

export type Quote = (piece: string) => string;

/** The parsed needs of a table's two templates. */
export class TemplateContext {
  private flags = 0;
  private nparts = 0;

  constructor(
    /** "mysql", for messages. */
    readonly type: string,
    /** The table name, for messages. */
    readonly name: string,
  ) {}

  /**
   * db_common_parse(): check a template and record what it needs. Returns
   * true when the template has data-dependent expansions.
   */
  parse(format: string, isQuery: boolean): boolean {
    let dynamic = false;
    for (let i = 0; i < format.length; i++) {
      if (format[i] !== "%") continue;
      const c = format[++i];
      switch (c) {
        case "%":
          break;
        case "u":
          this.flags |= isQuery ? KEY_USER | KEY_PARTIAL : VALUE_USER;
          dynamic = true;
          break;
        case "d":
          this.flags |= isQuery ? KEY_DOMAIN | KEY_PARTIAL : VALUE_DOMAIN;
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
        case "1":
        case "2":
        case "3":
        case "4":
        case "5":
        case "6":
        case "7":
        case "8":
        case "9":
          this.nparts = Math.max(this.nparts, c.charCodeAt(0) - 0x30);
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
        case "D":
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
        default:
          throw new TableError("config", `db_common_parse: ${this.name}: Invalid ${isQuery ? "query" : "result"} template: ${format}`);
      }
    }
    return dynamic;
  }

  /** The query text for a key, or undefined when the key is not eligible. */
  expandQuery(format: string, key: string, quote?: Quote): string | undefined {
    return this.expand(format, key, undefined, quote);
  }

  /**
   * One result value through result_format, or undefined when the value
   * is skipped (NULL, empty, or lacking what the format needs).
   */
  expandResult(format: string, value: string | null, key: string): string | undefined {
    return this.expand(format, value, key, undefined);
  }

  private expand(format: string, value: string | null, key: string | undefined, quote: Quote | undefined): string | undefined {
    if (value === null) return undefined;
    if (value === "") {
      if (key !== undefined) msg.warn(`table "${this.type}:${this.name}": empty lookup result for: "${key}" -- ignored`);
      else msg.warn(`table "${this.type}:${this.name}": empty query string -- ignored`);
      return undefined;
    }
    const flags = this.flags;
    let vdomain = -1; // index just after the value's last '@'; -1 = none looked for or found
    let kdomain = -1;
    if (key !== undefined) {
      if (flags & (VALUE_DOMAIN | VALUE_USER)) vdomain = afterLastAt(value);
      if ((vdomain < 0 || vdomain === value.length) && flags & VALUE_DOMAIN) return undefined;
      if (vdomain === 1 && flags & VALUE_USER) return undefined;
      if (flags & (KEY_DOMAIN | KEY_USER)) kdomain = afterLastAt(key);
      if (((kdomain < 0 || kdomain === key.length) && flags & KEY_DOMAIN) || (kdomain === 1 && flags & KEY_USER)) {
        msg.warn(`db_common_expand: ${this.name}: lookup key '${value}' skipped after query`);
        return undefined;
      }
    } else {
      if (flags & (KEY_DOMAIN | KEY_USER)) vdomain = afterLastAt(value);
      if (((vdomain < 0 || vdomain === value.length) && flags & KEY_DOMAIN) || (vdomain === 1 && flags & KEY_USER)) return undefined;
    }

    let parts: string[] | undefined;
    if (this.nparts > 0) {
      const src = key !== undefined ? (kdomain < 0 ? "" : key.slice(kdomain)) : vdomain < 0 ? "" : value.slice(vdomain);
      parts = src.split(".").filter((p) => p !== "");
      if (parts.length < this.nparts) return undefined;
    }

    const q = quote ?? ((s: string) => s);
    const vuser = vdomain >= 0 ? value.slice(0, vdomain - 1) : value;
    let out = "";
    for (let i = 0; i < format.length; i++) {
      const ch = format[i];
      if (ch !== "%") {
        out += ch;
        continue;
      }
      const c = format[++i];
      switch (c) {
        case "%":
          out += "%";
          break;
        case "s":
          out += q(value);
          break;
        case "u":
          out += q(vuser);
          break;
        case "d":
          out += q(value.slice(vdomain));
          break;
        case "S":
          out += q(key ?? value);
          break;
        case "U":
          if (key !== undefined) out += q(kdomain >= 0 ? key.slice(0, kdomain - 1) : key);
          else out += q(vuser);
          break;
        case "D":
          out += q(key !== undefined ? key.slice(kdomain) : value.slice(vdomain));
          break;
        case "1":
        case "2":
        case "3":
        case "4":
        case "5":
        case "6":
        case "7":
        case "8":
        case "9":
          out += q(parts![parts!.length - (c.charCodeAt(0) - 0x30)]);
          break;
        default:
          // parse() has refused such templates already.
          throw new TableError("config", `db_common_expand: ${this.name}: invalid ${key !== undefined ? "result" : "query"} template '${format}'`);
      }
    }
    return out;
  }
}

function afterLastAt(s: string): number {
  const at = s.lastIndexOf("@");
  return at < 0 ? -1 : at + 1;
}

/**
 * db_common_sql_build_query(): the query of the legacy fields
 * (select_field, table, where_field, additional_conditions).
 */
export function legacyQuery(selectField: string, table: string, whereField: string, additional: string): string {
  return `SELECT ${selectField} FROM ${table} WHERE ${whereField}='%s' ${additional}`;
}
