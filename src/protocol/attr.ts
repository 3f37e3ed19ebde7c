/**
 * The attribute encoding of Postfix's local IPC ("attr_print0/attr_scan0"):
 * a message is `name NUL value NUL ...` ended by one more NUL (an empty
 * name). Integers travel as decimal text.
 *
 * Pure: no I/O. Strings are byte strings (latin1: one char per byte), so any
 * 8-bit data passes through unchanged.
 *
 * Written by hand because no library speaks this encoding; it is small.
 */

/** Encode one attribute list, terminator included. */
export function encodeAttrs(pairs: ReadonlyArray<readonly [string, string | number]>): Buffer {
  let text = "";
  for (const [name, value] of pairs) text += `${name}\0${value}\0`;
  return Buffer.from(`${text}\0`, "latin1");
}

/**
 * Reads NUL-terminated tokens (attribute names and values) from a byte
 * buffer. `next()` returns undefined when no complete token is buffered yet:
 * the caller waits for more input and starts over from a saved position.
 */
export class TokenReader {
  constructor(
    private buf: Buffer,
    public pos: number,
    private readonly end: number,
    /** The peer closed: what is buffered is all there will ever be. */
    readonly eof = false,
  ) {}

  /** Give up on what is left (the input ended inside a request). */
  consumeAll(): void {
    this.pos = this.end;
  }

  /** At end of input: did the input stop inside a token (bytes after the last NUL)? */
  get cutInToken(): boolean {
    return this.pos < this.end;
  }

  /** The next token, or undefined when its terminating NUL has not arrived. */
  next(): string | undefined {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) return undefined;
    const s = this.buf.toString("latin1", this.pos, nul);
    this.pos = nul + 1;
    return s;
  }
}

const UINT32 = 0x1_0000_0000n;
const ULONG_MAX = (1n << 64n) - 1n;

/**
 * Parse an integer attribute value the way the reference does: C's
 * sscanf("%u%c") must convert exactly one number with nothing after it.
 * That accepts leading white space and a sign, wraps negative numbers
 * (strtoul semantics), saturates beyond 64 bits, and keeps the low 32 bits.
 * The result is the signed 32-bit int the reference stores it in.
 * Returns undefined for a malformed number.
 */
export function parseCUnsigned(text: string): number | undefined {
  let i = 0;
  const n = text.length;
  while (i < n && isCSpace(text.charCodeAt(i))) i++;
  let negative = false;
  const sign = text.charCodeAt(i);
  if (sign === 0x2b /* + */ || sign === 0x2d /* - */) {
    negative = sign === 0x2d;
    i++;
  }
  const digitsStart = i;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (i === digitsStart || i !== n) return undefined;
  // Fast path: the everyday small positive number.
  if (!negative && i - digitsStart <= 9) return Number(text.slice(digitsStart)) | 0;
  let magnitude = BigInt(text.slice(digitsStart));
  if (magnitude > ULONG_MAX) magnitude = ULONG_MAX;
  else if (negative) magnitude = (-magnitude) & ULONG_MAX;
  return Number(BigInt.asIntN(32, magnitude % UINT32));
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** C isspace() in the C locale. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** An int as the reference prints it: "%u" of the 32-bit value. */
export function formatCUnsigned(value: number): string {
  return String(value >>> 0);
}
