/**
 * ldap/filter.ts - search filter strings encoded as the reference's client
 * library encodes them (OpenLDAP 2.5 libldap filter.c,
 * ldap_pvt_put_filter()), into the BER of a SearchRequest (ldapts's
 * BerWriter).
 *
 * Written by hand because the filter goes to the server byte for byte as the
 * reference sends it: ldapts's own parser accepts a different language
 * (attribute names without options or OIDs, no RFC 1960 escapes, UTF-8
 * strings instead of bytes), so the same table would find different entries.
 * What libldap accepts, this accepts, with the same encoding:
 *
 *  - "(...)" or a bare "type=value" at the top; blanks before '(' skipped,
 *    anything after the last ')' is an error;
 *  - &, |, ! with nested lists; "(&)" and "(|)" are empty sets;
 *  - =, ~=, >=, <=, =* (presence), substrings (an empty "any" part is an
 *    error), extensible match "type:dn:rule:=value";
 *  - values unescaped as LDAPv3 "\XX" and LDAPv2 "\*", "\(", "\)", "\\";
 *    an unescaped '(', ')' or '*' in a value is an error;
 *  - attribute descriptions: a name or numeric OID, with ";options".
 *
 * writeFilter() returns false where libldap answers LDAP_FILTER_ERROR; the
 * writer is then discarded by the caller. An empty string writes nothing
 * and succeeds, as in libldap (the server then rejects the request).
 *
 * Strings are byte strings (latin1). Pure.
 */
import type { BerWriter } from "ldapts";

const Tag = {
  AND: 0xa0,
  OR: 0xa1,
  NOT: 0xa2,
  EQUALITY: 0xa3,
  SUBSTRINGS: 0xa4,
  GE: 0xa5,
  LE: 0xa6,
  PRESENT: 0x87,
  APPROX: 0xa8,
  EXT: 0xa9,
  EXT_OID: 0x81,
  EXT_TYPE: 0x82,
  EXT_VALUE: 0x83,
  EXT_DNATTRS: 0x84,
  SUB_INITIAL: 0x80,
  SUB_ANY: 0x81,
  SUB_FINAL: 0x82,
  OCTET_STRING: 0x04,
  SEQUENCE: 0x30,
} as const;

const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n";
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isAlpha = (c: string | undefined) => c !== undefined && ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z"));
const isLdh = (c: string | undefined) => isAlpha(c) || isDigit(c) || c === "-";
const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);

const bytes = (s: string) => Buffer.from(s, "latin1");

/** ldap_is_oid(): a descriptor (keychar*) or a numeric OID. */
function isOid(s: string): boolean {
  if (isAlpha(s[0])) {
    for (let i = 1; i < s.length; i++) if (!isLdh(s[i])) return false;
    return true;
  }
  if (isDigit(s[0])) {
    let dot = 0;
    for (let i = 1; i < s.length; i++) {
      if (isDigit(s[i])) dot = 0;
      else if (s[i] === "." && ++dot <= 1) continue;
      else return false;
    }
    return dot === 0;
  }
  return false;
}

/** The ";option;option" tail of an attribute description (after a ';'). */
function isOptions(s: string): boolean {
  if (!isLdh(s[0])) return false;
  for (let i = 1; i < s.length; i++) {
    if (s[i] === ";") return isOptions(s.slice(i + 1));
    if (!isLdh(s[i])) return false;
  }
  return true;
}

/** ldap_is_desc(): an attribute description. */
function isDesc(s: string): boolean {
  if (isAlpha(s[0])) {
    for (let i = 1; i < s.length; i++) {
      if (s[i] === ";") return isOptions(s.slice(i + 1));
      if (!isLdh(s[i])) return false;
    }
    return true;
  }
  if (isDigit(s[0])) {
    let dot = 0;
    for (let i = 1; i < s.length; i++) {
      if (s[i] === ";") return dot === 0 && isOptions(s.slice(i + 1));
      if (isDigit(s[i])) dot = 0;
      else if (s[i] === "." && ++dot <= 1) continue;
      else return false;
    }
    return dot === 0;
  }
  return false;
}

/** find_right_paren(): index of the ')' closing the '(' before `from`, or -1. */
function findRightParen(s: string, from: number): number {
  let balance = 1;
  let escape = false;
  let i = from;
  while (i < s.length && balance) {
    if (!escape) {
      if (s[i] === "(") balance++;
      else if (s[i] === ")") balance--;
    }
    escape = s[i] === "\\" && !escape;
    if (balance) i++;
  }
  return i < s.length ? i : -1;
}

/** ldap_pvt_find_wildcard(): index of the next unescaped '*', s.length at the end, -1 on a bad character. */
function findWildcard(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    switch (s[i]) {
      case "*":
        return i;
      case "(":
      case ")":
        return -1;
      case "\\":
        if (i + 1 >= s.length) return -1;
        if (isHex(s[i + 1]) && isHex(s[i + 2])) i += 2;
        else if ("*()\\".includes(s[i + 1])) i++;
        else return -1;
    }
  }
  return s.length;
}

/** ldap_pvt_filter_value_unescape(): the value's bytes, or undefined when it is malformed. */
export function unescapeFilterValue(s: string): string | undefined {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(" || c === ")" || c === "*") return undefined;
    if (c !== "\\") {
      out += c;
      continue;
    }
    i++;
    if (i >= s.length) return undefined;
    if (isHex(s[i])) {
      if (!isHex(s[i + 1])) return undefined;
      out += String.fromCharCode(parseInt(s.slice(i, i + 2), 16));
      i++;
    } else if ("()*\\".includes(s[i])) {
      out += s[i];
    } else {
      return undefined;
    }
  }
  return out;
}

class FilterWriter {
  constructor(private readonly w: BerWriter) {}

  /** ldap_pvt_put_filter(). */
  put(s: string): boolean {
    let parens = 0;
    let i = 0;
    while (i < s.length) {
      const c = s[i];
      if (c === "(") {
        i++;
        parens++;
        while (isSpace(s[i])) i++;
        const k = s[i];
        if (k === "&" || k === "|" || k === "!") {
          const next = this.complex(s, i, k === "&" ? Tag.AND : k === "|" ? Tag.OR : Tag.NOT);
          if (next < 0) return false;
          i = next;
          parens--;
        } else if (k === "(") {
          return false;
        } else {
          let balance = 1;
          let escape = false;
          let next = i;
          while (next < s.length && balance) {
            if (!escape) {
              if (s[next] === "(") balance++;
              else if (s[next] === ")") balance--;
            }
            escape = s[next] === "\\" && !escape;
            if (balance) next++;
          }
          if (balance !== 0) return false;
          if (!this.simple(s.slice(i, next))) return false;
          i = next + 1;
          parens--;
        }
      } else if (c === ")") {
        // libldap closes an enclosing set here and fails afterwards: an error either way.
        return false;
      } else if (c === " ") {
        i++;
      } else {
        if (!this.simple(s.slice(i))) return false;
        i = s.length;
      }
      if (!parens) break;
    }
    return parens === 0 && i === s.length;
  }

  /** put_complex_filter(): s[at] is '&', '|' or '!'; returns the index after the closing ')'. */
  private complex(s: string, at: number, tag: number): number {
    this.w.startSequence(tag);
    const start = at + 1;
    const close = findRightParen(s, start);
    if (close < 0) return -1;
    if (!this.list(s.slice(start, close), tag)) return -1;
    this.w.endSequence();
    return close + 1;
  }

  /** put_filter_list(): "(f1)(f2)..." (one only for NOT). */
  private list(s: string, tag: number): boolean {
    let i = 0;
    let seen = false;
    while (i < s.length) {
      while (i < s.length && isSpace(s[i])) i++;
      if (i >= s.length) break;
      const close = findRightParen(s, i + 1);
      if (close < 0) return false;
      if (!this.put(s.slice(i, close + 1))) return false;
      i = close + 1;
      seen = true;
      if (tag === Tag.NOT) break;
    }
    return !(tag === Tag.NOT && (!seen || i < s.length));
  }

  /** put_simple_filter(): "type OP value" without the parentheses. */
  private simple(str: string): boolean {
    const eq = str.indexOf("=");
    if (eq < 0) return false;
    const value = str.slice(eq + 1);
    let type = str.slice(0, eq);
    const op = eq > 0 ? type[type.length - 1] : "";
    let tag: number;
    switch (op) {
      case "<":
        tag = Tag.LE;
        type = type.slice(0, -1);
        break;
      case ">":
        tag = Tag.GE;
        type = type.slice(0, -1);
        break;
      case "~":
        tag = Tag.APPROX;
        type = type.slice(0, -1);
        break;
      case ":":
        return this.extensible(type.slice(0, -1), value);
      default: {
        if (!isDesc(type)) return false;
        const star = findWildcard(value, 0);
        if (star < 0) return false;
        if (star === value.length) tag = Tag.EQUALITY;
        else if (value === "*") tag = Tag.PRESENT;
        else return this.substrings(type, value, star);
      }
    }
    if (!isDesc(type)) return false;
    if (tag === Tag.PRESENT) {
      this.w.writeBuffer(bytes(type), Tag.PRESENT);
      return true;
    }
    const v = unescapeFilterValue(value);
    if (v === undefined) return false;
    this.w.startSequence(tag);
    this.w.writeBuffer(bytes(type), Tag.OCTET_STRING);
    this.w.writeBuffer(bytes(v), Tag.OCTET_STRING);
    this.w.endSequence();
    return true;
  }

  /** The extensible-match part of put_simple_filter(): "type[:dn][:rule]" before ":=". */
  private extensible(type: string, value: string): boolean {
    let rule: string | null = null;
    let dnAttrs = false;
    const colon = type.indexOf(":");
    if (colon >= 0) {
      const rest = type.slice(colon + 1);
      type = type.slice(0, colon);
      const second = rest.indexOf(":");
      if (second < 0) {
        if (rest.toLowerCase() === "dn") {
          if (!isDesc(type)) return false;
          rule = "";
          dnAttrs = true;
        } else {
          rule = rest;
        }
      } else {
        if (rest.slice(0, second).toLowerCase() !== "dn") return false;
        rule = rest.slice(second + 1);
        dnAttrs = true;
      }
    }
    if (type === "" && !rule) return false;
    if (type !== "" && !isDesc(type)) return false;
    if (rule && !isOid(rule)) return false;
    this.w.startSequence(Tag.EXT);
    if (rule) this.w.writeBuffer(bytes(rule), Tag.EXT_OID);
    if (type !== "") this.w.writeBuffer(bytes(type), Tag.EXT_TYPE);
    const v = unescapeFilterValue(value);
    if (v === undefined) return false;
    this.w.writeBuffer(bytes(v), Tag.EXT_VALUE);
    if (dnAttrs) this.w.writeBoolean(true, Tag.EXT_DNATTRS);
    this.w.endSequence();
    return true;
  }

  /** put_substring_filter(): `star` is the first unescaped '*' of value. */
  private substrings(type: string, value: string, star: number): boolean {
    this.w.startSequence(Tag.SUBSTRINGS);
    this.w.writeBuffer(bytes(type), Tag.OCTET_STRING);
    this.w.startSequence(Tag.SEQUENCE);
    let gotStar = 0;
    let next = star;
    for (let v = 0; v < value.length; v = next) {
      if (gotStar) next = findWildcard(value, v);
      if (next < 0) return false;
      let piece: string;
      let tag: number;
      if (next === value.length) {
        tag = Tag.SUB_FINAL;
        piece = value.slice(v);
      } else {
        piece = value.slice(v, next);
        next++;
        tag = gotStar++ === 0 ? Tag.SUB_INITIAL : Tag.SUB_ANY;
      }
      if (piece !== "" || tag === Tag.SUB_ANY) {
        const u = unescapeFilterValue(piece);
        if (u === undefined || u.length === 0) return false;
        this.w.writeBuffer(bytes(u), tag);
      }
    }
    this.w.endSequence();
    this.w.endSequence();
    return true;
  }
}

/** Encode a filter string; false = LDAP_FILTER_ERROR (discard the writer). */
export function writeFilter(w: BerWriter, filter: string): boolean {
  return new FilterWriter(w).put(filter);
}
