/**
 * debugLayer.ts - the DEBUG instance flag up to Postfix 3.10: every
 * operation on the table is logged with its outcome (Postfix
 * util/dict_debug.c; 3.11 replaced the flag by a "debug:" table type).
 * The reference wraps each driver as it opens it, so the layer sees what
 * the driver sees: the key after the UTF-8 layer's folding, except for the
 * types built on the in-memory "internal" table, where the UTF-8 layer is
 * inside (TableType.utf8Inside).
 *
 * A failing operation's own warning is logged before the layer's line, as
 * in the reference; the error then travels on with its message spent.
 *
 * Logs: `TYPE:NAME lookup: "KEY" = "VALUE"` (or not_found, error), and the
 * update, delete and sequence lines.
 */
import { msg } from "../../log/msg";
import { Settled, TableError, type Maybe, type Out, type Table } from "../table";
import { reportError } from "./errors";

function plain<T>(r: Out<T>): T {
  return r instanceof Settled ? r.result : r;
}

/** Run op; log its line from its outcome; pass the outcome on. */
function logged<T>(label: string, op: string, call: () => Maybe<Out<T>>, line: (r: T | "error") => string): Maybe<Out<T>> {
  const failed = (err: unknown): never => {
    const kind = reportError(label, op, err);
    msg.info(line("error"));
    throw new TableError(kind, "");
  };
  let r: Maybe<Out<T>>;
  try {
    r = call();
  } catch (err) {
    return failed(err);
  }
  const done = (x: Out<T>): Out<T> => {
    msg.info(line(plain(x)));
    return x;
  };
  return r instanceof Promise ? r.then(done, failed) : done(r);
}

export function debugLayer(inner: Table, label: string): Table {
  const layer: Table = {
    get flags() {
      return inner.flags;
    },
    lookup: (key, flags) =>
      logged(label, "lookup", () => inner.lookup(key, flags), (v) => `${label} lookup: "${key}" = "${v === undefined ? "not_found" : v}"`),
    changed: inner.changed?.bind(inner),
    close: inner.close?.bind(inner),
  };
  const { update, delete: del, sequence } = inner;
  if (update) {
    layer.update = (key, value, flags) =>
      logged(label, "update", () => update.call(inner, key, value, flags), (ok) => `${label} update: "${key}" = "${value}": ${ok === "error" ? "error" : ok ? "success" : "failed"}`);
  }
  if (del) {
    layer.delete = (key, flags) =>
      logged(label, "delete", () => del.call(inner, key, flags), (ok) => `${label} delete: "${key}": ${ok === "error" ? "error" : ok ? "success" : "failed"}`);
  }
  if (sequence) {
    layer.sequence = (fn, flags) =>
      logged(label, "sequence", () => sequence.call(inner, fn, flags), (r) =>
        r === "error" || r === undefined ? `${label} sequence: found EOF` : `${label} sequence: "${r[0]}" = "${r[1]}"`,
      );
  }
  return layer;
}
