/**
 * lazyModule.ts - a module kept out of a process's start-up: loaded on the
 * first load() (once), used synchronously after that.
 *
 * The loader must be a dynamic import() of a fixed relative path, e.g.
 *     const driver = lazyModule(() => import("./ldap/driver"));
 * build.ts builds with code splitting: the bundler puts such a module, with
 * everything only it imports (libraries and Node built-ins such as node:tls
 * included), into a chunk of its own, which `bun build --compile` embeds in
 * the executable beside the entry point. So the single executable carries
 * it, and a process that never loads it pays neither the time nor the
 * memory of evaluating it. (Without splitting the bundler would evaluate
 * the module lazily too, but would still load its built-ins at start.)
 *
 * Reads and logs nothing.
 */
import type { Maybe } from "../tables/table";

export interface LazyModule<M> {
  /** Load it (once); resolves to the module. */
  load(): Promise<M>;
  /** The module when loaded, else undefined. */
  readonly loaded: M | undefined;
  /** f(module): now when it is loaded, after loading it otherwise. */
  use<R>(f: (m: M) => Maybe<R>): Maybe<R>;
}

export function lazyModule<M>(importer: () => Promise<M>): LazyModule<M> {
  let loaded: M | undefined;
  let loading: Promise<M> | undefined;
  const load = () => (loading ??= importer().then((m) => (loaded = m)));
  return {
    load,
    get loaded() {
      return loaded;
    },
    use<R>(f: (m: M) => Maybe<R>): Maybe<R> {
      return loaded !== undefined ? f(loaded) : load().then(f);
    },
  };
}
