/**
 * ht.ts - Postfix's in-memory table (util/dict_ht.c): what texthash and
 * inline fill at open (with the UTF-8 layer that, up to 3.10, dict_open3()
 * puts in front of it while they load), and the "internal" type itself
 * (internal.ts), which starts empty and takes updates and deletes through
 * the write service.
 *
 * Keys are folded when stored and when looked up, as the reference does:
 * - up to 3.10 the loading goes through the UTF-8 layer (the reference
 *   opens the inner table with dict_open3()): with it active and FOLD_FIX
 *   in the open flags, keys are stored Unicode case-folded (casefold(),
 *   ICU) and non-UTF-8 keys and values are refused; the dict layer folds
 *   the lookup keys the same way;
 * - without it, and always from 3.11 (the inner table comes from
 *   dict_ht_open() and the UTF-8 layer is put in front only afterwards),
 *   FOLD_FIX lowercases ASCII letters when storing (open flags) and when
 *   looking up (the request's flags).
 * So a table opened without FOLD_FIX keeps upper-case keys, and a later
 * FOLD_FIX lookup cannot find them: the reference behaves the same.
 *
 * Lookups are one Map.get. `sequence` walks the keys in the reference's
 * htable order (htable.ts), one cursor per table shared by all clients.
 *
 * Logs: the reference's warning for a non-UTF-8 key or value offered to the
 * UTF-8 layer while loading.
 */
import { DictFlag } from "../protocol/constants";
import { msg } from "../log/msg";
import type { Table } from "./table";
import type { Gen } from "../protocol/scan";
import { htableOrder } from "./htable";
import { UTF8_ERROR, allAscii, casefold, lowercaseAscii, needUtf8Activation, validUtf8 } from "./utf8";

/** Would dict_open3() put the UTF-8 layer in front of a table opened with these flags? */
export function utf8LayerFor(openFlags: number): boolean {
  return needUtf8Activation(openFlags) && (openFlags & DictFlag.UTF8_ACTIVE) === 0;
}

export class InternalTable implements Table {
  flags: number;
  protected readonly map = new Map<string, string>();
  /** Distinct keys in first-insertion order (for the htable listing order). */
  protected inserted: string[] = [];
  private seqList: string[] | null = null;
  private seqPos = 0;
  private readonly utf8: boolean;
  private readonly foldFix: boolean;

  /**
   * @param type, name  for warnings ("texthash", "/etc/postfix/x")
   * @param openFlags   the flags of the request that opened the table
   */
  constructor(
    readonly type: string,
    readonly name: string,
    openFlags: number,
    gen: Gen = "classic",
  ) {
    this.flags = openFlags | DictFlag.FIXED;
    this.utf8 = gen === "classic" && utf8LayerFor(openFlags);
    this.foldFix = (openFlags & DictFlag.FOLD_FIX) !== 0;
  }

  /**
   * The key as stored: folded per the open flags; undefined (with the
   * reference's warning) when the UTF-8 layer refuses it.
   */
  storeKey(key: string, knownAscii = false): string | undefined {
    // Pure ASCII (the loader checked the whole file at once): valid UTF-8,
    // and every fold is ASCII lower-casing, which the engine does natively.
    if (knownAscii) return this.foldFix ? key.toLowerCase() : key;
    if (this.utf8) {
      if (!allAscii(key) && !validUtf8(key)) {
        msg.warn(`${this.type}:${this.name}: non-UTF-8 key "${key}": ${UTF8_ERROR}`);
        return undefined;
      }
      return this.foldFix ? casefold(key) : key;
    }
    return this.foldFix ? lowercaseAscii(key) : key;
  }

  /** Does a stored key exist (load-time duplicate check)? */
  hasStored(storedKey: string): boolean {
    return this.map.has(storedKey);
  }

  /** Store a value under an already folded key (dict_ht_update). */
  put(storedKey: string, value: string, knownAscii = false): void {
    if (this.utf8 && !knownAscii && !allAscii(value) && !validUtf8(value)) {
      msg.warn(`${this.type}:${this.name}: key "${storedKey}": non-UTF-8 value "${value}": ${UTF8_ERROR}`);
      return;
    }
    if (!this.map.has(storedKey)) this.inserted.push(storedKey);
    this.map.set(storedKey, value);
  }

  get size(): number {
    return this.map.size;
  }

  lookup(key: string, flags: number): string | undefined {
    return this.map.get(flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key);
  }

  /** A walk in the reference's hash-table order; keys deleted meanwhile are skipped. */
  sequence(fn: 0 | 1): [string, string] | undefined {
    if (fn === 0) {
      this.seqList = htableOrder(this.inserted);
      this.seqPos = 0;
    }
    const list = this.seqList;
    while (list && this.seqPos < list.length) {
      const k = list[this.seqPos++];
      const v = this.map.get(k);
      if (v !== undefined) return [k, v];
    }
    this.seqList = null;
    return undefined;
  }
}

/**
 * The "internal" type's table: the same hash table, with dict_ht_update()
 * and dict_ht_delete() for the write service (texthash and inline tables
 * have no update: the reference opens them read-only).
 */
export class WritableInternalTable extends InternalTable {
  /** dict_ht_update(): a repeated key replaces its value. */
  update(key: string, value: string, flags: number): boolean {
    const k = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    if (!this.map.has(k)) this.inserted.push(k);
    this.map.set(k, value);
    return true;
  }

  /** dict_ht_delete(). */
  delete(key: string, flags: number): boolean {
    const k = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    if (!this.map.delete(k)) return false;
    this.inserted = this.inserted.filter((x) => x !== k);
    return true;
  }

}
