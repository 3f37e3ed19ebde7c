/**
 * require.ts - make a missing component FAIL a test with a message saying
 * how to install it. Tests never skip silently (team rule).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { C_PROXYMAP } from "./reference";

/** Repository root (this file lives in test/helpers/). */
export const REPO_ROOT = join(import.meta.dir, "..", "..");

/** Throw unless `cmd` is on PATH (or is an existing absolute path). */
export function requireCommand(cmd: string, howToInstall: string): string {
  const found = cmd.startsWith("/") ? (existsSync(cmd) ? cmd : null) : Bun.which(cmd, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` });
  if (!found) throw new Error(`required command ${cmd} is missing: ${howToInstall}`);
  return found;
}

/** Throw unless the file exists. */
export function requireFile(path: string, howToGet: string): string {
  if (!existsSync(path)) throw new Error(`required file ${path} is missing: ${howToGet}`);
  return path;
}

/** Path of our built binary; fails with the build hint when it is absent. */
export function requireOurBinary(): string {
  return requireFile(join(REPO_ROOT, "dist", "proxymap"), "run npm run build (writes dist/proxymap)");
}

/** The Postfix pieces every instance-based test needs. */
export function requirePostfix(): void {
  const hint = "apt-get install postfix (Debian; choose 'No configuration')";
  requireCommand("/usr/lib/postfix/sbin/master", hint);
  requireCommand(C_PROXYMAP, hint);
  requireCommand("postmap", hint);
  requireCommand("postconf", hint);
  if (process.getuid?.() !== 0) throw new Error("Postfix instance tests must run as root (master(8) refuses otherwise)");
}
