/**
 * Logging, shaped like Postfix's msg(3): msg.info / warn / error / fatal /
 * panic, plus msg.verbose (the -v count). Every module logs through this;
 * where the lines go (syslog, postlogd, stderr) is chosen once at start-up by
 * the server skeleton through setLogSinks().
 *
 * A line is written as "<severity>: text" for warnings and worse, like
 * Postfix ("warning: request for unapproved table: ..."), and plain text for
 * info. The sink adds the ident (postfix/proxymap[pid]) where it belongs.
 */

export type Severity = "info" | "warning" | "error" | "fatal" | "panic";

export interface LogSink {
  write(severity: Severity, line: string): void;
}

let sinks: LogSink[] = [
  { write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) },
];

/** Replace where log lines go. */
export function setLogSinks(next: LogSink[]): void {
  sinks = next;
}

/** Where log lines go now (to restore them after a quiet stretch). */
export function currentLogSinks(): LogSink[] {
  return sinks;
}

function emit(severity: Severity, text: string): void {
  const line = severity === "info" ? text : `${severity}: ${text}`;
  for (const s of sinks) {
    try {
      s.write(severity, line);
    } catch {
      // A broken log channel must never take the daemon down.
    }
  }
}

/** Thrown by msg.fatal so callers (and tests) can unwind; main() exits 1. */
export class FatalError extends Error {}

export const msg = {
  /** -v count; lines guarded by `if (msg.verbose)` cost nothing otherwise. */
  verbose: 0,
  info(text: string): void {
    emit("info", text);
  },
  warn(text: string): void {
    emit("warning", text);
  },
  error(text: string): void {
    emit("error", text);
  },
  /** Log and exit with status 1, as Postfix's msg_fatal does. */
  fatal(text: string): never {
    emit("fatal", text);
    throw new FatalError(text);
  },
  /** An internal inconsistency: log and exit. Never for bad input. */
  panic(text: string): never {
    emit("panic", text);
    throw new FatalError(text);
  },
};
