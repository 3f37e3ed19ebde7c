/**
 * coolFile.ts - read a table source or configuration file the way Postfix
 * does when it may be in the middle of being written: if its mtime is within
 * a second of the read, wait 300 ms and read it again (util/dict.c
 * dict_load_file_xt(), util/dict_thash.c). The wait is a timer, never a
 * blocking sleep: other clients go on meanwhile.
 *
 * Logs, with -v -v, the caller's "pausing to let ... cool down" line.
 */
import { msg } from "../log/msg";

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
