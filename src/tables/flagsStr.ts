/**
 * flagsStr.ts - dictionary flags as names, the way Postfix's
 * dict_flags_str() writes them ("fold_fix|utf8_request", leftover bits as
 * "0x..."). The proxymap cache key of a table is "type:name:" plus this
 * string of the request's instance flags, and that key is what the reference
 * logs when a table changes ("table hash:/etc/x: has changed").
 *
 * Pure; reads and logs nothing.
 */

/** Bit names in Postfix's dict_mask[] order (util/dict.c), up to 3.10. */
const NAMES: ReadonlyArray<readonly [string, number]> = [
  ["warn_dup", 1 << 0],
  ["ignore_dup", 1 << 1],
  ["try0null", 1 << 2],
  ["try1null", 1 << 3],
  ["fixed", 1 << 4],
  ["pattern", 1 << 5],
  ["lock", 1 << 6],
  ["replace", 1 << 7],
  ["sync_update", 1 << 8],
  ["debug", 1 << 9],
  ["no_regsub", 1 << 11],
  ["no_proxy", 1 << 12],
  ["no_unauth", 1 << 13],
  ["fold_fix", 1 << 14],
  ["fold_mul", 1 << 15],
  ["open_lock", 1 << 16],
  ["bulk_update", 1 << 17],
  ["multi_writer", 1 << 18],
  ["utf8_request", 1 << 19],
  ["utf8_active", 1 << 20],
  ["src_rhs_is_file", 1 << 21],
];

/** DICT_FLAG_SRC_RHS_IS_FILE: the table's values name files (postmap -F). */
export const SRC_RHS_IS_FILE = 1 << 21;
/** DICT_FLAG_SURROGATE (3.11+): the table is a stand-in for one that failed to open. */
export const SURROGATE = 1 << 22;

/**
 * From 3.11: DUP_REPLACE is named "dup_replace", DEBUG has no name (the
 * flag was removed), and SURROGATE is new.
 */
const NAMES_311: ReadonlyArray<readonly [string, number]> = [
  ...NAMES.filter(([n]) => n !== "debug").map(([n, b]): readonly [string, number] => [n === "replace" ? "dup_replace" : n, b]),
  ["surrogate", SURROGATE],
];

const memo = { classic: new Map<number, string>(), instance: new Map<number, string>() };

/** dict_flags_str() of the Postfix generation `gen` ("classic" up to 3.10, "instance" from 3.11). */
export function dictFlagsStr(flags: number, gen: "classic" | "instance" = "classic"): string {
  let mask = flags | 0;
  const hit = memo[gen].get(mask);
  if (hit !== undefined) return hit;
  const parts: string[] = [];
  for (const [name, bit] of gen === "classic" ? NAMES : NAMES_311) {
    if (mask === 0) break;
    if (mask & bit) {
      mask &= ~bit;
      parts.push(name);
    }
  }
  if (mask !== 0) parts.push("0x" + (mask >>> 0).toString(16));
  const s = parts.join("|");
  if (memo[gen].size < 1024) memo[gen].set(flags | 0, s);
  return s;
}
