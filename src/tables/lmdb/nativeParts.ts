/**
 * lmdb/nativeParts.ts - what importing loads: the package's open() and our
 * MDB_NOLOCK patch. Imported only through lmdb/native.ts (lazily).
 */
export { open } from "lmdb";
export { installNoLock } from "./noLock";
