/**
 * reference.ts - where the installed C proxymap (the oracle) lives.
 *
 * Normally /usr/lib/postfix/sbin/proxymap. While our Debian package is
 * installed, dpkg-divert has renamed Debian's file and that path holds OUR
 * binary; a test that took the path at face value would compare ours with
 * ours, and the renamed file moves back when the package goes. So the tests
 * use a private copy of Debian's binary, made once per machine from wherever
 * dpkg keeps it now (`dpkg-divert --truename`) and accepted only when its
 * MD5 is the one postfix.md5sums records: whatever a packaging test does
 * meanwhile, the oracle stays Debian's. (The binary finds its libraries
 * through its RUNPATH, so a copy runs from anywhere.)
 *
 * Without dpkg or the md5sums list (not Debian), the path itself is used.
 * Reads dpkg's files once; logs nothing.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const POSTFIX_SBIN = "/usr/lib/postfix/sbin";
const SYSTEM_PATH = join(POSTFIX_SBIN, "proxymap");

function trueName(path: string): string {
  try {
    const r = spawnSync("dpkg-divert", ["--truename", path], { encoding: "utf8" });
    const t = r.status === 0 ? r.stdout.trim() : "";
    return t || path;
  } catch {
    return path; // no dpkg: not a Debian machine, nothing diverted
  }
}

function md5(path: string): string {
  return new Bun.CryptoHasher("md5").update(readFileSync(path)).digest("hex");
}

/** The MD5 of Debian's proxymap as the postfix package lists it. */
function packagedMd5(): string | undefined {
  try {
    const line = readFileSync("/var/lib/dpkg/info/postfix.md5sums", "latin1")
      .split("\n")
      .find((l) => l.endsWith("  usr/lib/postfix/sbin/proxymap"));
    return line?.split(" ")[0];
  } catch {
    return undefined;
  }
}

function locate(): string {
  const want = packagedMd5();
  const real = trueName(SYSTEM_PATH);
  if (!want) return real;
  const dest = join(tmpdir(), `proxymap-c-${want}`, "proxymap");
  try {
    if (existsSync(dest) && md5(dest) === want) return dest;
    if (!existsSync(real) || md5(real) !== want) return real; // let the tests report what is wrong
    mkdirSync(join(tmpdir(), `proxymap-c-${want}`), { recursive: true, mode: 0o755 });
    const tmp = `${dest}.${process.pid}`;
    copyFileSync(real, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, dest);
    return dest;
  } catch {
    return real;
  }
}

/** The C proxymap shipped by Debian's postfix package (a verified private copy of it). */
export const C_PROXYMAP = locate();
