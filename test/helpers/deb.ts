/**
 * deb.ts - what the Debian package test needs to drive dpkg on the real
 * machine and to put the machine back as it found it.
 *
 * The package (scripts/package.ts, packaging/) installs ours at INSTALLED,
 * diverts Postfix's C proxymap from TARGET to DIVERTED (the file kept there)
 * and puts a symbolic link to ours at TARGET. Here:
 *   - dpkg(): dpkg with a fixed environment (MAIL_CONFIG passed through, so
 *     the maintainer scripts' `postfix status`/`postfix reload` address a
 *     private test instance instead of the system's Postfix);
 *   - packageState(), diversion(): what dpkg says about our package;
 *   - removeStale(): purge a package or diversion left by a run that died;
 *   - snapshot(): the facts that must be equal before and after a run;
 *   - makeReloadable(): the queue directories `postfix reload` scans, added
 *     to a private instance (test/helpers/postfix-instance.ts makes only the
 *     ones master needs);
 *
 * It must not import test/helpers/reference.ts (nor postfix-instance.ts or
 * require.ts, which do): reference.ts asks dpkg where the C proxymap is when
 * it is first imported, and the package test has to remove a stale package
 * first, or every later test would look for the C binary at the diverted
 * name, which the removal takes away.
 *   - exeOf(): which file a process runs (dev, inode and size of /proc/PID/exe,
 *     which stay those of the executed file after a rename or an unlink);
 *   - startWatcher(): a process that checks, as fast as it can, that a path
 *     names an executable file, and counts the moments it did not.
 *
 * Logs nothing; throws with dpkg's output when a command fails.
 */
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { DIVERTED, INSTALLED, NATIVE_DIR, PACKAGE, TARGET } from "../../scripts/package";

export { DIVERTED, INSTALLED, NATIVE_DIR, PACKAGE, TARGET };

export interface Run {
  code: number;
  out: string;
}

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

function spawn(argv: string[], env: Record<string, string> = {}): Run {
  const r = Bun.spawnSync(argv, {
    cwd: "/",
    env: { PATH, LC_ALL: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive", ...env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

/** Run dpkg once; its exit code and output (for the steps that must fail). */
export function dpkgTry(args: string[], mailConfig: string): Run {
  return spawn(["dpkg", ...args], { MAIL_CONFIG: mailConfig || "/nonexistent/proxymap-bun-test" });
}

/**
 * Run dpkg; waits up to 20 s for its lock (another dpkg or apt run) and
 * throws on any other failure. mailConfig: the Postfix instance the
 * maintainer scripts reload ("" = none: MAIL_CONFIG points nowhere, so no
 * Postfix on the machine is reloaded by the test).
 */
export function dpkg(args: string[], mailConfig: string): string {
  const env = { MAIL_CONFIG: mailConfig || "/nonexistent/proxymap-bun-test" };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = spawn(["dpkg", ...args], env);
    if (r.code === 0) return r.out;
    if (/lock/i.test(r.out) && Date.now() < deadline) {
      Bun.sleepSync(500);
      continue;
    }
    throw new Error(`dpkg ${args.join(" ")} failed (exit ${r.code}):\n${r.out}`);
  }
}

/** dpkg's two-letter status and version of our package ("" when dpkg does not know it). */
export function packageState(): { status: string; version: string } {
  const r = spawn(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", PACKAGE]);
  if (r.code !== 0) return { status: "", version: "" };
  const [status, version] = r.out.trim().split("|");
  // "un" = known to dpkg's database but not installed, as good as absent.
  return { status: status.trim() === "un" ? "" : status.trim(), version: version ?? "" };
}

/** Who diverts TARGET ("" = nobody) and where dpkg keeps Postfix's file now. */
export function diversion(): { by: string; truename: string } {
  const by = spawn(["dpkg-divert", "--listpackage", TARGET]).out.trim();
  const truename = spawn(["dpkg-divert", "--truename", TARGET]).out.trim();
  return { by, truename };
}

/**
 * A run that died midway may have left our package or our diversion behind:
 * purge the one and remove the other (putting the C binary back). Returns
 * what it did, for the test's log; throws if something else diverts TARGET.
 */
export function removeStale(): string[] {
  const done: string[] = [];
  if (packageState().status) {
    dpkg(["--purge", PACKAGE], "");
    done.push(`purged a ${PACKAGE} package left installed`);
  }
  const d = diversion();
  if (isOurLink(TARGET) && existsSync(DIVERTED)) {
    renameSync(DIVERTED, TARGET);
    done.push(`put ${DIVERTED} back at ${TARGET}`);
  }
  if (d.by === PACKAGE) {
    // The C binary is at TARGET already (above, or a failed configuration never moved it).
    const rename = !existsSync(TARGET) && existsSync(DIVERTED) ? "--rename" : "--no-rename";
    const r = spawn(["dpkg-divert", "--package", PACKAGE, "--remove", rename, "--divert", DIVERTED, TARGET]);
    if (r.code !== 0) throw new Error(`could not remove the stale diversion of ${TARGET}:\n${r.out}`);
    done.push(`removed a stale diversion of ${TARGET}`);
  } else if (d.by) {
    throw new Error(`${TARGET} is diverted by ${d.by}, not by ${PACKAGE}: this test will not touch it`);
  }
  return done;
}

export function sha256(path: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(readFileSync(path));
  return h.digest("hex");
}

/** The md5 dpkg recorded for TARGET when it installed Debian's postfix package. */
export function postfixMd5(): string {
  const line = readFileSync("/var/lib/dpkg/info/postfix.md5sums", "latin1")
    .split("\n")
    .find((l) => l.endsWith(`  ${TARGET.slice(1)}`));
  if (!line) throw new Error(`postfix.md5sums lists no ${TARGET}: apt-get install --reinstall postfix`);
  return line.split(" ")[0];
}

export function md5(path: string): string {
  const h = new Bun.CryptoHasher("md5");
  h.update(readFileSync(path));
  return h.digest("hex");
}

/** TARGET is the package's symbolic link to ours. */
export function isOurLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink() && readlinkSync(path) === INSTALLED;
  } catch {
    return false;
  }
}

export interface MachineState {
  /** sha256 of the file at TARGET. */
  targetSha: string;
  /** What TARGET is: "file", "symlink", "missing". */
  targetKind: string;
  /** Whether the package's directory /usr/lib/proxymap-bun exists. */
  ourDir: boolean;
  /** Whether DIVERTED exists. */
  divertedFile: boolean;
  /** `dpkg -V postfix` output (empty when clean). */
  verify: string;
  /** `dpkg-divert --list`, sorted. */
  diversions: string;
  /** Our package's dpkg status ("" = unknown to dpkg). */
  packageStatus: string;
}

export function verifyPostfix(): string {
  return spawn(["dpkg", "--verify", "postfix"]).out.trim();
}

export function snapshot(): MachineState {
  let targetKind = "missing";
  try {
    targetKind = lstatSync(TARGET).isSymbolicLink() ? "symlink" : "file";
  } catch {
    // missing
  }
  return {
    targetSha: sha256(TARGET),
    targetKind,
    ourDir: existsSync("/usr/lib/proxymap-bun"),
    divertedFile: existsSync(DIVERTED),
    verify: verifyPostfix(),
    diversions: spawn(["dpkg-divert", "--list"]).out.split("\n").filter(Boolean).sort().join("\n"),
    packageStatus: packageState().status,
  };
}

/** Field 3 (the numeric id) of NAME's line in /etc/passwd or /etc/group. */
function numericId(file: string, name: string): number {
  const line = readFileSync(file, "latin1")
    .split("\n")
    .find((l) => l.startsWith(name + ":"));
  if (!line) throw new Error(`no ${name} in ${file}: apt-get install postfix creates it`);
  return Number(line.split(":")[2]);
}

/**
 * Add the queue directories that `postfix reload` needs (postfix-script runs
 * `postsuper active`, then a full postsuper pass) to a private instance's
 * queue directory, owned and moded as Postfix's postfix-files has them.
 */
export function makeReloadable(queueDir: string): void {
  const uid = numericId("/etc/passwd", "postfix");
  const postdrop = numericId("/etc/group", "postdrop");
  for (const d of ["active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "saved", "trace", "maildrop"]) {
    const p = join(queueDir, d);
    if (existsSync(p)) continue;
    mkdirSync(p, { mode: d === "maildrop" ? 0o730 : 0o700 });
    chownSync(p, uid, d === "maildrop" ? postdrop : 0);
  }
}

/** The file a process executes: dev and inode (they follow renames) and size. */
export function exeOf(pid: number): { dev: number; ino: number; size: number } | undefined {
  try {
    const s = statSync(`/proc/${pid}/exe`);
    return { dev: s.dev, ino: s.ino, size: s.size };
  } catch {
    return undefined; // gone meanwhile
  }
}

export function fileId(path: string): { dev: number; ino: number; size: number } {
  const s = statSync(path);
  return { dev: s.dev, ino: s.ino, size: s.size };
}

export interface WatchResult {
  /** How many times the path was checked. */
  checks: number;
  /** How many checks found no executable file there. */
  misses: number;
  /** The first failure's text. */
  first: string;
}

/**
 * Watch `path` from another process: access(X_OK) and "a regular file"
 * (through any symbolic link) in a tight loop until stop(). Resolves once the
 * watcher has started checking.
 */
export async function startWatcher(path: string): Promise<{ stop(): Promise<WatchResult> }> {
  const code = `
    const { accessSync, statSync, constants } = require("node:fs");
    const path = ${JSON.stringify(path)};
    let checks = 0, misses = 0, first = "", stop = false;
    process.on("SIGTERM", () => { stop = true; });
    process.stdout.write("started\\n");
    const loop = () => {
      const end = Date.now() + 20;
      while (Date.now() < end) {
        checks++;
        try {
          accessSync(path, constants.X_OK);
          if (!statSync(path).isFile()) throw new Error("not a regular file");
        } catch (e) {
          misses++;
          if (!first) first = String(e.message);
        }
      }
      if (stop) process.stdout.write(JSON.stringify({ checks, misses, first }) + "\\n");
      else setImmediate(loop);
    };
    loop();
  `;
  const p = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "inherit" });
  const reader = p.stdout.getReader();
  let out = "";
  while (!out.includes("started\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`watcher did not start: ${out}`);
    out += new TextDecoder().decode(value);
  }
  return {
    async stop() {
      p.kill("SIGTERM");
      for (;;) {
        const { value, done } = await reader.read();
        if (value) out += new TextDecoder().decode(value);
        if (done) break;
      }
      await p.exited;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) throw new Error(`watcher gave no result: ${out}`);
      return JSON.parse(line) as WatchResult;
    },
  };
}
