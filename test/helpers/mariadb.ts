/**
 * mariadb.ts - MariaDB for tests: the machine's shared server, throw-away
 * databases and users on it, and private servers a test can stop and
 * start at will.
 *
 *  - requireMariadb(): the shared server (socket /run/mysqld/mysqld.sock)
 *    must be installed; it is started when its socket is missing
 *    (start-stop-daemon, as root) and waited for. A missing server FAILS the
 *    test with the install hint (apt-get install mariadb-server).
 *  - createTestDatabase(label): a database and a user (with password, for
 *    localhost and 127.0.0.1) of their own; drop() removes both.
 *  - PrivateMariadb: a second mariadbd on its own data directory, socket
 *    and TCP port (127.0.0.1), optionally logging every statement to the
 *    table mysql.general_log; stop()/start() for fault tests, destroy()
 *    at the end. The shared server keeps running for everyone else.
 *
 *  - referenceLookup() / ourLookup(): re-exported from sqlLookup.ts (one
 *    lookup answered by the installed C proxymap and by our dict layer).
 *
 * Administration goes through the `mariadb` command-line client as root
 * (unix_socket authentication). Logs nothing; failures throw.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SHARED_SOCKET = "/run/mysqld/mysqld.sock";
const MARIADBD = "/usr/sbin/mariadbd";
const INSTALL_HINT = "apt-get install mariadb-server";

function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function requireBinaries(): void {
  if (!existsSync(MARIADBD)) throw new Error(`MariaDB server is missing (${MARIADBD}): ${INSTALL_HINT}`);
  if (!which("mariadb")) throw new Error(`MariaDB client is missing (mariadb): ${INSTALL_HINT}`);
  if (!which("mariadb-install-db")) throw new Error(`mariadb-install-db is missing: ${INSTALL_HINT}`);
}

/** Run SQL as root on a server; returns the tab-separated output. Throws on error. */
export function adminSql(sql: string, socket = SHARED_SOCKET): string {
  // On stdin: statements may be longer than a command line can be.
  const r = spawnSync("mariadb", ["--socket", socket, "-u", "root", "--batch", "--skip-column-names"], { input: Buffer.from(sql, "latin1"), encoding: "latin1" });
  if (r.status !== 0) throw new Error(`mariadb failed (${socket}): ${r.stderr || r.stdout || r.error}`);
  return r.stdout;
}

function answers(socket: string): boolean {
  if (!existsSync(socket)) return false;
  const r = spawnSync("mariadb", ["--socket", socket, "-u", "root", "-e", "SELECT 1"], { encoding: "latin1" });
  return r.status === 0;
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Make sure the shared MariaDB runs; FAILS with the install hint when it is not installed. */
export async function requireMariadb(): Promise<void> {
  requireBinaries();
  if (answers(SHARED_SOCKET)) return;
  // Start it whenever it does not answer: a stale socket file (left by a
  // server that died, or restored from a machine snapshot) is not a server.
  // /run is a tmpfs: after a reboot the socket directory is gone too.
  mkdirSync("/run/mysqld", { recursive: true });
  chownSync("/run/mysqld", mysqlUid(), mysqlGid());
  {
    const r = spawnSync("start-stop-daemon", ["--start", "--oknodo", "--background", "--exec", MARIADBD, "--", "--user=mysql"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cannot start MariaDB: ${r.stderr}`);
  }
  await waitFor("MariaDB on " + SHARED_SOCKET, () => answers(SHARED_SOCKET), 30_000);
}

export interface TestDatabase {
  db: string;
  user: string;
  password: string;
  socket: string;
  /** TCP address of the same server. */
  host: string;
  port: number;
  /** Run SQL as root in this database. */
  sql(sql: string): string;
  drop(): void;
}

let counter = 0;

/** A fresh database and user on a server (the shared one by default). */
export function createTestDatabase(label: string, socket = SHARED_SOCKET, port = 3306): TestDatabase {
  const tag = `${label.replace(/[^a-z0-9]/gi, "").slice(0, 12)}_${process.pid}_${++counter}`;
  const db = `pm_${tag}`;
  const user = `pm_${tag}`.slice(0, 32);
  const password = `pw'${tag}"x`;
  const pw = password.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
  adminSql(
    `CREATE DATABASE \`${db}\`;` +
      `CREATE USER '${user}'@'localhost' IDENTIFIED BY '${pw}';` +
      `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${pw}';` +
      `GRANT ALL ON \`${db}\`.* TO '${user}'@'localhost';` +
      `GRANT ALL ON \`${db}\`.* TO '${user}'@'127.0.0.1';`,
    socket,
  );
  return {
    db,
    user,
    password,
    socket,
    host: "127.0.0.1",
    port,
    sql: (s) => adminSql(`USE \`${db}\`; ${s}`, socket),
    drop() {
      try {
        adminSql(`DROP DATABASE IF EXISTS \`${db}\`; DROP USER IF EXISTS '${user}'@'localhost'; DROP USER IF EXISTS '${user}'@'127.0.0.1';`, socket);
      } catch {
        // server already gone: nothing to drop
      }
    },
  };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const privates = new Set<PrivateMariadb>();
process.on("exit", () => {
  for (const p of privates) p.kill();
});

/** A private mariadbd on its own data directory, socket and port. */
export class PrivateMariadb {
  readonly dir: string;
  readonly socket: string;
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly generalLog: boolean,
    private readonly extraArgs: readonly string[],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "pm-mariadb-"));
    chownSync(this.dir, mysqlUid(), mysqlGid());
    this.socket = join(this.dir, "mysqld.sock");
  }

  /** Install a data directory and start the server (extraArgs: more mariadbd options, e.g. TLS). */
  static async create(opts: { generalLog?: boolean; extraArgs?: string[] } = {}): Promise<PrivateMariadb> {
    requireBinaries();
    const m = new PrivateMariadb(await freePort(), opts.generalLog ?? false, opts.extraArgs ?? []);
    privates.add(m);
    const r = spawnSync("mariadb-install-db", ["--no-defaults", `--datadir=${join(m.dir, "data")}`, "--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mariadb-install-db failed: ${r.stderr || r.stdout}`);
    await m.start();
    return m;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const args = [
      "--no-defaults",
      `--datadir=${join(this.dir, "data")}`,
      `--socket=${this.socket}`,
      `--port=${this.port}`,
      "--bind-address=127.0.0.1",
      "--user=mysql",
      `--pid-file=${join(this.dir, "mysqld.pid")}`,
      `--log-error=${join(this.dir, "error.log")}`,
      "--innodb-buffer-pool-size=16M",
      "--skip-log-bin",
      "--max-connections=300",
    ];
    args.push(...this.extraArgs);
    if (this.generalLog) args.push("--log-output=FILE", "--general-log=1", `--general-log-file=${this.generalLogPath}`);
    this.proc = spawn(MARIADBD, args, { stdio: "ignore" });
    const proc = this.proc;
    await waitFor(`private MariaDB on ${this.socket}`, () => {
      if (proc.exitCode !== null) throw new Error(`mariadbd exited with ${proc.exitCode}; see ${join(this.dir, "error.log")}`);
      return answers(this.socket);
    }, 30_000);
  }

  /** Stop the server (SIGTERM) and wait for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGTERM");
    await Promise.race([exited, Bun.sleep(20_000)]);
    if (this.running) p.kill("SIGKILL");
    await exited;
  }

  /** SIGKILL without waiting (exit hook). */
  kill(): void {
    if (this.running) this.proc!.kill("SIGKILL");
  }

  sql(sql: string): string {
    return adminSql(sql, this.socket);
  }

  get generalLogPath(): string {
    return join(this.dir, "general.log");
  }

  /**
   * The statements (COM_QUERY) in the general log, as the exact bytes the
   * server received: the log file keeps them raw (the log table converts
   * them to UTF-8 and writes undecodable bytes as \xNN). A statement with
   * a raw newline continues on the next lines.
   */
  queries(): string[] {
    const text = readFileSync(this.generalLogPath).toString("latin1");
    const out: string[] = [];
    let current: string | undefined;
    for (const line of text.replace(/\n$/, "").split("\n")) {
      const m = /^(?:\d{6} [ \d]\d:\d\d:\d\d)?\t+\s*\d+ (\w[\w ]*?)\t(.*)$/s.exec(line) ?? /^(?:\d{6} [ \d]\d:\d\d:\d\d)?\s+\d+ (\w[\w ]*)$/.exec(line);
      if (m) {
        if (current !== undefined) out.push(current);
        current = m[1] === "Query" ? (m[2] ?? "") : undefined;
      } else if (current !== undefined) {
        current += "\n" + line;
      }
    }
    if (current !== undefined) out.push(current);
    return out;
  }

  async destroy(): Promise<void> {
    await this.stop();
    privates.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function mysqlUid(): number {
  return idOf("/etc/passwd", "mysql");
}

function mysqlGid(): number {
  return idOf("/etc/group", "mysql");
}

function idOf(file: string, name: string): number {
  const r = spawnSync("sh", ["-c", `grep '^${name}:' ${file} | cut -d: -f3`], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  if (!r.stdout.trim() || !Number.isInteger(n)) throw new Error(`no ${name} entry in ${file}: ${INSTALL_HINT}`);
  return n;
}

// ------------------------------------------------------------------ the two proxymaps

export { C_PROXYMAP, closeOurTables, ourLookup, referenceLookup, releaseOurLog, takeOurLog, writeOld, type LookupReply } from "./sqlLookup";
import { C_PROXYMAP } from "./sqlLookup";

/** Throw with the install hint unless the C proxymap with MySQL support is installed. */
export function requireReference(): void {
  if (!existsSync(C_PROXYMAP)) throw new Error(`${C_PROXYMAP} is missing: apt-get install postfix postfix-mysql`);
  if (!existsSync("/usr/lib/postfix/postfix-mysql.so")) throw new Error("Postfix MySQL support is missing: apt-get install postfix-mysql");
}

