/**
 * btree.ts - the "btree" table type: a Berkeley DB B-tree file NAME.db, as
 * made by `postmap btree:NAME` (Postfix util/dict_db.c, dict_btree_open);
 * the usual type of the shared postscreen(8) and verify(8) caches behind
 * proxywrite. All the work is in the shared Berkeley DB driver
 * (bdb/driver.ts); this module only names the type.
 *
 * Reads: NAME.db through libdb-5.3.so. Logs: see bdb/driver.ts.
 */
import { bdbTableType } from "./bdb/driver";

export const btree = bdbTableType("btree");
