/**
 * postgres.ts - PostgreSQL for tests: the machine's cluster, throw-away
 * roles and databases on it, and private servers a test can stop, start
 * and restart at will.
 *
 *  - requirePostgres(): Debian's PostgreSQL must be installed (else the
 *    test FAILS with `apt-get install postgresql`); the cluster that
 *    pg_lsclusters lists first (15/main here) is started with
 *    `pg_ctlcluster VERSION NAME start` when it does not answer, and
 *    waited for. No systemd needed.
 *  - createTestDatabase(label, { encoding }): a role with a password
 *    (scram) and a database it owns, UTF8 (default) or LATIN1; drop()
 *    removes both. On the machine's cluster the role reaches it over TCP
 *    (127.0.0.1, password): Debian's pg_hba.conf lets local socket users
 *    in only by peer authentication.
 *  - PrivatePostgres: a postgres of its own (initdb in a temp directory),
 *    listening only on a UNIX socket in that directory, port 5432 (so that
 *    Postfix's `unix:/dir` host form, which cannot name a port, reaches it),
 *    password authentication for every role but the administrator;
 *    stop() (fast shutdown), kill() (SIGKILL), start(), destroy().
 *
 * Administration runs psql as the postgres user (runuser) over the
 * cluster's socket. Logs nothing; failures throw.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INSTALL_HINT = "apt-get install postgresql";

/** The cluster pg_lsclusters lists (the machine's PostgreSQL). */
export interface Cluster {
  version: string;
  name: string;
  port: number;
  /** Its socket directory. */
  socketDir: string;
}

function pgIds(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "latin1")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error(`no postgres user in /etc/passwd: ${INSTALL_HINT}`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Directory of the server binaries of the newest installed PostgreSQL. */
export function pgBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres"))) : [];
  if (versions.length === 0) throw new Error(`PostgreSQL server is missing (${root}/*/bin/postgres): ${INSTALL_HINT}`);
  versions.sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0], "bin");
}

function which(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** pg_lsclusters' first cluster. */
export function machineCluster(): Cluster {
  if (!which("pg_lsclusters")) throw new Error(`pg_lsclusters is missing: ${INSTALL_HINT}`);
  const r = spawnSync("pg_lsclusters", ["-h"], { encoding: "utf8" });
  const line = r.stdout.split("\n").find((l) => l.trim() !== "");
  if (!line) throw new Error(`pg_lsclusters lists no cluster: ${INSTALL_HINT} (it creates one), or pg_createcluster`);
  const [version, name, port] = line.trim().split(/\s+/);
  return { version, name, port: Number(port), socketDir: "/var/run/postgresql" };
}

/**
 * Run SQL (a byte string: UTF-8 for non-ASCII text) as the postgres
 * superuser; returns psql's unaligned, tuples-only output (UTF-8 bytes as a
 * byte string). Throws on error.
 */
export function adminSql(sql: string, opts: { socketDir?: string; port?: number; db?: string } = {}): string {
  const c = opts.socketDir ? undefined : machineCluster();
  const args = ["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", opts.socketDir ?? c!.socketDir, "-p", String(opts.port ?? c!.port), "-d", opts.db ?? "postgres"];
  // The statements' bytes are UTF-8 whatever the database's encoding (psql would take the database's).
  const r = spawnSync("runuser", args, { input: Buffer.from(sql, "latin1"), encoding: "latin1", cwd: "/", env: { ...process.env, PGCLIENTENCODING: "UTF8" } });
  if (r.status !== 0) throw new Error(`psql failed: ${r.stderr || r.stdout || r.error}\n--- sql ---\n${sql.slice(0, 2000)}`);
  return r.stdout;
}

function answers(socketDir: string, port: number): boolean {
  const r = spawnSync("runuser", ["-u", "postgres", "--", "psql", "-X", "-A", "-t", "-h", socketDir, "-p", String(port), "-d", "postgres", "-c", "SELECT 1"], { encoding: "latin1", cwd: "/" });
  return r.status === 0 && r.stdout.trim() === "1";
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Make sure the machine's cluster answers; FAILS with the install hint when PostgreSQL is not installed. */
export async function requirePostgres(): Promise<Cluster> {
  pgBinDir();
  if (!which("psql")) throw new Error(`psql is missing: ${INSTALL_HINT}`);
  const c = machineCluster();
  if (answers(c.socketDir, c.port)) return c;
  const r = spawnSync("pg_ctlcluster", [c.version, c.name, "start"], { encoding: "utf8" });
  if (r.status !== 0 && !answers(c.socketDir, c.port)) throw new Error(`pg_ctlcluster ${c.version} ${c.name} start failed: ${r.stderr || r.stdout}`);
  await waitFor(`PostgreSQL ${c.version}/${c.name}`, () => answers(c.socketDir, c.port), 30_000);
  return c;
}

export interface TestDatabase {
  db: string;
  user: string;
  password: string;
  encoding: "UTF8" | "LATIN1";
  /** TCP address (machine cluster) or undefined (private server: socket only). */
  host: string | undefined;
  port: number;
  /** The socket directory (the private server's; the machine's needs peer authentication). */
  socketDir: string;
  /** Run SQL as the superuser in this database (bytes: latin1 string). */
  sql(sql: string): string;
  drop(): void;
}

let counter = 0;

/** Quote an SQL string literal (standard_conforming_strings on). */
export function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * A role (with password) and a database it owns, on the machine's cluster
 * or on a private server. LATIN1 databases use the C locale (template0).
 */
export function createTestDatabase(label: string, opts: { encoding?: "UTF8" | "LATIN1"; server?: PrivatePostgres } = {}): TestDatabase {
  const encoding = opts.encoding ?? "UTF8";
  const tag = `${label.replace(/[^a-z0-9]/gi, "").toLowerCase().slice(0, 12)}_${process.pid}_${++counter}`;
  const db = `pm_${tag}`;
  const user = `pm_${tag}`;
  const password = `pw'${tag}\\x`;
  const where = opts.server ? { socketDir: opts.server.socketDir, port: 5432 } : (() => {
    const c = machineCluster();
    return { socketDir: c.socketDir, port: c.port };
  })();
  adminSql(`CREATE ROLE ${user} LOGIN PASSWORD ${lit(password)};\n` + `CREATE DATABASE ${db} OWNER ${user} ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;\n`, where);
  return {
    db,
    user,
    password,
    encoding,
    host: opts.server ? undefined : "127.0.0.1",
    port: where.port,
    socketDir: where.socketDir,
    sql: (s) => adminSql(`SET ROLE ${user};\n${s}`, { ...where, db }),
    drop() {
      try {
        adminSql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE);\nDROP ROLE IF EXISTS ${user};\n`, where);
      } catch {
        // server already gone: nothing to drop
      }
    },
  };
}

const privates = new Set<PrivatePostgres>();
process.on("exit", () => {
  for (const p of privates) p.kill();
});

/** A postgres of its own: UNIX socket only, in its own directory, port 5432. */
export class PrivatePostgres {
  readonly dir: string;
  readonly socketDir: string;
  private proc: ChildProcess | undefined;

  private constructor(private readonly settings: readonly string[]) {
    this.dir = mkdtempSync(join(tmpdir(), "pm-pg-"));
    this.socketDir = join(this.dir, "sock");
  }

  /**
   * initdb and start. `settings`: more `-c name=value` for the server;
   * `hba`: more pg_hba.conf lines (after the socket ones).
   */
  static async create(opts: { settings?: string[]; hba?: string[] } = {}): Promise<PrivatePostgres> {
    const bin = pgBinDir();
    const p = new PrivatePostgres(opts.settings ?? []);
    privates.add(p);
    const { uid, gid } = pgIds();
    chownSync(p.dir, uid, gid);
    // Postfix's daemons (mail_owner) must reach the socket.
    chmodSync(p.dir, 0o755);
    mkdirSync(p.socketDir, { mode: 0o755 });
    chownSync(p.socketDir, uid, gid);
    const r = spawnSync("runuser", ["-u", "postgres", "--", join(bin, "initdb"), "-D", p.dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--no-sync"], {
      encoding: "utf8",
      cwd: "/",
    });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
    // The administrator without a password; every other role with one.
    writeFileSync(join(p.dataDir, "pg_hba.conf"), ["local all postgres trust", "local all all scram-sha-256", ...(opts.hba ?? [])].join("\n") + "\n");
    await p.start();
    return p;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  /** The socket file clients connect to. */
  get socketPath(): string {
    return join(this.socketDir, ".s.PGSQL.5432");
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { uid, gid } = pgIds();
    const args = ["-D", this.dataDir, "-k", this.socketDir, "-p", "5432", "-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=16MB"];
    for (const s of this.settings) args.push("-c", s);
    this.proc = spawn(join(pgBinDir(), "postgres"), args, { uid, gid, cwd: "/", stdio: ["ignore", "ignore", "ignore"], env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
    const proc = this.proc;
    await waitFor(`private PostgreSQL in ${this.dir}`, () => {
      if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}`);
      return answers(this.socketDir, 5432);
    }, 30_000);
  }

  /** Fast shutdown (SIGINT: sessions are told and closed), waited for. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGINT");
    await Promise.race([exited, Bun.sleep(20_000)]);
    if (this.running) p.kill("SIGKILL");
    await exited;
  }

  /** SIGKILL without waiting (exit hook; a crash). */
  kill(): void {
    if (this.running) this.proc!.kill("SIGKILL");
  }

  sql(sql: string, db = "postgres"): string {
    return adminSql(sql, { socketDir: this.socketDir, port: 5432, db });
  }

  async destroy(): Promise<void> {
    await this.stop();
    privates.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
