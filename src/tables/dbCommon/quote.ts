/**
 * dbCommon/quote.ts - quoting of the key pieces that %-expansion
 * (expand.ts) inserts into an LDAP table's templates: the search base is a
 * DN (RFC 2253), the query filter a search filter (RFC 2254). These are the
 * quote functions the reference passes to db_common_expand() from
 * dict_ldap.c (rfc2253_quote, rfc2254_quote).
 *
 *  - DN: every blank, tab, '"', '#', '+', ',', ';', '<', '>' and '\\' becomes
 *    "\XX" (upper-case hex), wherever it stands (the RFC asks it only for
 *    some positions; quoting more is harmless).
 *  - Filter: '*', '(', ')' and '\\' become "\2A", "\28", "\29", "\5C", so a
 *    key can never add wildcards or filter syntax. (A NUL cannot occur:
 *    keys end at their first NUL on the wire.)
 *
 * Strings are byte strings (latin1). Pure.
 */
import type { Quote } from "./expand";

function hexEscape(set: RegExp): Quote {
  return (piece) => piece.replace(set, (c) => `\\${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** rfc2253_quote(): for values inserted into search_base. */
export const rfc2253Quote: Quote = hexEscape(/[ \t"#+,;<>\\]/g);

/** rfc2254_quote(): for values inserted into query_filter. */
export const rfc2254Quote: Quote = hexEscape(/[*()\\\0]/g);
