/**
 * errno.ts - the text Postfix's "%m" prints for a failed system call: the
 * C library's strerror() of the errno behind a Node/Bun error (err.code
 * "ENOENT" -> "No such file or directory"). The codes file access reports
 * every day are known here (no FFI needed at start-up, when configuration
 * files are read); any other goes to the C library's strerror().
 *
 * Reads and logs nothing.
 */
import { constants } from "node:os";
import { strerror } from "../sys/libc";

/** glibc's texts of the common file-access errors. */
const TEXTS: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EPERM: "Operation not permitted",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  ELOOP: "Too many levels of symbolic links",
  ENAMETOOLONG: "File name too long",
  EMFILE: "Too many open files",
  ENFILE: "Too many open files in system",
  EIO: "Input/output error",
  ENXIO: "No such device or address",
  ENODEV: "No such device",
  EINVAL: "Invalid argument",
};

const ERRNO = constants.errno as Record<string, number>;

/** The errno code of a Node/Bun system error ("ENOENT"), if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The strerror() text of a Node/Bun system error. */
export function errnoText(err: unknown): string {
  const code = errnoCode(err);
  if (code !== undefined) {
    const known = TEXTS[code];
    if (known !== undefined) return known;
    if (typeof ERRNO[code] === "number") {
      try {
        return strerror(ERRNO[code]);
      } catch {
        // libc unavailable through FFI: fall back to the runtime's own text.
      }
    }
  }
  return err instanceof Error ? err.message : String(err);
}
