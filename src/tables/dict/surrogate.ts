/**
 * surrogate.ts - the tables that stand in for one that could not be opened
 * (Postfix util/dict_surrogate.c). The reference's daemons allow
 * surrogates: a failed open is logged once as an error, and every later
 * operation logs "TYPE:NAME is unavailable. REASON" and fails. The
 * reference fails them with a temporary error (RETRY); ours also makes a
 * surrogate answering CONFIG where the reference would have exited at
 * open instead (a broken table configuration, an empty type or name):
 * that table fails, every other client goes on.
 *
 * A surrogate is an ordinary Table, so the dict layer stacks the same
 * DEBUG and UTF-8 layers on it as on the table it replaces.
 *
 * Logs: the reason, as an error, when made (by the caller); the warning
 * above on each operation.
 */
import { DictFlag } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, type Table, type TableErrorKind } from "../table";

/**
 * A table failing every operation with `kind`. update/delete exist only
 * on the write service (on the read service they are "not supported").
 */
export function surrogateTable(label: string, reason: string, kind: TableErrorKind, openFlags: number, writer: boolean): Table {
  const fail = (): never => {
    // Logged now, so that a DEBUG layer's line follows it, as in the reference.
    msg.warn(`${label} is unavailable. ${reason}`);
    throw new TableError(kind, "");
  };
  const t: Table = {
    flags: openFlags | DictFlag.PATTERN,
    lookup: fail,
    sequence: fail,
  };
  if (writer) {
    t.update = fail;
    t.delete = fail;
  }
  return t;
}
