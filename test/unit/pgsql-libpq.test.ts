/**
 * pgsql tables against libpq itself (the installed libpq.so.5 that Debian's
 * postfix-pgsql links, called through bun:ffi, test/helpers/libpq.ts), on
 * the machine's PostgreSQL:
 *  - quoting: escapeString() against PQescapeStringConn() for every byte,
 *    pairs, UTF-8 sequences valid, invalid and cut short, quotes and
 *    backslashes, in LATIN1 and UTF8, with standard_conforming_strings on
 *    and off: the same text, or the same error message;
 *  - statement errors: the text we rebuild from the server's fields against
 *    PQresultErrorMessage() for the same failing statements (cursor lines
 *    with tabs, long and multi-line queries, 8-bit bytes, DETAIL, HINT,
 *    QUERY, CONTEXT), in both client encodings;
 *  - connection failures: our attempt's text against PQerrorMessage() after
 *    PQconnectdb() for a missing socket, a socket nobody listens on, a
 *    refused port, localhost (two addresses), a wrong password, a missing
 *    database, an unknown host name, bad URIs;
 *  - TLS: a private server with ssl=on (a self-signed certificate made with
 *    openssl) that refuses sessions without TLS: sslmode=prefer (libpq's
 *    default) uses TLS, and a wrong password is refused twice (over TLS,
 *    then without), in libpq's words.
 *
 * Needs PostgreSQL (apt-get install postgresql) and libpq5. Runs as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { escapeString, QuoteError, type ClientEncoding } from "../../src/tables/pgsql/encoding";
import { closeConnection, openConnection, runStatement, type PgConn } from "../../src/tables/pgsql/connection";
import { parseHost } from "../../src/tables/pgsql/hosts";
import { StatementFailure } from "../../src/tables/dbCommon/hostPool";
import { LibpqConn } from "../helpers/libpq";
import { createTestDatabase, PrivatePostgres, requirePostgres, type TestDatabase } from "../helpers/postgres";
import { requireCommand } from "../helpers/require";

let db: TestDatabase;
let dir: string;
const show = (s: string) => JSON.stringify(s).replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
const u8 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

function conninfo(extra = ""): string {
  const q = (v: string) => `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  return `host=127.0.0.1 port=${db.port} user=${q(db.user)} password=${q(db.password)} dbname=${q(db.db)} ${extra}`;
}

function libpq(encoding: ClientEncoding, extra = ""): LibpqConn {
  const c = LibpqConn.connect(conninfo(extra));
  if (!(c instanceof LibpqConn)) throw new Error(`libpq cannot connect: ${c.error}`);
  expect(c.setClientEncoding(encoding)).toBe(0);
  return c;
}

beforeAll(async () => {
  await requirePostgres();
  db = createTestDatabase("libpq");
  db.sql(
    u8(
      "CREATE TABLE t (k text PRIMARY KEY, v text);\n" +
        "INSERT INTO t VALUES ('a', 'A');\n" +
        "CREATE FUNCTION fail(x text) RETURNS text LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'bad %', x USING DETAIL = 'some detail', HINT = 'a hint'; END$$;\n" +
        "CREATE FUNCTION badq() RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN (SELECT nosuch FROM t); END$$;\n",
    ),
  );
  dir = mkdtempSync(join(tmpdir(), "pm-pgsql-libpq-"));
});

afterAll(() => {
  db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("quoting: escapeString() = PQescapeStringConn()", () => {
  const inputs: string[] = [];
  for (let b = 1; b < 256; b++) inputs.push(String.fromCharCode(b), `x${String.fromCharCode(b)}y`);
  for (const hi of [0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xc0, 0xc1, 0x80, 0xbf])
    for (const lo of [0x27, 0x5c, 0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc0]) inputs.push(String.fromCharCode(hi, lo), String.fromCharCode(hi, lo, 0x27), String.fromCharCode(hi, 0x80, lo));
  inputs.push(u8("café"), u8("€ and ' and \\"), u8("😀'"), "o'hara", "\\", "x' OR '1'='1", "''\\\\''", "\xe2\x82", "\xf0\x9f\x98", "a\0b'c", "");

  for (const encoding of ["LATIN1", "UTF8"] as const) {
    for (const std of [true, false]) {
      test(`${encoding}, standard_conforming_strings ${std ? "on" : "off"}: ${inputs.length} strings`, () => {
        const c = libpq(encoding, std ? "" : "options='-c standard_conforming_strings=off'");
        try {
          const bad: string[] = [];
          for (const s of inputs) {
            const want = c.escape(s.includes("\0") ? s.slice(0, s.indexOf("\0")) : s);
            let got: { text: string } | { error: string };
            try {
              got = { text: escapeString(s, encoding, std) };
            } catch (e) {
              if (!(e instanceof QuoteError)) throw e;
              got = { error: e.message };
            }
            if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${show(s)}: libpq ${show(JSON.stringify(want))}, ours ${show(JSON.stringify(got))}`);
          }
          expect(bad).toEqual([]);
        } finally {
          c.close();
        }
      });
    }
  }
});

describe("statement errors: our text = PQresultErrorMessage()", () => {
  const statements = [
    "SELECT nosuch FROM t WHERE k='x'",
    "SELEC 1",
    "SELECT 1 FROM t WHERE\tk =\t'a' AND nosuch",
    "SELECT v\nFROM t\r\nWHERE k = 'a'\rAND nosuch = 1",
    `SELECT v FROM t WHERE k = '${"x".repeat(100)}' AND nosuch = 1 AND '${"y".repeat(80)}' = 'b'`,
    `SELECT v FROM t WHERE ${"k = 'abc' OR ".repeat(12)} nosuch = 1`,
    `SELECT nosuch FROM t WHERE k = '${"z".repeat(120)}'`,
    "SELECT 1/0",
    "SELECT * FROM nosuchtable",
    "SELECT fail('it')",
    "SELECT badq()",
    "SELECT v FROM t WHERE k = 1",
    "SELECT 'abc'::int",
    "SELECT v FROM t WHERE k = '\xe9t\xe9' AND nosuch",
    "SELECT 1; SELECT nosuch",
    "SELECT 'unterminated",
  ];
  for (const encoding of ["LATIN1", "UTF8"] as const) {
    test(`${encoding}: ${statements.length} failing statements`, async () => {
      const c = libpq(encoding);
      const ours = await openConnection(parseHost(`inet:127.0.0.1:${db.port}`, { user: db.user, password: db.password, dbname: db.db }, false), { encoding, connectTimeout: 10 }, () => {});
      try {
        const bad: string[] = [];
        for (const raw of statements) {
          // UTF8 sessions get the 8-bit statement as UTF-8.
          const sql = encoding === "UTF8" ? u8(Buffer.from(raw, "latin1").toString("latin1")) : raw;
          const want = c.exec(sql);
          let got: string;
          try {
            await runStatement(ours, sql, 10_000);
            got = "(no error)";
          } catch (e) {
            if (!(e instanceof StatementFailure)) throw e;
            got = e.message;
          }
          const w = "error" in want ? want.error : "(no error)";
          if (got !== w) bad.push(`${show(sql)}:\n  libpq ${show(w)}\n  ours  ${show(got)}`);
        }
        expect(bad.join("\n")).toBe("");
      } finally {
        c.close();
        closeConnection(ours);
      }
    }, 30_000);
  }
});

describe("connection failures: our text = PQerrorMessage()", () => {
  let deadSocket = "";

  beforeAll(async () => {
    // A socket file with nobody behind it: a child listens and is killed (the file stays).
    // (Not a listener in this process: libpq's synchronous connect would wait on our own event loop.)
    deadSocket = join(dir, "dead");
    mkdirSync(deadSocket);
    const path = join(deadSocket, ".s.PGSQL.5432");
    const child = Bun.spawn([process.execPath, "-e", `require("net").createServer().listen(${JSON.stringify(path)}); setInterval(() => {}, 1000)`]);
    while (!existsSync(path)) await Bun.sleep(10);
    child.kill("SIGKILL");
    await child.exited;
  });

  async function ours(entry: string, creds: { user: string; password: string; dbname: string }): Promise<string> {
    try {
      const c: PgConn = await openConnection(parseHost(entry, creds, false), { encoding: "LATIN1", connectTimeout: 10 }, () => {});
      closeConnection(c);
      return "(connected)";
    } catch (e) {
      return (e as Error).message;
    }
  }

  function theirs(info: string): string {
    const c = LibpqConn.connect(info);
    if (c instanceof LibpqConn) {
      c.close();
      return "(connected)";
    }
    return c.error;
  }

  test("sockets, ports, passwords, databases, names, URIs", async () => {
    const good = { user: db.user, password: db.password, dbname: db.db };
    const q = (v: string) => `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
    const kv = (host: string, port: number, c = good) => `host=${host} port=${port} user=${q(c.user)} password=${q(c.password)} dbname=${q(c.dbname)}`;
    const cases: Array<[string, string, typeof good]> = [
      [`unix:${join(dir, "nosuchdir")}`, kv(join(dir, "nosuchdir"), 5432), good],
      [`unix:${deadSocket}`, kv(deadSocket, 5432), good],
      ["inet:127.0.0.1:1", kv("127.0.0.1", 1), good],
      ["localhost:1", kv("localhost", 1), good],
      [`inet:127.0.0.1:${db.port}`, kv("127.0.0.1", db.port, { ...good, password: "wrong" }), { ...good, password: "wrong" }],
      [`inet:127.0.0.1:${db.port}`, kv("127.0.0.1", db.port, { ...good, dbname: "nosuchdb_pm" }), { ...good, dbname: "nosuchdb_pm" }],
      [`inet:127.0.0.1:${db.port}`, kv("127.0.0.1", db.port, { ...good, user: "nosuchuser_pm" }), { ...good, user: "nosuchuser_pm" }],
      ["nosuchhost.invalid:5432", kv("nosuchhost.invalid", 5432), good],
      ["127.0.0.1:12x", "host=127.0.0.1 port=12x", good],
      ["127.0.0.1:0", "host=127.0.0.1 port=0", good],
      ["127.0.0.1:70000", "host=127.0.0.1 port=70000", good],
      [`inet:127.0.0.1:${db.port}`, kv("127.0.0.1", db.port), good],
    ];
    const uris = [
      `postgresql://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@127.0.0.1:${db.port}/${db.db}`,
      `postgresql://${encodeURIComponent(db.user)}:wrong@127.0.0.1:${db.port}/${db.db}`,
      `postgresql://127.0.0.1:1,127.0.0.1:${db.port}/${db.db}?user=${encodeURIComponent(db.user)}&password=${encodeURIComponent(db.password)}`,
      `postgresql://127.0.0.1:1/x?nosuchparam=1`,
      `postgresql://127.0.0.1:1/x?sslmode`,
      `postgresql://127.0.0.1:1/x?a=b=c`,
      `postgresql://127.0.0.1:%zz/x`,
      `postgresql://[::1/x`,
      `postgresql://127.0.0.1:1/x?sslmode=bogus`,
      `postgresql:nothing`,
      `postgresql://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3/x?port=1,2`,
    ];
    const bad: string[] = [];
    for (const [entry, info, creds] of cases) {
      const [o, t] = [await ours(entry, creds), theirs(info)];
      if (o !== t) bad.push(`${entry}:\n  libpq ${show(t)}\n  ours  ${show(o)}`);
    }
    for (const uri of uris) {
      const [o, t] = [await ours(uri, { user: "", password: "", dbname: "" }), theirs(uri)];
      if (o !== t) bad.push(`${uri}:\n  libpq ${show(t)}\n  ours  ${show(o)}`);
    }
    expect(bad.join("\n")).toBe("");
  }, 60_000);
});

describe("TLS: sslmode=prefer as libpq uses it", () => {
  let server: PrivatePostgres | undefined;
  let tdb: TestDatabase | undefined;
  // A loopback address of its own: the machine's cluster has 127.0.0.1:5432.
  const addr = `127.0.${50 + (process.pid % 150)}.${1 + (process.pid % 250)}`;

  beforeAll(async () => {
    requireCommand("openssl", "apt-get install openssl");
    const certDir = join(dir, "tls");
    mkdirSync(certDir);
    const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(certDir, "server.key"), "-out", join(certDir, "server.crt"), "-days", "2", "-subj", "/CN=localhost"]);
    if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
    const { chownSync, chmodSync, readFileSync } = await import("node:fs");
    const pgUid = Number(readFileSync("/etc/passwd", "latin1").split("\n").find((l) => l.startsWith("postgres:"))!.split(":")[2]);
    for (const f of ["server.key", "server.crt"]) chownSync(join(certDir, f), pgUid, 0);
    chmodSync(join(certDir, "server.key"), 0o600);
    chmodSync(dir, 0o755);
    chmodSync(certDir, 0o755);
    server = await PrivatePostgres.create({
      settings: ["ssl=on", `ssl_cert_file=${join(certDir, "server.crt")}`, `ssl_key_file=${join(certDir, "server.key")}`, `listen_addresses=${addr}`],
      hba: ["hostssl all all 127.0.0.0/8 scram-sha-256", "hostnossl all all 127.0.0.0/8 reject"],
    });
    tdb = createTestDatabase("tls", { server });
  }, 60_000);

  afterAll(async () => {
    tdb?.drop();
    await server?.destroy();
  });

  test("a session over TLS; a wrong password refused over TLS and then without, as libpq tells it", async () => {
    const q = (v: string) => `'${v.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
    for (const password of [tdb!.password, "wrong"]) {
      const info = `host=${addr} port=5432 user=${q(tdb!.user)} password=${q(password)} dbname=${q(tdb!.db)}`;
      const c = LibpqConn.connect(info);
      const theirs = c instanceof LibpqConn ? "(connected)" : c.error;
      if (c instanceof LibpqConn) c.close();
      let ours: string;
      try {
        const conn = await openConnection(parseHost(`inet:${addr}:5432`, { user: tdb!.user, password, dbname: tdb!.db }, false), { encoding: "LATIN1", connectTimeout: 10 }, () => {});
        const r = await runStatement(conn, "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()", 5000);
        ours = `(connected${r.rows[0][0]?.toString() === "t" ? "" : " without TLS"})`;
        closeConnection(conn);
      } catch (e) {
        ours = (e as Error).message;
      }
      expect(ours).toBe(theirs);
    }
  }, 30_000);
});
