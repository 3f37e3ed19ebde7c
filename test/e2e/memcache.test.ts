/**
 * memcache.test.ts - real Postfix clients use memcache tables served by a
 * private master running dist/proxymap (and, for comparison, one running
 * the C proxymap), with private memcached servers (test/helpers/memcached.ts):
 *
 *  - `postmap -q KEY proxy:memcache:FILE` and `postmap -q - ...`: memcached
 *    hits over TCP and over a UNIX socket, backup hits written back to
 *    memcached, misses; output and exit codes equal to the C proxymap's,
 *    memcached's items afterwards too;
 *  - postscreen(8) with `postscreen_cache_map = proxy:memcache:FILE`
 *    and a btree backup: at start-up it walks the cache through the
 *    backup and deletes expired entries (in memcached and in the backup),
 *    looks the client up, and stores it after it passed (memcached with
 *    the table's ttl, and the backup). postscreen's open request carries
 *    no DUP flag, so the backup refuses to replace its cleanup time stamp:
 *    ours warns and goes on; the C proxymap's proxywrite dies on it (fatal
 *    "duplicate entry"), which the last test shows.
 *
 * Needs Postfix (root), memcached, and dist/proxymap (npm run build).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync } from "node:fs";
import { writeCoolFile } from "../helpers/files";
import { freePort, Memcached } from "../helpers/memcached";
import { smtpGreetAndQuit } from "../helpers/smtp";
import { PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";

let tcp: Memcached;
let unix: Memcached;

beforeAll(async () => {
  [tcp, unix] = await Promise.all([Memcached.start(), Memcached.start({ unix: true })]);
});
afterAll(async () => {
  await Promise.all([tcp?.close(), unix?.close()]);
});

describe("postmap -q through proxy:memcache", () => {
  const KEYS = ["hit", "tcp-only", "in-backup", "missing", "UPPER", "two words"];

  async function queries(impl: ProxymapImpl): Promise<{ out: string; items: string }> {
    await Promise.all([tcp.flush(), unix.flush()]);
    await tcp.set("hit", "value from memcached");
    await tcp.set("tcp-only", "tcp value");
    await unix.set("hit", "value from the unix memcached");
    const inst = await PostfixInstance.start({
      impl,
      label: `mc-e2e-${impl}`,
      mainCf: { proxy_read_maps: "proxy:memcache:$config_directory/tcp.cf proxy:memcache:$config_directory/unix.cf" },
    });
    try {
      const backupSrc = writeCoolFile(inst.table("backup"), "in-backup\tvalue from the backup\nupper\tfolded by postmap\n");
      expect(inst.run("postmap", [`btree:${backupSrc}`]).code).toBe(0);
      const tcpCf = `${inst.configDir}/tcp.cf`;
      const unixCf = `${inst.configDir}/unix.cf`;
      writeCoolFile(tcpCf, `memcache = ${tcp.server}\nbackup = btree:${backupSrc}\nttl = 120\n`);
      writeCoolFile(unixCf, `memcache = ${unix.server}\n`);
      const lines: string[] = [];
      for (const key of KEYS) {
        for (const cf of [tcpCf, unixCf]) {
          const r = await inst.runAsync("postmap", ["-q", key, `proxy:memcache:${cf}`]);
          lines.push(`${key} ${cf.endsWith("tcp.cf") ? "tcp" : "unix"}: ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`);
        }
      }
      const many = await inst.runAsync("postmap", ["-q", "-", `proxy:memcache:${tcpCf}`], KEYS.join("\n") + "\n");
      lines.push(`postmap -q -: ${many.code}\n${many.stdout}`);
      const items = JSON.stringify([...(await tcp.items(KEYS.map((k) => k.toLowerCase())))]) + JSON.stringify([...(await unix.items(KEYS))]);
      return { out: lines.join("\n").replaceAll(inst.base, "BASE"), items };
    } finally {
      inst.stop();
    }
  }

  test("hits, backup hits written back, misses: as with the C proxymap", async () => {
    const c = await queries("c");
    const ours = await queries("ours");
    console.log(ours.out);
    expect(ours.out).toBe(c.out);
    expect(ours.items).toBe(c.items);
    expect(ours.out).toContain("hit tcp: 0 value from memcached");
    expect(ours.out).toContain("hit unix: 0 value from the unix memcached");
    expect(ours.out).toContain("in-backup tcp: 0 value from the backup");
    expect(ours.out).toContain("missing tcp: 1");
    // The backup hit is in memcached now, with the table's ttl.
    expect(ours.items).toContain('["in-backup",{"flags":0,"value":"value from the backup","ttlMinutes":2}]');
  }, 60_000);
});

/** A private instance whose postscreen's cache is proxy:memcache with a btree backup, seeded; its SMTP port. */
async function postscreenInstance(impl: ProxymapImpl): Promise<{ inst: PostfixInstance; port: number; cache: string }> {
  await tcp.flush();
  const port = await freePort();
  const inst = await PostfixInstance.start({
    impl,
    label: `mcps-${impl}`,
    mainCf: {
      postscreen_cache_map: "proxy:memcache:$config_directory/postscreen_cache.cf",
      proxy_write_maps: "proxy:memcache:$config_directory/postscreen_cache.cf",
      postscreen_access_list: "",
      postscreen_greet_wait: "1s",
      postscreen_cache_cleanup_interval: "1s",
      postscreen_dnsbl_sites: "",
      smtpd_banner: "$myhostname ESMTP",
      local_recipient_maps: "",
    },
    masterCfExtra: [`127.0.0.1:${port} inet n - n - 1 postscreen`, "smtpd pass - - n - - smtpd"],
  });
  const cache = `${inst.dataDir}/postscreen_cache`;
  writeCoolFile(`${inst.configDir}/postscreen_cache.cf`, `memcache = ${tcp.server}\nbackup = btree:${cache}\nttl = 900\nkey_format = ps:%s\n`);
  // Seed the backup with the real postmap (20 expired entries, 5 current ones) and memcached with the expired ones.
  const now = Math.floor(Date.now() / 1000);
  const fresh = `${now + 86400};${now + 86400};${now + 86400};${now + 86400};${now + 86400}`;
  const lines: string[] = [];
  for (let i = 0; i < 20; i++) lines.push(`10.0.0.${i} 1;1;1;1;1`);
  for (let i = 0; i < 5; i++) lines.push(`10.0.1.${i} ${fresh}`);
  await Bun.write(cache, lines.join("\n") + "\n");
  expect(inst.run("postmap", [`btree:${cache}`]).code).toBe(0);
  chownSync(`${cache}.db`, PostfixInstance.postfixUser().uid, -1);
  for (let i = 0; i < 20; i++) await tcp.set(`ps:10.0.0.${i}`, "1;1;1;1;1");
  return { inst, port, cache };
}

describe("postscreen cache through proxy:memcache with a btree backup", () => {
  test("ours: the start-up walk deletes expired entries in memcached and the backup, a passing client is stored in both", async () => {
    const { inst, port, cache } = await postscreenInstance("ours");
    try {
      const mark = inst.logMark();
      expect(await smtpGreetAndQuit(port)).toContain("220 ");
      await inst.waitForLog(/full cleanup: retained=\d+ dropped=\d+ entries/, 15000, mark);
      await inst.waitForLog(/PASS NEW \[127\.0\.0\.1\]/, 15000, mark);
      await Bun.sleep(1500);
      const log = inst.logSince(mark);
      // 5 kept, or 6 when the passing client was stored while the walk was still going.
      expect(log).toMatch(/cache proxy:memcache:\S+postscreen_cache\.cf full cleanup: retained=[56] dropped=20 entries/);
      // postscreen's open request carries no DUP flag, so the backup (opened with it) keeps its old
      // _LAST_CACHE_CLEANUP_COMPLETED_ and warns; the reference dies there (next test).
      const problems = log.split("\n").filter((l) => /warning|fatal|panic/.test(l));
      expect(problems.every((l) => /proxymap\[\d+\]: warning: \S+postscreen_cache\.db: duplicate entry: "_LAST_CACHE_CLEANUP_COMPLETED_"/.test(l))).toBe(true);

      // proxywrite holds the btree with postscreen's lock: read a copy.
      const query = (key: string): number => {
        const copy = `${inst.base}/copy`;
        Bun.spawnSync(["cp", `${cache}.db`, `${copy}.db`]);
        return Bun.spawnSync(["postmap", "-q", key, `btree:${copy}`], { timeout: 10000 }).exitCode ?? -1;
      };
      for (let i = 0; i < 20; i++) expect(query(`10.0.0.${i}`)).toBe(1);
      for (let i = 0; i < 5; i++) expect(query(`10.0.1.${i}`)).toBe(0);
      expect((await tcp.items(Array.from({ length: 20 }, (_, i) => `ps:10.0.0.${i}`))).size).toBe(0);
      const deadline = Date.now() + 10000;
      while (query("127.0.0.1") !== 0 && Date.now() < deadline) await Bun.sleep(100);
      expect(query("127.0.0.1")).toBe(0);
      const stored = (await tcp.items(["ps:127.0.0.1"])).get("ps:127.0.0.1");
      expect(stored?.ttlMinutes).toBe(15);
      expect(stored?.value).toMatch(/^\d+;\d+;\d+;\d+;\d+$/);
      // Ours is still there for the next client.
      expect(await smtpGreetAndQuit(port)).toContain("220 ");
    } finally {
      inst.stop();
    }
  }, 60_000);

  test("the C proxymap: proxywrite dies on the same update (fatal duplicate entry), the deliberate difference", async () => {
    const { inst, port } = await postscreenInstance("c");
    try {
      const mark = inst.logMark();
      expect(await smtpGreetAndQuit(port)).toContain("220 ");
      const log = await inst.waitForLog(/proxymap\[\d+\]: fatal: \S+postscreen_cache\.db: duplicate entry: "_LAST_CACHE_CLEANUP_COMPLETED_"/, 15000, mark);
      expect(log).toMatch(/full cleanup: retained=5 dropped=20 entries/);
    } finally {
      inst.stop();
    }
  }, 60_000);
});
