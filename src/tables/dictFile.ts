/**
 * dictFile.ts - values that name files (DICT_FLAG_SRC_RHS_IS_FILE, what
 * "postmap -F" sets): the value is a list of pathnames, and the table stores
 * the BASE64 encoding of their contents joined with newlines, as Postfix's
 * dict_file_to_b64() (util/dict_file.c).
 *
 * Reads: the named files. Logs nothing; errors are returned as the
 * reference's texts ("open /x: No such file or directory").
 */
import { readFileSync } from "node:fs";
import { errnoText } from "../util/errno";
import { CHARS_COMMA_SP } from "../util/ctype";

export type FileValue = { value: string } | { err: string };

export function fileToBase64(pathnames: string): FileValue {
  const names: string[] = [];
  let word = "";
  for (const ch of pathnames) {
    if (CHARS_COMMA_SP.includes(ch)) {
      if (word) names.push(word);
      word = "";
    } else {
      word += ch;
    }
  }
  if (word) names.push(word);
  if (names.length === 0) return { err: `empty pathname list: >>${pathnames}<<'` };
  const parts: Buffer[] = [];
  for (let i = 0; i < names.length; i++) {
    try {
      parts.push(readFileSync(Buffer.from(names[i], "latin1")));
    } catch (e) {
      return { err: `open ${names[i]}: ${errnoText(e)}` };
    }
    if (i + 1 < names.length) parts.push(Buffer.from("\n"));
  }
  return { value: Buffer.concat(parts).toString("base64") };
}
