/**
 * memory.ts - issue 12's memory check under master(8): N lookups of distinct
 * keys of about 1 MB through an echo table `/^(.*)$/ $1`, over C clients at
 * once; the serving process's resident memory is sampled every 100 ms during
 * the run and every second for a minute after the clients left.
 *
 *   bun bench/memory.ts [--type regexp|pcre] [--lookups 1000] [--clients 1] [--ours PATH] [--c]
 *
 * --c runs the C proxymap instead (the control: one process per client, each
 * with one reused buffer). The regexp type is the issue's case; glibc's regexec
 * takes about 0.3 s per megabyte there, so 1,000 lookups take minutes (pcre:
 * seconds). The end-to-end test test/e2e/limits.test.ts checks the pcre case.
 * Prints peak RSS during the run, then RSS at 1, 5, 10, 30 and 60 s after.
 * Needs root, Postfix, and dist/proxymap (npm run build).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../test/helpers/require";
import { WireClient } from "../test/helpers/wire";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const TYPE = arg("--type", "regexp");
const LOOKUPS = Number(arg("--lookups", "1000"));
const CLIENTS = Number(arg("--clients", "1"));
const OURS = arg("--ours", "");
const C = process.argv.includes("--c");

requirePostfix();
if (!C && !OURS) requireOurBinary();
const dir = mkdtempSync(join(tmpdir(), "bench-memory-"));
chmodSync(dir, 0o755);
writeFileSync(join(dir, `echo.${TYPE}`), "/^(.*)$/ $1\n", { mode: 0o644 });
const table = `${TYPE}:${dir}/echo.${TYPE}`;
const impl: ProxymapImpl = C ? "c" : OURS ? { path: OURS } : "ours";
const inst = await PostfixInstance.start({ impl, label: "bench-mem", mainCf: { proxy_read_maps: `proxy:${table}` } });
const mb = (pid: number) => PostfixInstance.rssKiB(pid) / 1024;
try {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => WireClient.connect(inst.socket("proxymap"))));
  const pids = () => inst.servicePids("proxymap");
  const total = () => pids().reduce((s, p) => s + mb(p), 0);
  console.log(`${C ? "C proxymap" : "ours"}: ${LOOKUPS} lookups of 1 MB keys through ${TYPE}, ${CLIENTS} client(s); start RSS ${total().toFixed(1)} MB`);
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, total())), 100);
  const filler = "x".repeat(1 << 20);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (next < LOOKUPS) {
        const i = next++;
        const key = `${i}:${filler}`;
        const r = await c.lookup(table, key);
        if (r.value.length !== key.length) throw new Error(`lookup ${i}: status ${r.status}`);
      }
    }),
  );
  clearInterval(timer);
  const watched = pids();
  console.log(`run: ${((performance.now() - t0) / 1000).toFixed(1)} s, peak RSS ${peak.toFixed(1)} MB (all proxymap processes)`);
  for (const c of clients) c.close();
  const t1 = Date.now();
  for (const at of [1, 5, 10, 30, 60]) {
    await Bun.sleep(Math.max(0, t1 + at * 1000 - Date.now()));
    console.log(`+${at}s: ${watched.reduce((s, p) => s + mb(p), 0).toFixed(1)} MB`);
  }
} finally {
  inst.stop();
  rmSync(dir, { recursive: true, force: true });
}
