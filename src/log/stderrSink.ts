/**
 * stderrSink.ts - log lines on standard error, like Postfix's -V option
 * (msg_vstream): "postfix/proxymap: warning: text", no pid, no time stamp.
 *
 * The write is synchronous so that a fatal message is out before the
 * process exits. Reads: nothing. Logs: what it is given.
 */
import { writeSync } from "node:fs";
import type { LogSink } from "./msg";
import { printable } from "./printable";

export function stderrSink(tag: string, utf8: boolean): LogSink {
  return {
    write(_severity, line) {
      try {
        writeSync(2, Buffer.from(`${tag}: ${printable(line, utf8)}\n`, "latin1"));
      } catch {
        // stderr closed: nobody is listening.
      }
    },
  };
}
