/**
 * coolFile.ts - read a table source or configuration file the way Postfix
 * does when it may be in the middle of being written: if its mtime is within
 * a second of the read, wait 300 ms and read it again (util/dict.c
 * dict_load_file_xt(), util/dict_thash.c). The wait is a timer, never a
 * blocking sleep: other clients go on meanwhile.
 *
 * Logs, with -v -v, the caller's "pausing to let ... cool down" line.
 */
import { readFileSync, statSync } from "node:fs";
import { msg } from "../log/msg";
import { errnoText } from "../util/errno";
import { TableError } from "./table";

const PAUSE_MS = 300;

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Run `read` (one pass: its result and the file's mtime in seconds) until
 * the file was not modified around the pass. Synchronous when it was not;
 * exceptions of `read` propagate (thrown, or as the Promise's rejection).
 */
export function readCooled<T>(read: () => { value: T; mtime: number }, pauseText: string): T | Promise<T> {
  const attempt = (): T | Promise<T> => {
    const before = nowSeconds();
    const { value, mtime } = read();
    const after = nowSeconds();
    if (mtime < before - 1 || mtime > after) return value;
    if (msg.verbose > 1) msg.info(pauseText);
    return new Promise<T>((resolve, reject) => {
      setTimeout(() => {
        try {
          resolve(attempt());
        } catch (e) {
          reject(e);
        }
      }, PAUSE_MS);
    });
  };
  return attempt();
}

/**
 * One read of a source file as a byte string, with its mtime (seconds).
 * Failures as the reference reports them: cannot open = RETRY
 * ("OPEN_TEXT PATH: reason", the caller's wording), a directory = CONFIG
 * ("read PATH: ..."; fopen() of a directory succeeds in C and the read
 * fails, which the reference treats as fatal: we fail the table instead),
 * fstat = CONFIG.
 */
export function readSourceFile(path: string, openText: string): { data: string; mtime: number } {
  const file = Buffer.from(path, "latin1");
  let data: string;
  try {
    data = readFileSync(file).toString("latin1");
  } catch (e) {
    if ((e as { code?: string }).code === "EISDIR") throw new TableError("config", `read ${path}: ${errnoText(e)}`);
    throw new TableError("retry", `${openText} ${path}: ${errnoText(e)}`);
  }
  try {
    return { data, mtime: Math.floor(statSync(file).mtimeMs / 1000) };
  } catch (e) {
    throw new TableError("config", `fstat ${path}: ${errnoText(e)}`);
  }
}
