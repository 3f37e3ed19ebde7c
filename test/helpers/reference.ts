/**
 * reference.ts - where the installed C proxymap (the oracle) lives.
 *
 * Normally /usr/lib/postfix/sbin/proxymap. When our Debian package is
 * installed, dpkg-divert has renamed Debian's file and that path holds OUR
 * binary; a test that took the path at face value would then compare ours
 * with ours. `dpkg-divert --truename` names the file dpkg moved the C
 * original to, so every test asks here instead of hard-coding the path.
 * Reads dpkg's diversion database once; logs nothing.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const POSTFIX_SBIN = "/usr/lib/postfix/sbin";

function trueName(path: string): string {
  try {
    const r = spawnSync("dpkg-divert", ["--truename", path], { encoding: "utf8" });
    const t = r.status === 0 ? r.stdout.trim() : "";
    return t || path;
  } catch {
    return path; // no dpkg: not a Debian machine, nothing diverted
  }
}

/** The C proxymap shipped by Debian's postfix package, wherever dpkg keeps it now. */
export const C_PROXYMAP = trueName(join(POSTFIX_SBIN, "proxymap"));
