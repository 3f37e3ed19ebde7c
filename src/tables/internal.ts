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
import type { OpenArgs, Table, TableType } from "./table";
import { WritableInternalTable } from "./ht";

const TYPE = "internal";

function open(args: OpenArgs): Table {
  return new WritableInternalTable(TYPE, args.name, args.flags, args.gen);
}

export const internal: TableType = { type: TYPE, open, debugLogged: false };
