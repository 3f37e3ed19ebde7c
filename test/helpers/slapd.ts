/**
 * slapd.ts - a private OpenLDAP server for tests.
 *
 * PrivateSlapd.start() makes a temporary directory with its own slapd.conf
 * (standard schemas only: core, cosine, inetorgperson, nis, misc,
 * dyngroup), an mdb database loaded with slapadd from the LDIF it is given
 * (by default the mail directory of ldap-data.ts), a test CA with a server
 * certificate for 127.0.0.1/localhost, and starts
 *
 *   slapd -d 0 -f DIR/slapd.conf -h "ldap://127.0.0.1:P/ ldaps://127.0.0.1:P2/ ldapi://DIR%2Fldapi"
 *
 * in the foreground (so its pid is ours to stop, pause and kill). The
 * directory is world-readable (0755) so that Postfix daemons running as
 * `postfix` can read the CA file and reach the ldapi socket.
 *
 * stop()/start() restart it on the same ports and database (fault tests),
 * pause()/resume() freeze it with SIGSTOP/SIGCONT (a server that accepts
 * requests and never answers), destroy() stops it and removes the
 * directory; a process exit hook kills any server left running.
 *
 * The rootdn is cn=admin,dc=example,dc=com with password "secret";
 * modify(ldif) applies changes with ldapmodify as that DN.
 *
 * Missing slapd or ldap-utils FAILS with the install command
 * (apt-get install slapd ldap-utils). Logs nothing; failures throw.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mailDirectoryLdif } from "./ldap-data";

export const SLAPD = "/usr/sbin/slapd";
export const INSTALL_HINT = "apt-get install slapd ldap-utils";
export const SUFFIX = "dc=example,dc=com";
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PW = "secret";

const SCHEMAS = ["core", "cosine", "inetorgperson", "nis", "misc", "dyngroup"];

/** Throw with the install command unless slapd and the ldap-utils tools are installed. */
export function requireSlapd(): void {
  if (!existsSync(SLAPD)) throw new Error(`OpenLDAP server is missing (${SLAPD}): ${INSTALL_HINT}`);
  for (const tool of ["slapadd", "ldapsearch", "ldapmodify"]) {
    if (!Bun.which(tool, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` })) throw new Error(`${tool} is missing: ${INSTALL_HINT}`);
  }
  for (const s of SCHEMAS) if (!existsSync(`/etc/ldap/schema/${s}.schema`)) throw new Error(`schema ${s} is missing: ${INSTALL_HINT}`);
  if (!existsSync("/usr/lib/ldap/back_mdb.so")) throw new Error(`back_mdb is missing: ${INSTALL_HINT}`);
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

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input: input === undefined ? undefined : Buffer.from(input, "utf8"), encoding: "latin1" });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (${INSTALL_HINT})`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.error) throw new Error(`openssl is missing: apt-get install openssl (${r.error.message})`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A test CA (ca.crt) and a server certificate for 127.0.0.1 and localhost (server.crt/key). */
function makeCertificates(dir: string): void {
  openssl(dir, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=proxymap test CA"]);
  openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "server.ext"), "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
  openssl(dir, ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext"]);
  // A second CA that signed nothing: a client trusting only it must refuse the server.
  openssl(dir, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "otherca.key", "-out", "otherca.crt", "-days", "2", "-subj", "/CN=other test CA"]);
  for (const f of ["ca.crt", "server.crt", "server.key", "otherca.crt"]) chmodSync(join(dir, f), 0o644);
}

export interface SlapdOptions {
  /** LDIF to load (given the server's ports); default: the mail directory of ldap-data.ts. */
  ldif?: (s: { port: number; sslPort: number; ldapiUrl: string }) => string;
  /** Lines added to slapd.conf's database section (limits, extra ACLs). */
  databaseConf?: string;
  /** A word in the directory's name. */
  label?: string;
}

const live = new Set<PrivateSlapd>();
process.on("exit", () => {
  for (const s of live) s.kill();
});

export class PrivateSlapd {
  readonly dir: string;
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    readonly sslPort: number,
    label: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `pm-slapd-${label}-`));
    chmodSync(this.dir, 0o755);
  }

  /** Create, load and start a server; resolves when it answers. */
  static async start(opts: SlapdOptions = {}): Promise<PrivateSlapd> {
    requireSlapd();
    const s = new PrivateSlapd(await freePort(), await freePort(), opts.label ?? "t");
    live.add(s);
    try {
      makeCertificates(s.dir);
      mkdirSync(join(s.dir, "db"));
      writeFileSync(s.confPath, s.config(opts.databaseConf ?? ""));
      const ldif = (opts.ldif ?? mailDirectoryLdif)({ port: s.port, sslPort: s.sslPort, ldapiUrl: s.ldapiUrl });
      writeFileSync(join(s.dir, "data.ldif"), ldif);
      run("slapadd", ["-q", "-f", s.confPath, "-l", join(s.dir, "data.ldif")]);
      await s.start();
    } catch (e) {
      await s.destroy();
      throw e;
    }
    return s;
  }

  get confPath(): string {
    return join(this.dir, "slapd.conf");
  }
  get ldapiPath(): string {
    return join(this.dir, "ldapi");
  }
  get ldapUrl(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }
  get ldapsUrl(): string {
    return `ldaps://127.0.0.1:${this.sslPort}`;
  }
  get ldapiUrl(): string {
    return `ldapi://${encodeURIComponent(this.ldapiPath)}`;
  }
  get caFile(): string {
    return join(this.dir, "ca.crt");
  }
  get otherCaFile(): string {
    return join(this.dir, "otherca.crt");
  }
  get pid(): number | undefined {
    return this.proc?.pid;
  }
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  private config(databaseConf: string): string {
    const d = this.dir;
    return [
      ...SCHEMAS.map((n) => `include /etc/ldap/schema/${n}.schema`),
      `pidfile ${d}/slapd.pid`,
      `argsfile ${d}/slapd.args`,
      "modulepath /usr/lib/ldap",
      "moduleload back_mdb",
      `TLSCACertificateFile ${d}/ca.crt`,
      `TLSCertificateFile ${d}/server.crt`,
      `TLSCertificateKeyFile ${d}/server.key`,
      // SASL PLAIN over plain TCP for the tests (the default refuses plain-text mechanisms there).
      "sasl-secprops none",
      // SASL identities: EXTERNAL over ldapi (root) and PLAIN users map onto entries.
      `authz-regexp "^gidNumber=0\\+uidNumber=0,cn=peercred,cn=external,cn=auth$" "cn=admin,${SUFFIX}"`,
      `authz-regexp "^uid=([^,]*),cn=[^,]*,cn=auth$" "cn=$1,ou=services,${SUFFIX}"`,
      `authz-regexp "^uid=([^,]*),cn=auth$" "cn=$1,ou=services,${SUFFIX}"`,
      "threads 8",
      // version = 2 tables bind as LDAPv2 in the reference (ours binds as v3): let both in.
      "allow bind_v2",
      "database mdb",
      "maxsize 268435456",
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw ${ROOT_PW}`,
      `directory ${d}/db`,
      "index objectClass eq",
      "index mailLocalAddress eq",
      "index uid eq",
      "index departmentNumber eq",
      "index cn eq",
      // Passwords: only for binding. A subtree nobody may see (its base is "not found"),
      // one only the bound service user may read, everything else readable by all.
      "access to attrs=userPassword by anonymous auth by * none",
      `access to dn.subtree="ou=hidden,${SUFFIX}" by * none`,
      `access to dn.subtree="ou=private,${SUFFIX}" by dn.exact="cn=postfix,ou=services,${SUFFIX}" read by dn.exact="${ROOT_DN}" read by * none`,
      "access to * by * read",
      databaseConf,
      "",
    ].join("\n");
  }

  /** Start (or restart) the server on the same ports and database; resolves when it answers. */
  async start(): Promise<void> {
    if (this.running) return;
    const urls = `${this.ldapUrl}/ ${this.ldapsUrl}/ ${this.ldapiUrl}`;
    this.proc = spawn(SLAPD, ["-d", "0", "-f", this.confPath, "-h", urls], { stdio: ["ignore", "ignore", "ignore"] });
    const proc = this.proc;
    const end = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`slapd exited with ${proc.exitCode} (try: slapd -d 1 -f ${this.confPath} -h "${urls}")`);
      const r = spawnSync("ldapsearch", ["-x", "-H", this.ldapUrl, "-b", "", "-s", "base", "-LLL", "1.1"], { encoding: "latin1" });
      if (r.status === 0) return;
      if (Date.now() > end) throw new Error(`slapd did not answer on ${this.ldapUrl}: ${r.stderr}`);
      await Bun.sleep(30);
    }
  }

  /** Stop the server (SIGTERM, then SIGKILL) and wait for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
    p.kill("SIGCONT");
    p.kill("SIGTERM");
    await Promise.race([exited, Bun.sleep(10_000)]);
    if (this.running) p.kill("SIGKILL");
    await exited;
  }

  /** Freeze the server: connections stay open, nothing is answered. */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  resume(): void {
    this.proc?.kill("SIGCONT");
  }

  /** SIGKILL without waiting (exit hook). */
  kill(): void {
    if (this.running) {
      this.proc!.kill("SIGCONT");
      this.proc!.kill("SIGKILL");
    }
  }

  /** Apply an LDIF change record set as the rootdn. */
  modify(ldif: string): void {
    run("ldapmodify", ["-x", "-H", this.ldapUrl, "-D", ROOT_DN, "-w", ROOT_PW], ldif);
  }

  /** ldapsearch output (LDIF) as the rootdn, for checks and debugging. */
  search(base: string, filter: string, attrs: string[] = [], scope = "sub"): string {
    return run("ldapsearch", ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", this.ldapUrl, "-D", ROOT_DN, "-w", ROOT_PW, "-s", scope, "-b", base, filter, ...attrs]);
  }

  async destroy(): Promise<void> {
    await this.stop();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The slapd.conf text (for reports). */
  confText(): string {
    return readFileSync(this.confPath, "utf8");
  }
}
