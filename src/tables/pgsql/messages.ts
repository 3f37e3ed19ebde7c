/**
 * pgsql/messages.ts - the texts libpq (15) puts into PQerrorMessage() and
 * PQresultErrorMessage(), which the reference's warnings quote: a server
 * error at default verbosity (severity, message, the query line with a
 * cursor under the error position, DETAIL, HINT, QUERY, CONTEXT), a failed
 * connection attempt ("connection to server at "HOST" (ADDR), port P
 * failed: ..."), a lost connection. Built from the fields the server sent
 * (Bun's PostgresError keeps them), so our warnings read as the
 * reference's.
 *
 * Pure; reads and logs nothing.
 */
import type { ClientEncoding } from "./encoding";
import { utf8CharLength } from "./encoding";

/** PQerrorMessage() after the server went away during a query. */
export const LOST_CONNECTION = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n";

/** The fields of a server's ErrorResponse that libpq shows. */
export interface ServerError {
  severity?: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
}

/**
 * pqBuildErrorMessage3() at PQERRORS_DEFAULT, context shown for errors.
 * `query` is the statement's text as sent (byte string), undefined for
 * errors outside a statement (connection start).
 */
export function serverErrorText(e: ServerError, query: string | undefined, encoding: ClientEncoding): string {
  let out = e.severity ? `${e.severity}:  ` : "";
  out += e.message;
  let cursorText: string | undefined;
  let cursorPos = 0;
  if (e.position !== undefined) {
    if (query !== undefined) {
      cursorText = query;
      cursorPos = atoi(e.position);
    } else out += ` at character ${e.position}`;
  } else if (e.internalPosition !== undefined) {
    if (e.internalQuery !== undefined) {
      cursorText = e.internalQuery;
      cursorPos = atoi(e.internalPosition);
    } else out += ` at character ${e.internalPosition}`;
  }
  out += "\n";
  if (cursorText !== undefined && cursorPos > 0) out += errorPosition(cursorText, cursorPos, encoding);
  if (e.detail !== undefined) out += `DETAIL:  ${e.detail}\n`;
  if (e.hint !== undefined) out += `HINT:  ${e.hint}\n`;
  if (e.internalQuery !== undefined) out += `QUERY:  ${e.internalQuery}\n`;
  if (e.where !== undefined) out += `CONTEXT:  ${e.where}\n`;
  return out;
}

function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}

/** Screen columns of the character at s[i] (pg_encoding_dsplen, non-positive counted as 1). */
function width(s: string, i: number, encoding: ClientEncoding): number {
  if (encoding === "LATIN1") return 1;
  const len = utf8CharLength(s.charCodeAt(i));
  if (len === 1) return 1;
  const cp = Buffer.from(s.slice(i, i + len), "latin1").toString("utf8").codePointAt(0) ?? 0;
  return isWide(cp) ? 2 : 1;
}

/** East Asian wide and full-width characters (ucs_wcwidth() gives them 2 columns). */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe6f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x2fffd) ||
    (cp >= 0x30000 && cp <= 0x3fffd)
  );
}

/** Bytes of the character at s[i], not past the string's end (PQmblenBounded). */
function charBytes(s: string, i: number, encoding: ClientEncoding): number {
  if (encoding === "LATIN1") return 1;
  return Math.min(utf8CharLength(s.charCodeAt(i)), s.length - i);
}

const DISPLAY_SIZE = 60;
const MIN_RIGHT_CUT = 10;

/**
 * reportErrorPosition(): "LINE n: " and the line holding character `loc`
 * (1-based, in characters), cut to about 60 columns around it with "...",
 * tabs shown as spaces, then a line with '^' under that character.
 */
export function errorPosition(queryIn: string, locIn: number, encoding: ClientEncoding): string {
  const loc = locIn - 1;
  if (loc < 0) return "";
  const nul = queryIn.indexOf("\0");
  const q = (nul < 0 ? queryIn : queryIn.slice(0, nul)).split("");
  const qidx: number[] = [];
  const scridx: number[] = [];
  let qoffset = 0;
  let scroffset = 0;
  let line = 1;
  let ibeg = 0;
  let iend = -1;
  let cno = 0;
  const text = q.join("");
  for (; qoffset < q.length; cno++) {
    const ch = q[qoffset];
    qidx[cno] = qoffset;
    scridx[cno] = scroffset;
    if (ch === "\t") q[qoffset] = " ";
    else if (ch === "\r" || ch === "\n") {
      if (cno < loc) {
        if (ch === "\r" || cno === 0 || q[qidx[cno - 1]] !== "\r") line++;
        ibeg = cno + 1;
      } else {
        iend = cno;
        break;
      }
    }
    scroffset += width(text, qoffset, encoding);
    qoffset += charBytes(text, qoffset, encoding);
  }
  if (iend < 0) {
    iend = cno;
    qidx[iend] = qoffset;
    scridx[iend] = scroffset;
  }
  if (loc > cno) return "";
  let begTrunc = false;
  let endTrunc = false;
  if (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) {
    if (scridx[ibeg] + DISPLAY_SIZE >= scridx[loc] + MIN_RIGHT_CUT) {
      while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) iend--;
      endTrunc = true;
    } else {
      while (scridx[loc] + MIN_RIGHT_CUT < scridx[iend]) {
        iend--;
        endTrunc = true;
      }
      while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) {
        ibeg++;
        begTrunc = true;
      }
    }
  }
  const prefix = `LINE ${line}: ` + (begTrunc ? "..." : "");
  const shown = q.slice(qidx[ibeg], qidx[iend]).join("");
  const cursor = prefix.length + scridx[loc] - scridx[ibeg];
  return `${prefix}${shown}${endTrunc ? "..." : ""}\n${" ".repeat(cursor)}^\n`;
}

/** What precedes a failed attempt's reason (emitHostIdentityInfo()). */
export function hostIdentity(t: HostShown, addr: string | undefined): string {
  if (t.socket !== undefined) return `connection to server on socket "${t.socket}" failed: `;
  const shown = t.hostaddr ?? t.host;
  if (t.hostaddr === undefined && addr && addr !== shown) return `connection to server at "${shown}" (${addr}), port ${t.portText} failed: `;
  return `connection to server at "${shown}", port ${t.portText} failed: `;
}

/** What a failed attempt's message names. */
interface HostShown {
  socket?: string;
  host: string;
  hostaddr?: string;
  portText: string;
}

/** connectFailureMessage(): a socket that could not connect. */
export function connectFailure(t: HostShown, addr: string | undefined, reason: string): string {
  const hint = t.socket !== undefined ? "\tIs the server running locally and accepting connections on that socket?\n" : "\tIs the server running on that host and accepting TCP/IP connections?\n";
  return `${hostIdentity(t, addr)}${reason}\n${hint}`;
}
