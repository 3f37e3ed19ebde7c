/**
 * Postfix's list tokenizers (util/mystrtok.c, util/extpar.c), used to pick
 * tables out of parameter values:
 *  - mystrtok: words separated by any of `sep`;
 *  - mystrtokq: the same, but separators inside {} do not split
 *    ("unionmap:{a, b}" stays one word; an unbalanced '{' runs to the end);
 *  - extpar: strip the outer {} of a word, with the reference's error texts.
 *
 * Each tokenizer works on a cursor over a byte string instead of writing
 * NULs into a C buffer. Hand-written: the splitting rules must be Postfix's.
 */
import { spanNotOf, spanOf } from "./ctype";

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

/** Length of the balanced group at the start of `text`, 0 if unbalanced (balpar). */
function balancedLength(text: string, parens: string): number {
  if (text[0] !== parens[0]) return 0;
  let level = 1;
  for (let i = 1; i < text.length; i++) {
    if (text[i] === parens[1]) {
      if (--level === 0) return i + 1;
    } else if (text[i] === parens[0]) level++;
  }
  return 0;
}

/**
 * extpar(): the text inside the outer parens of `word`, or an error text.
 * Like the reference, the inner text is returned even with "syntax error
 * after '}'", and with `strip` surrounding blanks are removed.
 */
export function extpar(word: string, parens: string, strip = false): { inner: string; error?: string } {
  let inner: string;
  let error: string | undefined;
  if (word[0] !== parens[0]) {
    error = `no '${parens[0]}' at start of text in "${word}"`;
    inner = word;
  } else {
    const len = balancedLength(word, parens);
    if (len === 0) {
      error = `missing '${parens.slice(1)}' in "${word}"`;
      inner = word.slice(1);
    } else {
      if (len < word.length) error = `syntax error after '${parens.slice(1)}' in "${word}"`;
      inner = word.slice(1, len - 1);
    }
  }
  if (strip) inner = inner.replace(/^[ \t\n\v\f\r]+/, "").replace(/[ \t\n\v\f\r]+$/, "");
  return error === undefined ? { inner } : { inner, error };
}
