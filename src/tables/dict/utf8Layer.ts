/**
 * utf8Layer.ts - the UTF-8 layer that dict_open3() puts in front of a
 * table opened with UTF8_REQUEST while smtputf8 is on (Postfix
 * util/dict_utf8.c):
 * - a key that is not valid UTF-8 is refused with a warning: lookup
 *   NOKEY, update and delete "done" (the item cannot exist);
 * - keys are case-folded with Unicode rules when the call's flags ask for
 *   it (FOLD_FIX on a fixed-key table, FOLD_MUL on a pattern table), and
 *   the table below sees the flags without the fold bits;
 * - a looked-up value that is not valid UTF-8 is a CONFIG error; an update
 *   with such a value is skipped with a warning.
 * sequence passes through untouched, as in the reference.
 *
 * Logs the reference's warnings for the cases above.
 */
import { DictFlag, FOLD_ANY } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, Settled, type Maybe, type Out, type Table } from "../table";
import { UTF8_ERROR, allAscii, casefold, validUtf8 } from "../utf8";
import { then } from "./settle";

function okUtf8(s: string): boolean {
  return allAscii(s) || validUtf8(s);
}

/** The key as the layer passes it on, or undefined when refused. */
function checkFold(label: string, key: string, flags: number): string | undefined {
  if (!okUtf8(key)) {
    msg.warn(`${label}: non-UTF-8 key "${key}": ${UTF8_ERROR}`);
    return undefined;
  }
  const fold = flags & FOLD_ANY;
  if (fold !== 0 && (fold & (flags & DictFlag.FIXED ? DictFlag.FOLD_FIX : DictFlag.FOLD_MUL)) !== 0) return casefold(key);
  return key;
}

/** The flags the table below sees: the fold bits are the layer's. */
function withFoldBack<T>(r: Out<T>, flags: number): Out<T> {
  return r instanceof Settled ? new Settled(r.result, r.flags | (flags & FOLD_ANY)) : r;
}

export function utf8Layer(inner: Table, label: string): Table {
  const layer: Table = {
    get flags() {
      return inner.flags;
    },
    lookup(key, flags): Maybe<Out<string | undefined>> {
      const k = checkFold(label, key, flags);
      if (k === undefined) return undefined;
      return then(inner.lookup(k, flags & ~FOLD_ANY), (r) => {
        const value = r instanceof Settled ? r.result : r;
        if (value !== undefined && !okUtf8(value)) {
          // Logged now (a DEBUG layer outside logs its line after this one).
          msg.warn(`${label}: key "${key}": non-UTF-8 value "${value}": ${UTF8_ERROR}`);
          throw new TableError("config", "");
        }
        return withFoldBack(r, flags);
      });
    },
    sequence: inner.sequence?.bind(inner),
    changed: inner.changed?.bind(inner),
    close: inner.close?.bind(inner),
  };
  const update = inner.update;
  if (update) {
    layer.update = (key, value, flags) => {
      const k = checkFold(label, key, flags);
      if (k === undefined) return true;
      if (!okUtf8(value)) {
        msg.warn(`${label}: key "${key}": non-UTF-8 value "${value}": ${UTF8_ERROR}`);
        return true;
      }
      return then(update.call(inner, k, value, flags & ~FOLD_ANY), (r) => withFoldBack(r, flags));
    };
  }
  const del = inner.delete;
  if (del) {
    layer.delete = (key, flags) => {
      const k = checkFold(label, key, flags);
      if (k === undefined) return true;
      return then(del.call(inner, k, flags & ~FOLD_ANY), (r) => withFoldBack(r, flags));
    };
  }
  return layer;
}
