/**
 * memcached.ts - a private memcached for tests, started per test run as a
 * child process in the foreground (`memcached -u memcache -l 127.0.0.1 -p
 * PORT -U 0` (or -l ::1), or `-s SOCKET -a 0666` for a UNIX socket:
 * memcached listens on one or the other), stopped with the tests or when the test process
 * exits. A missing memcached fails with the command that installs it.
 *
 * Besides start/stop/restart (same port or socket, empty cache), it speaks
 * the text protocol itself (written here, not taken from src/) so tests can
 * read and prepare the server's state: raw commands, get, set, flush, and
 * items(keys) = the items under those keys with their flags and remaining
 * lifetime.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { requireCommand } from "./require";

const INSTALL = "apt-get install memcached";
const live = new Set<Memcached>();
let exitHook = false;

/** A loopback port nobody listens on right now. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res, rej) => {
    srv.once("error", rej);
    srv.listen(0, host, () => res());
  });
  const addr = srv.address();
  await new Promise<void>((res) => srv.close(() => res()));
  return typeof addr === "object" && addr ? addr.port : 0;
}

/** One item as dump() reports it. */
export interface Item {
  flags: number;
  value: string;
  /** Seconds left, rounded to the minute (-1: never expires). */
  ttlMinutes: number;
}

export interface MemcachedOptions {
  /** Listen on a UNIX socket (in a directory of its own) instead of loopback TCP. */
  unix?: boolean;
  /** The loopback address to listen on (default 127.0.0.1; "::1" for IPv6). */
  host?: "127.0.0.1" | "::1";
}

export class Memcached {
  private proc: Subprocess | undefined;
  private readonly dir: string | undefined;
  readonly port: number;
  readonly path: string | undefined;
  private stopped = true;

  private constructor(
    port: number,
    dir: string | undefined,
    /** The loopback address it listens on (TCP). */
    readonly host = "127.0.0.1",
  ) {
    this.port = port;
    this.dir = dir;
    this.path = dir === undefined ? undefined : join(dir, "memcached.sock");
  }

  /** Start a memcached of the test's own. */
  static async start(opts: MemcachedOptions = {}): Promise<Memcached> {
    requireCommand("memcached", INSTALL);
    let dir: string | undefined;
    if (opts.unix) {
      dir = mkdtempSync(join(tmpdir(), "memcached-"));
      // memcached runs as user memcache (it creates the socket), Postfix daemons as postfix.
      chmodSync(dir, 0o777);
    }
    for (let attempt = 0; ; attempt++) {
      const m = new Memcached(opts.unix ? 0 : await freePort(opts.host), dir, opts.host);
      try {
        await m.launch();
        if (!exitHook) {
          exitHook = true;
          process.on("exit", () => {
            for (const x of live) x.kill();
          });
        }
        live.add(m);
        return m;
      } catch (e) {
        if (attempt >= 4) throw e;
      }
    }
  }

  /** The server's process id. */
  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  /** Stall the server (SIGSTOP); resolves once every thread of it has stopped. */
  async pause(): Promise<void> {
    process.kill(this.pid, "SIGSTOP");
    const stopped = () => {
      try {
        return readdirSync(`/proc/${this.pid}/task`).every((t) => {
          const stat = readFileSync(`/proc/${this.pid}/task/${t}/stat`, "latin1");
          return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "T";
        });
      } catch {
        return true;
      }
    };
    while (!stopped()) await Bun.sleep(5);
  }

  /** Let a paused server go on (SIGCONT). */
  resume(): void {
    if (this.pid) process.kill(this.pid, "SIGCONT");
  }

  /** Started and not stopped. */
  get running(): boolean {
    return !this.stopped;
  }

  /** The `memcache` setting that names this server. */
  get server(): string {
    if (this.path !== undefined) return `unix:${this.path}`;
    return this.host.includes(":") ? `inet:[${this.host}]:${this.port}` : `inet:${this.host}:${this.port}`;
  }

  private args(): string[] {
    const where = this.path !== undefined ? ["-s", this.path, "-a", "0666"] : ["-l", this.host, "-p", String(this.port), "-U", "0"];
    return ["memcached", "-u", "memcache", ...where, "-t", "2", "-m", "64"];
  }

  private async launch(): Promise<void> {
    const proc = Bun.spawn(this.args(), { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    this.proc = proc;
    this.stopped = false;
    const deadline = Date.now() + 5000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        const err = await new Response(proc.stderr as ReadableStream).text();
        this.stopped = true;
        throw new Error(`memcached exited at start (${proc.exitCode ?? proc.signalCode}): ${err.trim()}`);
      }
      try {
        if ((await this.command("version\r\n")).startsWith("VERSION ")) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        this.kill();
        throw new Error(`memcached did not answer on ${this.server}`);
      }
      await Bun.sleep(20);
    }
  }

  /** Stop the server (SIGTERM) and wait for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || this.stopped) return;
    this.stopped = true;
    p.kill("SIGTERM");
    await p.exited;
  }

  /** Start it again on the same port or socket, with an empty cache. */
  async restart(): Promise<void> {
    await this.stop();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.launch();
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await Bun.sleep(100);
      }
    }
  }

  private kill(): void {
    try {
      this.proc?.kill("SIGKILL");
    } catch {
      // already gone
    }
    this.stopped = true;
  }

  /** Stop for good and remove the socket directory. */
  async close(): Promise<void> {
    await this.stop();
    live.delete(this);
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Send raw protocol bytes (a byte string) on a fresh connection; resolve
   * with what came back once it ends with `until` (default: a line).
   */
  command(raw: string, until: RegExp = /\r\n$/, timeoutMs = 5000): Promise<string> {
    return new Promise((resolve, reject) => {
      const sock = this.path !== undefined ? createConnection({ path: this.path }) : createConnection({ host: this.host, port: this.port });
      let got = "";
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`memcached ${this.server}: no complete reply to ${JSON.stringify(raw.slice(0, 60))}: ${JSON.stringify(got.slice(0, 200))}`));
      }, timeoutMs);
      sock.on("connect", () => sock.write(Buffer.from(raw, "latin1")));
      sock.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        if (until.test(got)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(got);
        }
      });
      sock.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** The item under a key, or undefined. */
  async get(key: string): Promise<{ flags: number; value: string } | undefined> {
    const r = await this.command(`get ${key}\r\n`, /(^|\r\n)(END|ERROR|CLIENT_ERROR[^\r]*|SERVER_ERROR[^\r]*)\r\n$/);
    const m = /^VALUE (\S+) (\d+) (\d+)\r\n/.exec(r);
    if (!m) return undefined;
    const start = m[0].length;
    return { flags: Number(m[2]), value: r.slice(start, start + Number(m[3])) };
  }

  /** Store an item as another memcached client would. */
  async set(key: string, value: string, flags = 0, ttl = 0): Promise<string> {
    return (await this.command(`set ${key} ${flags} ${ttl} ${value.length}\r\n${value}\r\n`)).trim();
  }

  async flush(): Promise<void> {
    await this.command("flush_all\r\n");
  }

  /**
   * The items under the given keys (those that exist), with flags and
   * remaining lifetime, in one pipelined round of meta gets (`mg KEY v f
   * t`). Keys memcached cannot hold (white space, over 250 bytes) are left
   * out. (`lru_crawler metadump` would list every key, but its crawler runs
   * in the background and misses fresh items.)
   */
  async items(keys: Iterable<string>): Promise<Map<string, Item>> {
    const list = [...new Set(keys)].filter((k) => k.length > 0 && k.length <= 250 && !/[\s]/.test(k)).sort();
    const out = new Map<string, Item>();
    if (list.length === 0) return out;
    const reply = await this.command(list.map((k) => `mg ${k} v f t\r\n`).join("") + "mn\r\n", /(^|\r\n)MN\r\n$/);
    let pos = 0;
    for (const key of list) {
      const nl = reply.indexOf("\r\n", pos);
      const line = reply.slice(pos, nl);
      pos = nl + 2;
      const m = /^VA (\d+) f(\d+) t(-?\d+)$/.exec(line);
      if (!m) continue;
      const value = reply.slice(pos, pos + Number(m[1]));
      pos += Number(m[1]) + 2;
      const ttl = Number(m[3]);
      out.set(key, { flags: Number(m[2]), value, ttlMinutes: ttl < 0 ? -1 : Math.round(ttl / 60) });
    }
    return out;
  }
}
