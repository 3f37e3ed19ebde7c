/**
 * limits.test.ts - memory and connection bounds of dist/proxymap under a
 * real Postfix master (issue 12, "Memory"):
 *  - 1,000 lookups of distinct ~1 MB keys through `/^(.*)$/ $1` keep the
 *    serving process under 400 MB resident during the run, and it is back
 *    under 100 MB within a minute after the client left (the OK-reply cache
 *    is bounded by bytes; the idle collector gives the garbage back). The
 *    table is pcre: the same echo through regexp costs glibc's regexec about
 *    0.3 s per megabyte, 5 minutes for the run; bench/memory.ts runs the
 *    regexp version (and this one) for a measurement;
 *  - proxymap_client_limit: with a limit of 2 and 7 clients connected at
 *    once, every client is greeted and answered, and master has started
 *    more processes (each full process reports itself taken).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { WireClient } from "../helpers/wire";

setDefaultTimeout(180_000);

const MB = 1024 * 1024;
let inst: PostfixInstance;
let dir = "";
let echo = "";

beforeAll(async () => {
  requirePostfix();
  requireOurBinary();
  dir = mkdtempSync(join(tmpdir(), "pfx-limits-"));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "echo.pcre"), "/^(.*)$/ $1\n", { mode: 0o644 });
  echo = `pcre:${dir}/echo.pcre`;
  inst = await PostfixInstance.start({
    impl: "ours",
    label: "limits",
    mainCf: { proxy_read_maps: `proxy:${echo}` },
    proxymapArgs: ["-o", "proxymap_client_limit=2"],
  });
});

afterAll(() => {
  inst?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("e2e limits under master", () => {
  test("1,000 lookups of distinct 1 MB keys: RSS under 400 MB during the run, under 100 MB within a minute after", async () => {
    const c = await WireClient.connect(inst.socket("proxymap"));
    const [pid] = await inst.waitServicePids("proxymap");
    let peak = 0;
    const sample = () => (peak = Math.max(peak, PostfixInstance.rssKiB(pid) / 1024));
    const timer = setInterval(sample, 100);
    const filler = "x".repeat(MB);
    try {
      for (let i = 0; i < 1000; i++) {
        const key = `${i}:${filler}`;
        const r = await c.lookup(echo, key);
        if (r.status !== "0" || r.value.length !== key.length || !r.value.startsWith(`${i}:`))
          throw new Error(`lookup ${i}: status ${r.status}, ${r.value.length} bytes`);
      }
    } finally {
      clearInterval(timer);
    }
    sample();
    c.close();
    console.log(`peak RSS during the run: ${peak.toFixed(1)} MB`);
    expect(peak).toBeLessThan(400);
    const t0 = Date.now();
    let rss = PostfixInstance.rssKiB(pid) / 1024;
    while (rss >= 100 && Date.now() - t0 < 60_000) {
      await Bun.sleep(500);
      rss = PostfixInstance.rssKiB(pid) / 1024;
    }
    console.log(`RSS ${((Date.now() - t0) / 1000).toFixed(1)} s after the client left: ${rss.toFixed(1)} MB`);
    expect(PostfixInstance.isAlive(pid)).toBe(true);
    expect(rss).toBeLessThan(100);
  });

  test("proxymap_client_limit = 2: seven clients at once are all served, by more processes", async () => {
    const clients = await Promise.all(Array.from({ length: 7 }, () => WireClient.connect(inst.socket("proxymap"))));
    const answers = await Promise.all(clients.map((c, i) => c.lookup(echo, `k${i}`)));
    expect(answers).toEqual(Array.from({ length: 7 }, (_, i) => ({ status: "0", value: `k${i}` })));
    // Seven clients, at most two per process (a few more when accepted in one burst).
    const pids = inst.servicePids("proxymap");
    expect(pids.length).toBeGreaterThanOrEqual(3);
    for (const c of clients) c.close();
  });
});
