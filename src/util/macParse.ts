/**
 * macParse.ts - Postfix's mac_parse() (util/mac_parse.c): split a text into
 * literal pieces and $name / ${name} / $(name) references ("$$" is a
 * literal "$"), handing each piece to an action as it is found. Used by
 * main.cf's $name expansion (config/macExpand.ts) and by the replacement
 * texts of regexp and pcre rules (tables/pattern/macParse.ts), as the
 * reference uses the one function for both.
 *
 * The control flow is the reference's, because its results depend on it:
 * the actions' statuses accumulate; after a bracketed reference has been
 * read, an error status from any earlier piece ends the parse silently;
 * a truncated reference ("${" without its "}") or an empty name ends it
 * with a warning; a final literal is handed over only without an error.
 * Names are ASCII letters, digits and "_"; in brackets, anything up to the
 * matching close (only the opening kind is counted).
 *
 * Pure: warnings go to the given callback.
 */
import { isAlnum } from "./ctype";

export const MAC_PARSE_OK = 0;
export const MAC_PARSE_ERROR = 1;
export const MAC_PARSE_UNDEF = 2;

/** The kinds of piece: plain text, or the name of a reference. */
export const MAC_PARSE_LITERAL = 1;
export const MAC_PARSE_EXPR = 2;
export type MacPiece = typeof MAC_PARSE_LITERAL | typeof MAC_PARSE_EXPR;

/** What to do with one piece; returns MAC_PARSE_* status bits. */
export type MacAction = (kind: MacPiece, text: string) => number;

export function macParse(value: string, action: MacAction, warn: (line: string) => void): number {
  let status = MAC_PARSE_OK;
  let buf = "";
  let vp = 0;
  const n = value.length;
  while (vp < n) {
    const ch = value[vp];
    if (ch !== "$") {
      buf += ch;
      vp += 1;
    } else if (value[vp + 1] === "$") {
      buf += "$";
      vp += 2;
    } else {
      if (buf.length > 0) {
        status |= action(MAC_PARSE_LITERAL, buf);
        buf = "";
      }
      vp += 1;
      const open = value[vp];
      if (open === "(" || open === "{") {
        const close = open === "(" ? ")" : "}";
        let level = 1;
        let ep = vp + 1;
        let truncated = false;
        while (level > 0) {
          if (ep >= n) {
            warn(`truncated macro reference: "${value}"`);
            status |= MAC_PARSE_ERROR;
            truncated = true;
            break;
          }
          if (value[ep] === open) level++;
          if (value[ep] === close) level--;
          ep++;
        }
        if (status & MAC_PARSE_ERROR) break;
        buf += value.slice(vp + 1, truncated ? ep : ep - 1);
        vp = ep;
      } else {
        let ep = vp;
        while (ep < n && (isAlnum(value[ep]) || value[ep] === "_")) ep++;
        buf += value.slice(vp, ep);
        vp = ep;
      }
      if (buf.length === 0) {
        status |= MAC_PARSE_ERROR;
        warn(`empty macro name: "${value}"`);
        break;
      }
      status |= action(MAC_PARSE_EXPR, buf);
      buf = "";
    }
  }
  if (buf.length > 0 && (status & MAC_PARSE_ERROR) === 0) status |= action(MAC_PARSE_LITERAL, buf);
  return status;
}
