/**
 * ldap-tls.test.ts - LDAP tables over TLS and with SASL binds, compared with
 * the installed C proxymap (Debian's libldap with GnuTLS and Cyrus SASL),
 * one lookup per configuration: status, value and warnings must be equal.
 *
 * TLS (a test CA from test/helpers/slapd.ts): ldaps and StartTLS with the
 * right CA and tls_require_cert = yes; the wrong CA with and without
 * tls_require_cert; a CA file that does not exist; a CA directory that does
 * not exist (ignored); tls_random_file (refused by libldap); a GnuTLS
 * priority string and a cipher setting nobody understands; a server that
 * is not there.
 * SASL: EXTERNAL and PLAIN over ldapi (with an authorization id too), PLAIN
 * and EXTERNAL over plain TCP (refused: -6), PLAIN after StartTLS, a wrong
 * password. Deliberate differences, checked as such: a mechanism ours does
 * not implement (DIGEST-MD5, or the server's choice when sasl_mechs is
 * empty) is CONFIG with a log line saying so.
 *
 * Needs slapd and ldap-utils (apt-get install slapd ldap-utils), Postfix
 * with LDAP support (apt-get install postfix postfix-ldap), and
 * libsasl2-modules for the reference's PLAIN.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts } from "../../src/tables/dict";
import { writeCoolFile } from "../helpers/files";
import { BASE, SERVICE_PW } from "../helpers/ldap-data";
import { closeOurTables, ourLookup, referenceLookup, type LookupReply } from "../helpers/mariadb";
import { requireFile } from "../helpers/require";
import { freePort, PrivateSlapd } from "../helpers/slapd";

let slapd: PrivateSlapd;
let dir = "";
let n = 0;

function cf(lines: string[]): string {
  const path = join(dir, `t${++n}.cf`);
  writeCoolFile(path, [`search_base = ${BASE}`, "query_filter = (mailLocalAddress=%s)", "result_attribute = mail", ...lines].join("\n") + "\n");
  return `ldap:${path}`;
}

function problems(r: LookupReply): string[] {
  return r.log
    .filter((l) => /^(warning|error|fatal): /.test(l) && !/ is unavailable\. /.test(l))
    .map((l) => l.replaceAll(dir, "DIR").replaceAll(slapd.dir, "SLAPD").replaceAll(encodeURIComponent(slapd.dir), "SLAPD").replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:PORT"));
}

async function both(table: string, key = "priv@example.com"): Promise<{ c: LookupReply; ours: LookupReply }> {
  await closeAllDicts();
  const c = await referenceLookup(table, key);
  const ours = await ourLookup(table, key);
  return { c, ours };
}

async function same(table: string, key?: string): Promise<LookupReply> {
  const { c, ours } = await both(table, key);
  expect({ status: ours.status, value: ours.value, log: problems(ours) }).toEqual({ status: c.status, value: c.value, log: problems(c) });
  return ours;
}

beforeAll(async () => {
  requireFile("/usr/lib/postfix/postfix-ldap.so", "apt-get install postfix-ldap");
  requireFile("/usr/lib/x86_64-linux-gnu/sasl2/libplain.so", "apt-get install libsasl2-modules");
  slapd = await PrivateSlapd.start({ label: "tls" });
  dir = mkdtempSync(join(tmpdir(), "pm-ldap-tls-"));
  chmodSync(dir, 0o755);
}, 60_000);

afterAll(async () => {
  await closeAllDicts();
  await closeOurTables(true);
  await slapd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("LDAP over TLS, as the reference", () => {
  const ldaps = () => `server_host = ldaps://127.0.0.1:${slapd.sslPort}`;
  const tcp = () => `server_host = ldap://127.0.0.1:${slapd.port}`;

  test("ldaps with the test CA and tls_require_cert = yes", async () => {
    expect((await same(cf([ldaps(), `tls_ca_cert_file = ${slapd.caFile}`, "tls_require_cert = yes"]), "alice@example.com")).value).toBe("alice@example.com");
  });
  test("StartTLS with the test CA and tls_require_cert = yes", async () => {
    expect((await same(cf([tcp(), "start_tls = yes", `tls_ca_cert_file = ${slapd.caFile}`, "tls_require_cert = yes"]), "alice@example.com")).value).toBe("alice@example.com");
  });
  test("ldaps with the wrong CA: refused with tls_require_cert = yes, used without", async () => {
    await same(cf([ldaps(), `tls_ca_cert_file = ${slapd.otherCaFile}`, "tls_require_cert = yes"]));
    expect((await same(cf([ldaps(), `tls_ca_cert_file = ${slapd.otherCaFile}`]), "alice@example.com")).value).toBe("alice@example.com");
  });
  test("StartTLS with the wrong CA and tls_require_cert = yes: 'Unable to set STARTTLS'", async () => {
    const r = await same(cf([tcp(), "start_tls = yes", `tls_ca_cert_file = ${slapd.otherCaFile}`, "tls_require_cert = yes"]));
    expect(r.status).toBe(Status.RETRY);
  });
  test("a CA file that does not exist; a CA directory that does not exist", async () => {
    await same(cf([ldaps(), "tls_ca_cert_file = /nonexistent/ca.pem"]));
    await same(cf([tcp(), "start_tls = yes", "tls_ca_cert_dir = /nonexistent"]), "alice@example.com");
  });
  test("tls_random_file: refused on a connection handle", async () => {
    await same(cf([tcp(), "start_tls = yes", "tls_random_file = /dev/urandom"]));
  });
  test("tls_cipher_suite: a GnuTLS priority string works, nonsense does not", async () => {
    await same(cf([tcp(), "start_tls = yes", "tls_cipher_suite = NORMAL"]), "alice@example.com");
    await same(cf([tcp(), "start_tls = yes", "tls_cipher_suite = bogus:cipher"]));
  });
  test("StartTLS and ldaps to a port nobody listens on", async () => {
    const dead = await freePort();
    await same(cf([`server_host = ldap://127.0.0.1:${dead}`, "start_tls = yes"]));
    await same(cf([`server_host = ldaps://127.0.0.1:${dead}`]));
  });
});

describe("SASL binds, as the reference", () => {
  const ldapi = () => `server_host = ${slapd.ldapiUrl}`;
  const plain = ["bind = sasl", "sasl_mechs = PLAIN", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`];

  test("EXTERNAL over ldapi (with and without an authorization id)", async () => {
    await same(cf([ldapi(), "bind = sasl", "sasl_mechs = EXTERNAL"]), "alice@example.com");
    await same(cf([ldapi(), "bind = sasl", "sasl_mechs = EXTERNAL", "sasl_authz_id = dn:cn=postfix,ou=services,dc=example,dc=com"]));
  });
  test("PLAIN over ldapi sees what the service user may see; with its own authorization id; with a realm", async () => {
    expect((await same(cf([ldapi(), ...plain]))).value).toBe("priv@example.com");
    await same(cf([ldapi(), ...plain, "sasl_authz_id = u:postfix"]));
    await same(cf([ldapi(), ...plain, "sasl_realm = example.com"]));
  });
  test("PLAIN after StartTLS; a wrong password", async () => {
    expect((await same(cf([`server_host = ldap://127.0.0.1:${slapd.port}`, "start_tls = yes", `tls_ca_cert_file = ${slapd.caFile}`, ...plain]))).value).toBe("priv@example.com");
    await same(cf([`server_host = ldap://127.0.0.1:${slapd.port}`, "start_tls = yes", `tls_ca_cert_file = ${slapd.caFile}`, "bind = sasl", "sasl_mechs = PLAIN", "bind_dn = postfix", "bind_pw = wrong"]));
  });
  test("PLAIN or EXTERNAL over plain TCP: refused (-6) by both", async () => {
    await same(cf([`server_host = 127.0.0.1:${slapd.port}`, ...plain]));
    await same(cf([`server_host = 127.0.0.1:${slapd.port}`, "bind = sasl", "sasl_mechs = EXTERNAL PLAIN", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`]));
  });
  test("the list's preference: EXTERNAL before PLAIN on ldapi", async () => {
    await same(cf([ldapi(), "bind = sasl", "sasl_mechs = PLAIN EXTERNAL", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`]));
  });

  test("deliberate difference: a mechanism ours does not implement is CONFIG with a clear log line", async () => {
    const { c, ours } = await both(cf([`server_host = 127.0.0.1:${slapd.port}`, "bind = sasl", "sasl_mechs = DIGEST-MD5", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`]));
    expect(c.status).toBe(Status.OK); // Cyrus SASL does DIGEST-MD5
    expect(ours.status).toBe(Status.CONFIG);
    expect(ours.log.join("\n")).toContain("SASL mechanism DIGEST-MD5 is not supported by this proxymap (it does EXTERNAL and PLAIN)");
    const e = await both(cf([`server_host = 127.0.0.1:${slapd.port}`, "bind = sasl", "bind_dn = postfix", `bind_pw = ${SERVICE_PW}`]));
    expect(e.c.status).toBe(Status.OK); // the server's list, and Cyrus picks one ours lacks
    expect(e.ours.status).toBe(Status.CONFIG);
    expect(e.ours.log.join("\n")).toContain("which this proxymap does not implement");
  });
});
