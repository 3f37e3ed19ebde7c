/**
 * driver-caller.ts - call a driver directly the way the dict layer calls
 * it for a request of the up-to-3.10 shape: each call's flags word is the
 * table's word with the request's bits put in, and the TRY0NULL/TRY1NULL
 * bits a driver settles (Settled results) are kept in the word, as the
 * reference keeps them in dict->flags. Driver-level tests use it so they
 * can pass just the request bits (LOCK, FOLD_FIX, ...) and read back the
 * word (`flags`) as before.
 */
import { RQST_MASK, DictFlag } from "../../src/protocol/constants";
import { Settled, type Maybe, type Out, type Table } from "../../src/tables/table";
import { openContext } from "../../src/tables/dict";

const TRY = DictFlag.TRY0NULL | DictFlag.TRY1NULL;

export type Caller = Table & { flags: number };

export function asCaller(t: Table): Caller {
  let word = t.flags;
  const call = (request: number) => (word = (word & ~RQST_MASK) | (request & RQST_MASK));
  const out = <T>(r: Maybe<Out<T>>): Maybe<T> => {
    const unwrap = (x: Out<T>): T => {
      if (x instanceof Settled) {
        word = (word & ~TRY) | (x.flags & TRY);
        return x.result;
      }
      return x;
    };
    return r instanceof Promise ? r.then(unwrap) : unwrap(r);
  };
  const c: Caller = {
    get flags() {
      return word;
    },
    lookup: (key, request) => out(t.lookup(key, call(request))),
    changed: t.changed?.bind(t),
    close: t.close?.bind(t),
    openLock: t.openLock?.bind(t),
  };
  if (t.update) c.update = (key, value, request) => out(t.update!(key, value, call(request)));
  if (t.delete) c.delete = (key, request) => out(t.delete!(key, call(request)));
  if (t.sequence) c.sequence = (fn, request) => out(t.sequence!(fn, call(request)));
  return c;
}

/** The OpenContext a driver gets when a test opens it directly (up-to-3.10 rules, read service). */
export const TEST_CTX = openContext("classic", false);
