/**
 * A real postscreen(8) whose cache is `proxy:btree:$data_directory/
 * postscreen_cache`, the setup Postfix's documentation gives for sharing
 * the cache: postscreen opens it through proxywrite, walks it at start-up
 * (sequence first/next) deleting expired entries as it goes, looks up each
 * client and stores the result after the client passed the tests. Run with
 * the C proxymap (checks the test itself) and with ours; afterwards the
 * real postmap must read the file: expired entries gone, others kept, the
 * new client's entry present.
 *
 * Needs Postfix (root) and, for "ours", dist/proxymap (npm run build).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { smtpGreetAndQuit } from "../helpers/smtp";
import { PostfixInstance, type ProxymapImpl } from "../helpers/postfix-instance";

let inst: PostfixInstance | undefined;
afterEach(() => {
  inst?.stop();
  inst = undefined;
});

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

for (const impl of ["c", "ours"] as ProxymapImpl[]) {
  describe(`postscreen cache through proxy:btree (${impl} proxymap)`, () => {
    test("cleanup walk deletes expired entries, a passing client is stored", async () => {
      const port = freePort();
      inst = await PostfixInstance.start({
        impl,
        label: `bdbps-${impl}`,
        mainCf: {
          postscreen_cache_map: "proxy:btree:$data_directory/postscreen_cache",
          proxy_write_maps: "proxy:btree:$data_directory/postscreen_cache",
          postscreen_access_list: "",
          postscreen_greet_wait: "1s",
          postscreen_cache_cleanup_interval: "1s",
          postscreen_dnsbl_sites: "",
          smtpd_banner: "$myhostname ESMTP",
          local_recipient_maps: "",
        },
        masterCfExtra: [`127.0.0.1:${port} inet n - n - 1 postscreen`, "smtpd pass - - n - - smtpd"],
      });
      // Seed the cache with the real postmap: 30 expired entries, 10 current ones.
      const cache = `${inst.dataDir}/postscreen_cache`;
      const now = Math.floor(Date.now() / 1000);
      const lines: string[] = [];
      for (let i = 0; i < 30; i++) lines.push(`10.0.0.${i} 1;1;1;1;1`);
      for (let i = 0; i < 10; i++) lines.push(`10.0.1.${i} ${now + 86400};${now + 86400};${now + 86400};${now + 86400};${now + 86400}`);
      await Bun.write(cache, lines.join("\n") + "\n");
      const pm = inst.run("postmap", [`btree:${cache}`]);
      expect(pm.code).toBe(0);
      Bun.spawnSync(["chown", "postfix", `${cache}.db`]);

      const mark = inst.logMark();
      const banner = await smtpGreetAndQuit(port);
      expect(banner).toContain("220 ");
      await inst.waitForLog(/full cleanup: retained=\d+ dropped=\d+ entries/, 15000, mark);
      const log = inst.logSince(mark);
      // The passing client's entry is written while the walk runs: whether the
      // walk counts it depends on where its key lands in the btree relative to
      // the cursor at that moment (C and ours alike), so 10 or 11 are retained.
      expect(log).toMatch(/cache proxy:btree:\S+postscreen_cache full cleanup: retained=1[01] dropped=30 entries/);
      expect(log).not.toMatch(/warning|fatal|panic/);

      // proxywrite holds the cache with postscreen's OPEN_LOCK (flock exclusive,
      // as the reference does), so postmap -q reads a copy taken between updates.
      const query = (key: string): number => {
        const copy = `${inst!.base}/copy`;
        Bun.spawnSync(["cp", `${cache}.db`, `${copy}.db`]);
        const r = Bun.spawnSync(["postmap", "-q", key, `btree:${copy}`], { timeout: 10000 });
        return r.exitCode ?? -1;
      };
      for (let i = 0; i < 30; i++) expect(query(`10.0.0.${i}`)).toBe(1);
      for (let i = 0; i < 10; i++) expect(query(`10.0.1.${i}`)).toBe(0);
      // The client that just passed: stored through proxywrite, on disk at once.
      const deadline = Date.now() + 10000;
      while (query("127.0.0.1") !== 0 && Date.now() < deadline) await Bun.sleep(100);
      expect(query("127.0.0.1")).toBe(0);
      expect(inst.logSince(mark)).toMatch(/PASS NEW \[127\.0\.0\.1\]/);
    }, 60000);
  });
}
