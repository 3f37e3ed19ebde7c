/**
 * errors.ts - what a failed table operation becomes: the warning that
 * explains it and the status that answers it.
 *
 * A TableError's message is logged as a warning (nothing when it is empty:
 * whoever threw it has logged already) and its kind gives RETRY or CONFIG.
 * Any other exception is a defect or an unexpected environment problem: it
 * is logged with the table's name and answered RETRY, because a temporary
 * failure makes Postfix clients defer and try again rather than treat the
 * mail as misconfigured.
 *
 * Logs: as above.
 */
import { msg } from "../../log/msg";
import { TableError, type TableErrorKind } from "../table";

/** Log why an operation failed; the kind of failure it is. */
export function reportError(label: string, op: string, err: unknown): TableErrorKind {
  if (err instanceof TableError) {
    if (err.message) msg.warn(err.message);
    return err.kind;
  }
  msg.warn(`${label}: ${op} failed: ${err instanceof Error ? err.message : String(err)}`);
  return "retry";
}
