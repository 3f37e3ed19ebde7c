/**
 * lmdb/noLock.ts - open lmdb environments as Postfix does, with
 * MDB_NOLOCK: no FILE.lmdb-lock file is created (a read-only daemon could
 * not create one after dropping privileges, and Postfix's tools never use
 * one), and readers and writers coordinate through fcntl() locks on the
 * database file instead (lmdb/fcntl.ts).
 *
 * The lmdb package has no option for MDB_NOLOCK: its open() computes the
 * environment flags itself and hands them to the native Env class. The
 * package lets its native functions be replaced (setNativeFunctions() in
 * its native.js), so we install an Env subclass that adds MDB_NOLOCK when
 * the open options carry `postfixNoLock: true`; every other environment
 * opens unchanged. The addon prints a one-line notice about MDB_NOLOCK to
 * stderr on each such open; standard error is pointed at /dev/null for the
 * duration of that call.
 *
 * native.js is imported by its path because the package's exports map does
 * not list it; it is the same module instance the package itself uses.
 *
 * Reads and logs nothing.
 */
// @ts-expect-error: the package's native.js has no type declarations
import { nativeAddon, setNativeFunctions } from "../../../node_modules/lmdb/native.js";
import { withStderrSilenced } from "./fcntl";

const MDB_NOLOCK = 0x400000;

let installed = false;

/** Make later open({ postfixNoLock: true, ... }) calls use MDB_NOLOCK. Idempotent. */
export function installNoLock(): void {
  if (installed) return;
  const Base = (nativeAddon as { Env: new () => { open(o: unknown, f: number, j: number): number } }).Env;
  class PostfixEnv extends Base {
    override open(options: { postfixNoLock?: boolean }, flags: number, jsFlags: number): number {
      if (!options?.postfixNoLock) return super.open(options, flags, jsFlags);
      return withStderrSilenced(() => super.open(options, flags | MDB_NOLOCK, jsFlags));
    }
  }
  // Everything else is looked up on the addon itself.
  setNativeFunctions(Object.assign(Object.create(nativeAddon), { Env: PostfixEnv }));
  installed = true;
}
