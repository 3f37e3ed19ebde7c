/**
 * mysql tables over TLS: the tls_* settings against a private MariaDB with
 * a certificate from a test CA, each case answered by the C proxymap and
 * by us (status and value). The query reports whether the session is
 * encrypted, so "TLS was used" is part of the answer.
 *
 * Cases: CA file with name verification (UNIX socket and TCP), a CA
 * directory, ciphers only (encryption without verification), a server
 * certificate for another name (refused only with tls_verify_cert = yes), a
 * wrong CA, a client certificate for a user that requires one, and TLS
 * settings from an option file.
 *
 * Needs MariaDB (apt-get install mariadb-server), openssl (apt-get install
 * openssl) and Postfix with MySQL support (apt-get install postfix
 * postfix-mysql). Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts } from "../../src/tables/dict";
import { closeOurTables, createTestDatabase, ourLookup, PrivateMariadb, referenceLookup, requireReference, type TestDatabase, writeOld } from "../helpers/mariadb";

let dir: string;
let server: PrivateMariadb;
let tdb: TestDatabase;

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.error) throw new Error(`openssl is missing: apt-get install openssl (${r.error.message})`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A key and a certificate signed by CA `ca` for `cn` with the given subjectAltName. */
function issue(name: string, ca: string, cn: string, san: string): void {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
  writeOld(join(dir, `${name}.ext`), `subjectAltName = ${san}\n`);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-out", `${name}.crt`, "-extfile", `${name}.ext`]);
}

function makeCa(name: string): void {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`]);
}

beforeAll(async () => {
  requireReference();
  dir = mkdtempSync(join(tmpdir(), "pm-mysql-tls-"));
  chmodSync(dir, 0o755);
  makeCa("ca");
  makeCa("otherca");
  issue("server", "ca", "localhost", "DNS:localhost, IP:127.0.0.1");
  issue("client", "ca", "client", "DNS:client");
  for (const f of ["server.key", "server.crt", "ca.crt"]) chmodSync(join(dir, f), 0o644);
  // A CA directory in OpenSSL's hashed-name layout.
  const hash = spawnSync("openssl", ["x509", "-hash", "-noout", "-in", join(dir, "ca.crt")], { encoding: "utf8" }).stdout.trim();
  mkdirSync(join(dir, "cadir"));
  copyFileSync(join(dir, "ca.crt"), join(dir, "cadir", `${hash}.0`));
  server = await PrivateMariadb.create({
    extraArgs: [`--ssl-ca=${join(dir, "ca.crt")}`, `--ssl-cert=${join(dir, "server.crt")}`, `--ssl-key=${join(dir, "server.key")}`],
  });
  tdb = createTestDatabase("tls", server.socket, server.port);
  tdb.sql(`CREATE USER 'x509user'@'localhost' REQUIRE X509; CREATE USER 'x509user'@'127.0.0.1' REQUIRE X509; GRANT SELECT ON \`${tdb.db}\`.* TO 'x509user'@'localhost', 'x509user'@'127.0.0.1';`);
});

afterAll(async () => {
  await closeOurTables(true);
  await closeAllDicts();
  try {
    server?.sql("DROP USER IF EXISTS 'x509user'@'localhost', 'x509user'@'127.0.0.1'");
  } catch {
    // server gone
  }
  tdb?.drop();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const QUERY = "SELECT CONCAT(IF((SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher') <> '', 'tls', 'plain'), ' ', '%s')";

let n = 0;
function cf(hosts: string, tls: string, user = `user = ${tdb.user}\npassword = ${tdb.password}`): string {
  const path = join(dir, `t${++n}.cf`);
  writeOld(path, `hosts = ${hosts}\n${user}\ndbname = ${tdb.db}\nquery = ${QUERY}\nconnect_timeout = 5\n${tls}`);
  return `mysql:${path}`;
}

async function both(table: string): Promise<{ ref: [number | undefined, string]; ours: [number | undefined, string] }> {
  const r = await referenceLookup(table, "key");
  const o = await ourLookup(table, "key");
  return { ref: [r.status, r.value], ours: [o.status, o.value] };
}

describe("mysql TLS settings, C proxymap vs ours", () => {
  const cases: Array<[string, () => string, [number, string]]> = [
    ["CA file + verify, UNIX socket", () => cf(`unix:${server.socket}`, `tls_CAfile = ${join(dir, "ca.crt")}\ntls_verify_cert = yes\n`), [Status.OK, "tls key"]],
    ["CA file + verify, TCP to 127.0.0.1", () => cf(`inet:127.0.0.1:${server.port}`, `tls_CAfile = ${join(dir, "ca.crt")}\ntls_verify_cert = yes\n`), [Status.OK, "tls key"]],
    ["CA directory", () => cf(`inet:127.0.0.1:${server.port}`, `tls_CApath = ${join(dir, "cadir")}\n`), [Status.OK, "tls key"]],
    ["ciphers only: encrypted, not verified", () => cf(`unix:${server.socket}`, `tls_ciphers = HIGH\n`), [Status.OK, "tls key"]],
    ["no TLS setting: plain", () => cf(`unix:${server.socket}`, ""), [Status.OK, "plain key"]],
    ["wrong CA: refused", () => cf(`inet:127.0.0.1:${server.port}`, `tls_CAfile = ${join(dir, "otherca.crt")}\n`), [Status.RETRY, ""]],
    ["client certificate for a user that requires one", () => cf(`unix:${server.socket}`, `tls_CAfile = ${join(dir, "ca.crt")}\ntls_cert_file = ${join(dir, "client.crt")}\ntls_key_file = ${join(dir, "client.key")}\n`, "user = x509user"), [Status.OK, "tls key"]],
    ["no client certificate for that user: refused", () => cf(`unix:${server.socket}`, `tls_CAfile = ${join(dir, "ca.crt")}\n`, "user = x509user"), [Status.RETRY, ""]],
  ];
  for (const [name, make, expected] of cases) {
    test(name, async () => {
      const r = await both(make());
      expect(r.ref).toEqual(expected);
      expect(r.ours).toEqual(expected);
    }, 30_000);
  }

  test("a server certificate for another name: refused only with tls_verify_cert = yes", async () => {
    issue("wrongname", "ca", "db.other.example", "DNS:db.other.example");
    for (const f of ["wrongname.key", "wrongname.crt"]) chmodSync(join(dir, f), 0o644);
    const other = await PrivateMariadb.create({
      extraArgs: [`--ssl-ca=${join(dir, "ca.crt")}`, `--ssl-cert=${join(dir, "wrongname.crt")}`, `--ssl-key=${join(dir, "wrongname.key")}`],
    });
    const odb = createTestDatabase("tlsname", other.socket, other.port);
    try {
      const conn = `user = ${odb.user}\npassword = ${odb.password}`;
      const mk = (hosts: string, tls: string) => {
        const path = join(dir, `t${++n}.cf`);
        writeOld(path, `hosts = ${hosts}\n${conn}\ndbname = ${odb.db}\nquery = ${QUERY}\nconnect_timeout = 5\n${tls}`);
        return `mysql:${path}`;
      };
      const ca = `tls_CAfile = ${join(dir, "ca.crt")}\n`;
      for (const hosts of [`inet:127.0.0.1:${other.port}`, `unix:${other.socket}`]) {
        const verified = await both(mk(hosts, `${ca}tls_verify_cert = yes\n`));
        expect({ hosts, ...verified }).toEqual({ hosts, ref: [Status.RETRY, ""], ours: [Status.RETRY, ""] });
        const chainOnly = await both(mk(hosts, ca));
        expect({ hosts, ...chainOnly }).toEqual({ hosts, ref: [Status.OK, "tls key"], ours: [Status.OK, "tls key"] });
      }
    } finally {
      await closeOurTables();
      await closeAllDicts();
      odb.drop();
      await other.destroy();
    }
  }, 60_000);

  test("TLS settings from an option file", async () => {
    const opt = join(dir, "tls.cnf");
    writeOld(opt, `[client]\nssl-ca = ${join(dir, "ca.crt")}\nssl-verify-server-cert = 1\n`);
    const r = await both(cf(`inet:127.0.0.1:${server.port}`, `option_file = ${opt}\n`));
    expect(r.ref).toEqual([Status.OK, "tls key"]);
    expect(r.ours).toEqual(r.ref);
  }, 30_000);
});
