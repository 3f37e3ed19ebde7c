/**
 * errno.ts - the text Postfix's "%m" would print for a failed system call:
 * the C library's strerror() of the errno behind a Node/Bun error
 * (err.code "ENOENT" -> "No such file or directory").
 *
 * Reads and logs nothing.
 */
import { constants } from "node:os";
import { strerror } from "../sys/nss";

const ERRNO = constants.errno as Record<string, number>;

export function errnoText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && typeof ERRNO[code] === "number") {
    try {
      return strerror(ERRNO[code]);
    } catch {
      // libc unavailable through FFI: fall back to the runtime's own text.
    }
  }
  return err instanceof Error ? err.message : String(err);
}
