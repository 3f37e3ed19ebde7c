/**
 * registry.ts - the table types this proxymap knows, as one literal list of
 * statically imported driver modules (Postfix: dict_open_info[] in
 * util/dict_open.c). Static imports keep every driver inside the single
 * executable that `bun build --compile` makes; a dynamic import(name) would
 * not be bundled reliably.
 *
 * To add a type: write src/tables/<type>.ts exporting a TableType whose
 * `type` is the Postfix type string, import it here and append it to
 * TABLE_TYPES. Nothing else changes.
 *
 * Reads and logs nothing.
 */
import type { TableType } from "./table";
import { texthash } from "./texthash";
import { inline } from "./inline";
import { staticTable } from "./static";
import { failTable } from "./fail";
import { unix } from "./unix";
import { hash } from "./hash";
import { btree } from "./btree";
import { cdb } from "./cdb";
import { lmdb } from "./lmdb";
import { sqlite } from "./sqlite";
import { mysqlTable } from "./mysql";
import { pgsql } from "./pgsql";
import { ldapTable } from "./ldap";
import { cidr } from "./cidr";
import { regexp } from "./regexp";
import { pcre } from "./pcre";
import { unionmap } from "./unionmap";
import { pipemap } from "./pipemap";
import { environ } from "./environ";
import { randmap } from "./randmap";
import { internal } from "./internal";
import { socketmap } from "./socketmap";
import { tcp } from "./tcp";
import { debug } from "./debug";
import { memcache } from "./memcache";

export const TABLE_TYPES: readonly TableType[] = [texthash, inline, staticTable, failTable, unix, hash, btree, cdb, lmdb, sqlite, mysqlTable, pgsql, ldapTable, cidr, regexp, pcre, unionmap, pipemap, environ, randmap, internal, socketmap, tcp, debug, memcache];

const BY_NAME = new Map<string, TableType>(TABLE_TYPES.map((t) => [t.type, t]));

/** The driver of a Postfix type string, or undefined when unsupported. */
export function findTableType(type: string): TableType | undefined {
  return BY_NAME.get(type);
}

/** Every supported type string, sorted (like `postconf -m`). */
export function tableTypeNames(): string[] {
  return [...BY_NAME.keys()].sort();
}
