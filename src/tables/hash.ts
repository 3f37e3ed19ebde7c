/**
 * hash.ts - the "hash" table type: a Berkeley DB hash file NAME.db, as made
 * by `postmap hash:NAME` (Postfix util/dict_db.c, dict_hash_open). All the
 * work is in the shared Berkeley DB driver (bdb/driver.ts); this module
 * only names the type.
 *
 * Reads: NAME.db through libdb-5.3.so. Logs: see bdb/driver.ts.
 */
import { bdbTableType } from "./bdb/driver";

export const hash = bdbTableType("hash");
