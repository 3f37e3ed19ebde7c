/**
 * files.ts - table and configuration files for tests.
 */
import { utimesSync, writeFileSync } from "node:fs";

/**
 * Write a file (a byte string) with an old modification time, so that
 * Postfix's hot-file rule (re-read a file changed within the last second,
 * after a pause) does not delay or change the test. Returns the path.
 */
export function writeCoolFile(path: string, text: string): string {
  writeFileSync(path, Buffer.from(text, "latin1"));
  utimesSync(path, new Date(2020, 0, 1), new Date(2020, 0, 1));
  return path;
}
