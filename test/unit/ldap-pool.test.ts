/**
 * ldap-pool.test.ts - connection sharing and concurrency of LDAP tables,
 * through the dict layer against a private slapd with a bulk subtree of
 * 20,000 entries:
 *
 *  - tables with identical connection settings share one connection (the
 *    reference's dict_ldap_conn_find()), different bind settings do not, and
 *    the last table closed closes it;
 *  - many lookups are in flight on that one connection at once (LDAP message
 *    ids), all answered right;
 *  - a slow search (one that returns every bulk entry) delays only the
 *    lookups waiting on it: fast lookups made meanwhile on the same
 *    connection finish long before it;
 *  - one connection attempt serves every lookup waiting for it, and each of
 *    them logs the reference's line when it fails.
 *
 * Needs slapd and ldap-utils (apt-get install slapd ldap-utils).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks } from "../../src/log/msg";
import { Status } from "../../src/protocol/constants";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { shareCount } from "../../src/tables/ldap/session";
import { writeCoolFile } from "../helpers/files";
import { BASE, bulkLdif, mailDirectoryLdif, SERVICE_DN, SERVICE_PW } from "../helpers/ldap-data";
import { PrivateSlapd } from "../helpers/slapd";

const BULK = 20_000;
/** The slow search returns every bulk entry: more than slapd's default size limit (500). */
export const UNLIMITED = "limits anonymous size=unlimited time=unlimited\nlimits users size=unlimited time=unlimited";
let slapd: PrivateSlapd;
let dir = "";
const logged: string[] = [];

function table(name: string, body: string, port = slapd.port): string {
  const path = join(dir, `${name}.cf`);
  writeCoolFile(path, `server_host = 127.0.0.1:${port}\nsearch_base = ${BASE}\n${body}`);
  return `ldap:${path}`;
}

async function get(t: string, key: string): Promise<{ status: number; value: string }> {
  const d = await openDict(t, false, 0);
  return dictGet(d, key, 0);
}

beforeAll(async () => {
  slapd = await PrivateSlapd.start({ label: "pool", ldif: (s) => `${mailDirectoryLdif(s)}\n${bulkLdif(BULK)}`, databaseConf: UNLIMITED });
  dir = mkdtempSync(join(tmpdir(), "pm-ldap-pool-"));
  chmodSync(dir, 0o755);
  setLogSinks([{ write: (_s, line) => logged.push(line) }]);
}, 120_000);

afterAll(async () => {
  await closeAllDicts();
  setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
  await slapd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("LDAP connections shared and multiplexed", () => {
  test("identical connection settings share one connection; other bind settings get their own", async () => {
    await closeAllDicts();
    const before = shareCount();
    const a = table("share-a", "query_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n");
    const b = table("share-b", "query_filter = (uid=%u)\nresult_attribute = mailLocalAddress\nscope = sub\n");
    const c = table("share-c", `query_filter = (mailLocalAddress=%s)\nresult_attribute = mail\nbind_dn = ${SERVICE_DN}\nbind_pw = ${SERVICE_PW}\n`);
    expect((await get(a, "alice@example.com")).value).toBe("alice@example.com");
    expect((await get(b, "bob@example.com")).value).toBe("bob@example.com,Bob.Builder@Example.COM");
    expect(shareCount() - before).toBe(1);
    expect((await get(c, "priv@example.com")).value).toBe("priv@example.com");
    expect(shareCount() - before).toBe(2);
    await closeAllDicts();
    expect(shareCount()).toBe(0);
  });

  test("500 lookups at once on one connection: all answered right, many in flight", async () => {
    const t = table("many", "query_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n");
    expect((await get(t, "u1@bulk.example.com")).value).toBe("u1@bulk.example.com");
    const keys = Array.from({ length: 500 }, (_, i) => `u${(i * 37) % BULK}@bulk.example.com`);
    const t0 = Date.now();
    const results = await Promise.all(keys.map((k) => get(t, k)));
    const ms = Date.now() - t0;
    expect(results.map((r) => r.value)).toEqual(keys);
    console.log(`500 concurrent lookups on one connection: ${ms} ms`);
    expect(shareCount()).toBe(1);
  });

  test("a slow search delays only its own lookup: fast ones made meanwhile finish first", async () => {
    // One table for both kinds (one Share). The slow key matches every bulk entry (a scan, and a large reply).
    const t = table("mixed", "query_filter = (|(mailLocalAddress=%s)(description=*%s*))\nresult_attribute = mail\n");
    expect((await get(t, "u7@bulk.example.com")).value).toBe("u7@bulk.example.com");
    const t0 = performance.now();
    const slow = get(t, "some text").then((r) => ({ r, at: performance.now() - t0 }));
    await Bun.sleep(10);
    const fast = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const r = await get(t, `u${i * 101}@bulk.example.com`);
        expect(r.value).toBe(`u${i * 101}@bulk.example.com`);
        return performance.now() - t0;
      }),
    );
    const { r, at } = await slow;
    expect(r.status).toBe(Status.OK);
    expect(r.value.split(",").length).toBe(BULK);
    fast.sort((x, y) => x - y);
    console.log(`slow lookup (${BULK} values) done at ${at.toFixed(0)} ms; 20 fast lookups made at 10 ms: median done at ${fast[10].toFixed(0)} ms, last at ${fast[19].toFixed(0)} ms`);
    expect(fast[10]).toBeLessThan(at);
  });

  test("lookups waiting for one failed connection attempt: each logs the reference's line and answers RETRY", async () => {
    const { freePort } = await import("../helpers/slapd");
    const dead = await freePort();
    const t = table("dead", "query_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n", dead);
    logged.length = 0;
    const results = await Promise.all(Array.from({ length: 5 }, () => get(t, "alice@example.com")));
    expect(results.map((r) => r.status)).toEqual(Array(5).fill(Status.RETRY));
    const line = `warning: dict_ldap_connect: Unable to bind to server ldap://127.0.0.1:${dead} with dn empty or implicit: -1 (Can't contact LDAP server)`;
    expect(logged.filter((l) => l === line).length).toBe(5);
  });
});
