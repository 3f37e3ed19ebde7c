/**
 * inet.ts - inet_pton(3) and inet_ntop(3) of the C library through bun:ffi,
 * for cidr tables.
 *
 * Why the C library's: which texts are addresses is the library's decision
 * (glibc refuses "1.2.3.04", accepts "::1.2.3.4", refuses zone suffixes...),
 * and the "perhaps you should use ..." hint prints glibc's canonical IPv6
 * form; both must be what the C proxymap sees and prints.
 *
 * libc is opened lazily; preloadInet() opens it before chroot.
 *
 * Reads nothing. Logs nothing.
 */
import { libcSymbols } from "../../sys/libc";

export const AF_INET = 2;
export const AF_INET6 = 10;

const libc = libcSymbols({
  inet_pton: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  inet_ntop: { args: ["i32", "ptr", "ptr", "u32"], returns: "ptr" },
});

export function preloadInet(): void {
  libc();
}

/** The address bytes (4 or 16) of text in a family, or undefined when inet_pton() refuses it. */
export function inetPton(family: number, text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const rc = libc().inet_pton(family, Buffer.from(text + "\0", "latin1"), out);
  if (rc !== 1) return undefined;
  return family === AF_INET ? out.subarray(0, 4) : out;
}

/** inet_ntop() of 4 or 16 address bytes. */
export function inetNtop(family: number, bytes: Uint8Array): string {
  const src = new Uint8Array(16);
  src.set(bytes);
  const buf = Buffer.alloc(64);
  libc().inet_ntop(family, src, buf, buf.length);
  const nul = buf.indexOf(0);
  return buf.toString("latin1", 0, nul < 0 ? buf.length : nul);
}
