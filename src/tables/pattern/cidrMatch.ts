/**
 * cidrMatch.ts - address patterns of cidr tables and their matching, with
 * the semantics of Postfix's util/cidr_match.c.
 *
 * A pattern is "address", "address/length", "[address]" or
 * "[address]/length"; it is IPv6 when it holds a ':' anywhere, else IPv4.
 * Parsing rules that shape the answers and the warning texts:
 * - the length must be decimal digits; it is converted with atoi() and
 *   stored in an unsigned char, so "/288" is /32 and "/256" is /0, as in
 *   the reference;
 * - a network with bits set beyond the length is refused, naming the
 *   network it should have been (glibc's inet_ntop() form);
 * - a bare address means all bits.
 * Matching: a key that inet_pton() refuses (not an address) matches
 * nothing; an entry of the other family never matches (not even negated);
 * a negated entry matches every address of its family outside the network.
 *
 * Pure apart from inet.ts; logs nothing (errors are returned as text).
 */
import { AF_INET, AF_INET6, inetNtop, inetPton } from "./inet";
import { allDigits, atoi } from "./macParse";

export interface CidrPattern {
  family: number;
  net: Uint8Array;
  mask: Uint8Array;
  /** Prefix length (after the reference's unsigned char truncation). */
  shift: number;
  /** true = positive match, false = negated ("!"). */
  match: boolean;
}

function familyOf(text: string): number {
  return text.includes(":") ? AF_INET6 : AF_INET;
}

/** mask_addr(): keep the first `bits` bits, clear the rest. */
function maskAddr(bytes: Uint8Array, bits: number): void {
  let i = bits >> 3;
  const rest = bits & 7;
  if (rest !== 0) bytes[i++] &= (0xff << (8 - rest)) & 0xff;
  for (; i < bytes.length; i++) bytes[i] = 0;
}

/** cidr_match_parse(): a pattern, or the reason it is refused. */
export function parseCidrPattern(text: string, match: boolean): CidrPattern | { error: string } {
  let pattern = text;
  let maskSearch: string;
  let maskSearchIsPattern = true;
  if (pattern.startsWith("[")) {
    pattern = pattern.slice(1);
    const close = pattern.indexOf("]");
    if (close < 0) return { error: `missing ']' character after "[${pattern}"` };
    const after = pattern.slice(close + 1);
    pattern = pattern.slice(0, close);
    if (!after.startsWith("/")) {
      if (after.length > 0) return { error: `garbage after "[${pattern}]"` };
      maskSearch = pattern;
    } else {
      maskSearch = after;
      maskSearchIsPattern = false;
    }
  } else {
    maskSearch = pattern;
  }

  const slash = maskSearch.indexOf("/");
  const family = familyOf(pattern.slice(0, maskSearchIsPattern && slash >= 0 ? slash : pattern.length));
  const bitCount = family === AF_INET6 ? 128 : 32;
  if (slash >= 0) {
    const maskText = maskSearch.slice(slash + 1);
    if (maskSearchIsPattern) pattern = pattern.slice(0, slash);
    let error: string | undefined;
    let shift = 0;
    let net: Uint8Array | undefined;
    if (!allDigits(maskText)) {
      error = "bad mask value";
    } else if ((shift = atoi(maskText) & 0xff) > bitCount) {
      error = "bad mask length";
    } else if ((net = inetPton(family, pattern)) === undefined) {
      error = "bad network value";
    }
    if (error !== undefined || net === undefined) return { error: `${error} in "${pattern}/${maskText}"` };
    const mask = new Uint8Array(net.length).fill(0xff);
    maskAddr(mask, shift);
    for (let i = 0; i < net.length; i++) {
      if (net[i] & ~mask[i]) {
        const fixed = Uint8Array.from(net);
        maskAddr(fixed, shift);
        return {
          error: `non-null host address bits in "${pattern}/${maskText}", perhaps you should use "${inetNtop(family, fixed)}/${shift}" instead`,
        };
      }
    }
    return { family, net: Uint8Array.from(net), mask, shift, match };
  }
  const net = inetPton(family, pattern);
  if (net === undefined) return { error: `bad address pattern: "${pattern}"` };
  return { family, net: Uint8Array.from(net), mask: new Uint8Array(net.length).fill(0xff), shift: bitCount, match };
}

/** A lookup key as address bytes, or undefined when it is not an address. */
export interface CidrKey {
  family: number;
  bytes: Uint8Array;
}

export function parseCidrKey(key: string): CidrKey | undefined {
  const family = familyOf(key);
  const bytes = inetPton(family, key);
  return bytes === undefined ? undefined : { family, bytes };
}

/** cidr_match_entry() plus the family check of cidr_match_execute(). */
export function cidrMatches(p: CidrPattern, key: CidrKey): boolean {
  if (p.family !== key.family) return false;
  const { net, mask, bytes } = { net: p.net, mask: p.mask, bytes: key.bytes };
  for (let i = 0; i < net.length; i++) {
    if ((bytes[i] & mask[i]) !== net[i]) return !p.match;
  }
  return p.match;
}
