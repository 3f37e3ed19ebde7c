/**
 * listen.ts - start `proxymap --listen SOCKET` (ours, from the sources) for
 * a test: its own configuration directory (main.cf written with an old
 * mtime, so the reference-like "file still changing" pause never applies),
 * standard error collected, and the call returns once the process says it
 * is listening. The caller stops it with `proc.kill()`.
 *
 * Runs as root in the tests, so it passes `--user root` unless the
 * arguments name a user (`-u`, `--user`) themselves: as root, --listen
 * refuses to serve without an explicit user.
 */
import { mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { REPO_ROOT } from "./require";

export const MAIN = join(REPO_ROOT, "src", "main.ts");

export interface Listening {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  /** The socket path. */
  sock: string;
  /** What the process wrote to standard error so far. */
  readonly stderr: string;
}

/** Write DIR/main.cf (the given lines after queue_directory = DIR), dated a minute back. */
export function writeListenConfig(dir: string, lines: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "main.cf"), [`queue_directory = ${dir}`, ...lines].join("\n") + "\n");
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, "main.cf"), past, past);
}

/** Start ours on `sock` with MAIL_CONFIG=dir; resolves once it listens (10 s at most). */
export async function startListening(dir: string, sock: string, args: string[] = []): Promise<Listening> {
  const user = args.includes("-u") || args.includes("--user") ? [] : ["--user", "root"];
  const proc = Bun.spawn([process.execPath, MAIN, "--listen", sock, ...user, ...args], {
    env: { PATH: "/usr/bin:/bin", MAIL_CONFIG: dir },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  let stderr = "";
  void (async () => {
    for await (const c of proc.stderr as ReadableStream<Uint8Array>) stderr += Buffer.from(c).toString("latin1");
  })();
  const end = Date.now() + 10_000;
  while (!stderr.includes("listening on")) {
    if (Date.now() > end || proc.exitCode !== null) {
      proc.kill();
      throw new Error(`proxymap --listen did not start: ${stderr}`);
    }
    await Bun.sleep(10);
  }
  return {
    proc,
    sock,
    get stderr() {
      return stderr;
    },
  };
}
