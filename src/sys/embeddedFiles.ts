/**
 * embeddedFiles.ts - the native files the compiled executable carries.
 *
 * Empty here: running from the sources, lmdb loads its addon from
 * node_modules as usual. build.ts replaces this module, in the executable
 * only, by one that imports each file with `{ type: "file" }` (Bun embeds it
 * and gives its /$bunfs path) and names it with a hash of its bytes; see
 * embeddedAddon.ts for where copies are loaded from.
 */

/** One native file carried by the executable. */
export interface EmbeddedFile {
  /** Short name ("lmdb"). */
  name: string;
  /** Where Bun's embedded file system has it (/$bunfs/...). */
  embedded: string;
  /** Hex digest of its bytes (part of the installed name). */
  hash: string;
}

export const EMBEDDED: EmbeddedFile[] = [];
