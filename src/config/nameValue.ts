/**
 * `name = value` splitting as Postfix's split_nameval() does it (used for
 * main.cf lines and for `-o name=value`): blanks around the name and the
 * value are trimmed, the name ends at the first blank or '='. Returns the
 * reference's error texts ("missing attribute name", "missing '=' after
 * attribute name") for the caller to put into its fatal message.
 */
import { cString, isSpace } from "../util/ctype";

export type NameValue = { name: string; value: string } | { error: string };

export function splitNameValue(line: string): NameValue {
  const buf = cString(line);
  let np = 0;
  while (np < buf.length && isSpace(buf[np])) np++;
  if (np === buf.length || buf[np] === "=") return { error: "missing attribute name" };
  let ep = np;
  while (ep < buf.length && !isSpace(buf[ep]) && buf[ep] !== "=") ep++;
  let cp = ep;
  while (cp < buf.length && isSpace(buf[cp])) cp++;
  if (buf[cp] !== "=") return { error: "missing '=' after attribute name" };
  let vp = cp + 1;
  while (vp < buf.length && isSpace(buf[vp])) vp++;
  let end = buf.length;
  while (end > vp && isSpace(buf[end - 1])) end--;
  return { name: buf.slice(np, ep), value: buf.slice(vp, end) };
}
