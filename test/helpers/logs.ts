/**
 * logs.ts - capture what our code logs while a piece of a test runs.
 */
import { setLogSinks } from "../../src/log/msg";

/** Run fn with every log line collected (as "warning: text"...); stderr again afterwards. */
export async function logged<T>(fn: () => T | Promise<T>): Promise<{ value: T; logs: string[] }> {
  const logs: string[] = [];
  setLogSinks([{ write: (_s, line) => logs.push(line) }]);
  try {
    return { value: await fn(), logs };
  } finally {
    setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
  }
}
