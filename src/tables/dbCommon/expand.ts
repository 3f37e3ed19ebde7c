/**
 * dbCommon/expand.ts - the %-templates of SQL tables: `query` and
 * `result_format` (Postfix global/db_common.c, the facts written down in
 * mysql_table(5) and sqlite_table(5)), shared by the mysql and sqlite
 * drivers.
 *
 * Both templates of a table share one context: what they need from the
 * lookup key (%d, %D and %1..%9 need a domain, %u and %U a local part,
 * %1..%9 at least that many domain labels). A key that lacks something
 * either template needs is not looked up at all (the query expands to
 * undefined and the lookup answers "not found" without a query).
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
 * the driver's quote function (its own SQL escaping, passed in); literal
 * template text is copied as is.
 *
 * Errors: an invalid template (unknown %x, '%' at the end) throws
 * TableError("config") with the reference's fatal text.
 * Logs: the reference's warnings for an empty key ("empty query string"),
 * for empty result values ("empty lookup result for: ...") and "lookup key
 * ... skipped after query".
 */
import { msg } from "../../log/msg";
import { TableError } from "../table";

const KEY_DOMAIN = 1 << 0;
const KEY_USER = 1 << 1;
const VALUE_DOMAIN = 1 << 2;
const VALUE_USER = 1 << 3;
const KEY_PARTIAL = 1 << 4;

/** A driver's SQL quoting of one substituted piece. */
export type Quote = (piece: string) => string;

/** The parsed needs of a table's two templates. */
export class TemplateContext {
  private flags = 0;
  private nparts = 0;

  constructor(
    /** "mysql", "sqlite": for messages. */
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
        case "D":
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
        default:
          if (!isLabelDigit(c)) throw new TableError("config", `db_common_parse: ${this.name}: Invalid ${isQuery ? "query" : "result"} template: ${format}`);
          // %1..%9: a domain label of the key, counted from the right.
          this.nparts = Math.max(this.nparts, c.charCodeAt(0) - 0x30);
          this.flags |= KEY_PARTIAL | KEY_DOMAIN;
          dynamic = true;
          break;
      }
    }
    return dynamic;
  }

  /** The query text for a key, or undefined when the key is not eligible. */
  expandQuery(format: string, key: string, quote?: Quote): string | undefined {
    return this.expandOne(format, key, undefined, quote);
  }

  /**
   * One result value through result_format, or undefined when the value
   * is skipped (NULL, empty, or lacking what the format needs).
   */
  expandResult(format: string, value: string | null, key: string): string | undefined {
    return this.expandOne(format, value, key, undefined);
  }

  /**
   * db_common_expand() in the reference's appending form: the expansion
   * appended to `out` (after a ',' when out is not empty), or undefined
   * when the input is skipped. key undefined = expanding the query.
   */
  expand(format: string, value: string | null, key: string | undefined, out: string, quote?: Quote): string | undefined {
    const piece = this.expandOne(format, value, key, quote);
    if (piece === undefined) return undefined;
    return out.length > 0 ? `${out},${piece}` : piece;
  }

  private expandOne(format: string, value: string | null, key: string | undefined, quote: Quote | undefined): string | undefined {
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
    // The reference panics when a format was not parsed into this context
    // and asks for a domain it never looked for; so do we (as a config error).
    const noDomain = (): never => {
      throw new TableError("config", `db_common_expand: ${this.name}: ${format}: expanding domain-less key or value`);
    };
    const vuser = vdomain >= 0 ? value.slice(0, vdomain - 1) : value;
    let out = "";
    // Text between directives is copied a run at a time (one concatenation
    // per run, not per character: this runs for every lookup).
    for (let i = 0; i < format.length; i++) {
      const pct = format.indexOf("%", i);
      if (pct < 0) {
        out += format.slice(i);
        break;
      }
      if (pct > i) out += format.slice(i, pct);
      i = pct + 1;
      const c = format[i];
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
          if (vdomain < 0) noDomain();
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
          if ((key !== undefined ? kdomain : vdomain) < 0) noDomain();
          out += q(key !== undefined ? key.slice(kdomain) : value.slice(vdomain));
          break;
        default:
          if (isLabelDigit(c)) {
            if (!parts) throw new TableError("config", `db_common_expand: ${this.name}: ${format}: bad query/result template context`);
            out += q(parts[parts.length - (c.charCodeAt(0) - 0x30)]);
            break;
          }
          // parse() has refused such templates already.
          throw new TableError("config", `db_common_expand: ${this.name}: invalid ${key !== undefined ? "result" : "query"} template '${format}'`);
      }
    }
    return out;
  }
}

/** '1'..'9'; c is undefined when a template ends in '%'. */
function isLabelDigit(c: string | undefined): c is string {
  return c !== undefined && c >= "1" && c <= "9";
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
