/**
 * strerror() texts (glibc) for the errno codes file access can report, so
 * that "open FILE: %m" style messages read as Postfix's do.
 */
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

/** The strerror() text of a Node/Bun system error. */
export function errnoText(err: unknown): string {
  const code = (err as { code?: string })?.code;
  if (code && TEXTS[code]) return TEXTS[code];
  return code ?? String((err as Error)?.message ?? err);
}

/** The errno code of a Node/Bun system error ("ENOENT"), if any. */
export function errnoCode(err: unknown): string | undefined {
  return (err as { code?: string })?.code;
}
