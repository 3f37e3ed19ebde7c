/**
 * Postfix compatibility levels ("0", "2", "3.6", "3.6.1") as comparable
 * numbers, and the `<level`, `==level`, ... operators that Postfix adds to
 * $name expansion so that defaults such as
 * `${{$compatibility_level} <level {2} ? {subnet} : {host}}` work
 * (global/compat_level.c). The encoding follows the reference: major, minor
 * and patch in separate bit ranges (10 bits each for minor and patch).
 *
 * Logs: "warning: malformed compatibility level syntax: \"TEXT\"" when an
 * operand of a `level` operator is not a level.
 */
import { msg } from "../log/msg";
import { isDigit, isSpace } from "../util/ctype";

const MINOR_MAX = 0x3ff;
const PATCH_MAX = 0x3ff;
const LONG_MAX = (1n << 63n) - 1n;
const MAJOR_MAX = LONG_MAX >> 20n;

/** strtol(text, &end, 10) on a byte string: value and end index, or null on overflow. */
function strtol(text: string, from: number): { value: bigint; end: number; overflow: boolean } {
  let i = from;
  while (i < text.length && isSpace(text[i])) i++;
  let neg = false;
  if (text[i] === "+" || text[i] === "-") {
    neg = text[i] === "-";
    i++;
  }
  const digitsFrom = i;
  while (i < text.length && isDigit(text[i])) i++;
  if (i === digitsFrom) return { value: 0n, end: from, overflow: false };
  let value = BigInt(text.slice(digitsFrom, i));
  if (neg) value = -value;
  const overflow = value > LONG_MAX || value < -LONG_MAX - 1n;
  return { value, end: i, overflow };
}

/**
 * The comparable form of a compatibility level, or -1n after reporting
 * "malformed compatibility level syntax" through `report`.
 */
export function compatLevelFromString(text: string, report: (line: string) => void = msg.warn): bigint {
  const fail = (): bigint => {
    report(`malformed compatibility level syntax: "${text}"`);
    return -1n;
  };
  const major = strtol(text, 0);
  if (major.end === 0 || major.overflow || major.value < 0n || major.value > MAJOR_MAX) return fail();
  if (major.end !== text.length && text[major.end] !== ".") return fail();
  let res = major.value << 20n;
  if (major.end === text.length) return res;
  const minorFrom = major.end + 1;
  const minor = strtol(text, minorFrom);
  if (minor.end === minorFrom || minor.overflow || minor.value < 0n || minor.value > BigInt(MINOR_MAX)) return fail();
  if (minor.end !== text.length && text[minor.end] !== ".") return fail();
  res |= minor.value << 10n;
  if (minor.end === text.length) return res;
  const patchFrom = minor.end + 1;
  const patch = strtol(text, patchFrom);
  if (patch.end === patchFrom || patch.end !== text.length || patch.overflow || patch.value < 0n || patch.value > BigInt(PATCH_MAX))
    return fail();
  return res | patch.value;
}
