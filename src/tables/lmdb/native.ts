/**
 * lmdb/native.ts - the lmdb package and our MDB_NOLOCK patch of it, loaded
 * only when a process needs an lmdb table.
 *
 * Importing the package loads its native addon: in the compiled executable
 * Bun first writes the embedded .node file to $TMPDIR, then dlopen()s it,
 * which costs about 3 ms of start-up and 9 MB of memory that a proxymap
 * serving no lmdb table should not pay. So slmdb.ts reaches the package
 * through lmdbPackage(), and the lmdb type's prepare() (lmdb.ts) loads it
 * before the first open. The import is a dynamic import() of a fixed module
 * path, which the bundler embeds in a chunk of its own (src/util/lazyModule.ts).
 *
 * A chrooted process cannot reach the addon afterwards: prepare() runs
 * before chroot whenever the service's approved tables mention lmdb
 * (src/tables/prepare.ts).
 *
 * Logs nothing (a failed load surfaces as the table's open error).
 */
type Loaded = typeof import("./nativeParts");

let loaded: Loaded | undefined;
let loading: Promise<Loaded> | undefined;

/** Load the package (once); resolves to its parts we use. */
export function loadLmdb(): Promise<Loaded> {
  return (loading ??= import("./nativeParts").then((m) => (loaded = m)));
}

/** The loaded package; only valid after loadLmdb() resolved. */
export function lmdbPackage(): Loaded {
  if (!loaded) throw new Error("internal error: the lmdb package is used before it was loaded");
  return loaded;
}

/** True once the package is loaded (open() can then stay synchronous). */
export function lmdbLoaded(): boolean {
  return loaded !== undefined;
}
