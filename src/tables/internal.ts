/**
 * internal.ts - the "internal" table type: an in-memory table that starts
 * empty and lives as long as the process (Postfix util/dict_ht.c, the type
 * dict_open() knows as "internal"). On the proxywrite service it can be
 * updated and deleted from; every client of the process sees the same
 * instance (per name and instance flags, like any table). Lookups, updates
 * and deletes fold the key to lower case when the request says FOLD_FIX
 * (the dict layer does Unicode folding instead when its UTF-8 layer is on).
 * sequence walks the keys in the reference's hash-table order (htable.ts),
 * one cursor per table shared by all clients, as in the reference.
 * DEBUG logs nothing for this type (the reference opens it without its
 * debug wrapper): the type says debugLogged: false.
 *
 * Reads and logs nothing.
 */
import { DictFlag } from "../protocol/constants";
import type { OpenArgs, Table, TableType } from "./table";
import { htableOrder } from "./htable";
import { lowercaseAscii } from "./utf8";

const TYPE = "internal";

function fold(key: string, flags: number): string {
  return flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
}

class InternalTypeTable implements Table {
  flags: number;
  private readonly map = new Map<string, string>();
  /** Keys present, in insertion order (for the hash-table walk order). */
  private inserted: string[] = [];
  private walk: string[] | null = null;
  private pos = 0;

  constructor(openFlags: number) {
    this.flags = openFlags | DictFlag.FIXED;
  }

  lookup(key: string, flags: number): string | undefined {
    return this.map.get(fold(key, flags));
  }

  update(key: string, value: string, flags: number): boolean {
    const k = fold(key, flags);
    if (!this.map.has(k)) this.inserted.push(k);
    this.map.set(k, value);
    return true;
  }

  delete(key: string, flags: number): boolean {
    const k = fold(key, flags);
    if (!this.map.delete(k)) return false;
    this.inserted = this.inserted.filter((x) => x !== k);
    return true;
  }

  sequence(fn: 0 | 1): [string, string] | undefined {
    if (fn === 0) {
      this.walk = htableOrder(this.inserted);
      this.pos = 0;
    }
    const w = this.walk;
    while (w && this.pos < w.length) {
      const k = w[this.pos++];
      const v = this.map.get(k);
      if (v !== undefined) return [k, v];
    }
    this.walk = null;
    return undefined;
  }
}

function open(args: OpenArgs): Table {
  return new InternalTypeTable(args.flags);
}

export const internal: TableType = { type: TYPE, open, debugLogged: false };
