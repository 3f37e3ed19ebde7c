/**
 * Postfix's list tokenizers (util/mystrtok.c), used to pick
 * tables out of parameter values:
 *  - mystrtok: words separated by any of `sep`;
 *  - mystrtokq: the same, but separators inside {} do not split
 *    ("unionmap:{a, b}" stays one word; an unbalanced '{' runs to the end).
 *
 * Each tokenizer works on a cursor over a byte string instead of writing
 * NULs into a C buffer; tokensQ() gives all of mystrtokq()'s words at once.
 * Hand-written: the splitting rules must be Postfix's.
 */
import { CHARS_BRACE, CHARS_COMMA_SP, spanNotOf, spanOf } from "./ctype";

export class Cursor {
  constructor(
    readonly text: string,
    public pos = 0,
  ) {}
}

/** Next word separated by characters of `sep`, or undefined at the end. */
export function mystrtok(cur: Cursor, sep: string): string | undefined {
  const start = cur.pos + spanOf(cur.text, cur.pos, sep);
  if (start >= cur.text.length) {
    cur.pos = start;
    return undefined;
  }
  const end = start + spanNotOf(cur.text, start, sep);
  cur.pos = end < cur.text.length ? end + 1 : end;
  return cur.text.slice(start, end);
}

/** Next word; separators inside parens[0]..parens[1] do not count. */
export function mystrtokq(cur: Cursor, sep: string, parens: string): string | undefined {
  const text = cur.text;
  const start = cur.pos + spanOf(text, cur.pos, sep);
  if (start >= text.length) {
    cur.pos = start;
    return undefined;
  }
  let level = 0;
  let i = start;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (ch === parens[0]) level++;
    else if (level > 0 && ch === parens[1]) level--;
    else if (level === 0 && sep.includes(ch)) {
      cur.pos = i + 1;
      return text.slice(start, i);
    }
  }
  cur.pos = i;
  return text.slice(start, i);
}

/** Every word mystrtokq() gives, in order ("{...}" groups kept whole). */
export function tokensQ(s: string, sep = CHARS_COMMA_SP, parens = CHARS_BRACE): string[] {
  const cur = new Cursor(s);
  const out: string[] = [];
  for (let w = mystrtokq(cur, sep, parens); w !== undefined; w = mystrtokq(cur, sep, parens)) out.push(w);
  return out;
}
