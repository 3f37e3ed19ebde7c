/**
 * nested.ts - tables opened by other tables (OpenContext): unionmap and
 * pipemap members, the type:table items of a `domain` list, memcache's
 * backup. What the reference's composites do with dict_open(),
 * dict_register() and dict_handle() inside the proxymap server:
 * - "proxy:" prefixes are dropped (the proxymap server opens such a table
 *   itself: its dict_proxy_open() does just that); no approval check;
 * - registered (the default): up to 3.10 under the table's text alone, the
 *   first opener's flags sticking to it; from 3.11 under the same name and
 *   flags as a client's request would use, so the two share one instance;
 *   a registered table is held (never evicted) until every opener released it;
 * - private: an instance of the opener's own, closed when released.
 * Each operation resolves the instance again, so a member whose file
 * changed is re-opened like a table a client names.
 *
 * Reads and logs nothing itself.
 */
import type { Gen } from "../../protocol/scan";
import type { Maybe, OpenContext, OpenedTable, OpResult, SeqOpResult } from "../table";
import { hold, release, retire } from "./cache";
import type { Dict } from "./instance";
import { create, findOrOpen, registeredName, setContextFactory } from "./open";
import { dictDel, dictGet, dictPut, dictSeq } from "./ops";
import { then } from "./settle";

const PROXY_COLON = "proxy:";

/** The flags a nested table's operations use by default: its own (the reference's dict->flags). */
function own(d: Dict): number {
  return d.word;
}

function handle(first: Dict, resolve: () => Maybe<Dict>, done: () => void): OpenedTable {
  let last = first;
  const on = <R>(f: (d: Dict) => Maybe<R>): Maybe<R> =>
    then(resolve(), (d) => {
      last = d;
      return f(d);
    });
  return {
    get label() {
      return last.label;
    },
    get flags() {
      return own(last);
    },
    lookup: (key, flags): Maybe<OpResult> => on((d) => dictGet(d, key, flags ?? own(d))),
    update: (key, value, flags): Maybe<OpResult> => on((d) => dictPut(d, key, value, flags ?? own(d))),
    delete: (key, flags): Maybe<OpResult> => on((d) => dictDel(d, key, flags ?? own(d))),
    sequence: (fn, flags): Maybe<SeqOpResult> => on((d) => dictSeq(d, fn, flags ?? own(d))),
    release: done,
  };
}

export function openContext(gen: Gen, writer: boolean): OpenContext {
  return {
    openTable(typeName, flags, opts) {
      let name = typeName;
      while (name.startsWith(PROXY_COLON)) name = name.slice(PROXY_COLON.length);
      const write = opts?.write ?? false;
      if (opts?.private) {
        const reg = registeredName(name, write, flags, gen);
        return then(create(name, reg, write, flags, gen), (d) => {
          let current = d;
          return handle(
            d,
            () => current,
            () => retire("", current),
          );
        });
      }
      const reg = gen === "classic" ? name : registeredName(name, write, flags, gen);
      const mapKey = (gen === "classic" ? "R" : "I") + reg;
      hold(mapKey);
      const resolve = () => findOrOpen(mapKey, reg, name, write, flags, gen);
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        release(mapKey);
      };
      return then(resolve(), (d) => handle(d, resolve, done));
    },
  };
}

setContextFactory(openContext);
