/**
 * measure-startup.ts - start-up time to the first reply, and RSS, of a
 * proxymap executable.
 *
 * Starts `BIN --listen SOCKET -o proxy_read_maps=proxy:static:x` with a
 * throw-away MAIL_CONFIG, connects as soon as the socket exists, sends one
 * lookup and times spawn -> reply; then reads the process's VmRSS (after the
 * reply, and after 2000 more lookups). Repeats N times and prints the median.
 *
 * Usage: bun scripts/measure-startup.ts [BIN] [N]   (default dist/proxymap, 10)
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(process.argv[2] ?? join(import.meta.dir, "..", "dist", "proxymap"));
const runs = Number(process.argv[3] ?? 10);
const dir = mkdtempSync(join(tmpdir(), "pm-start-"));
writeFileSync(join(dir, "main.cf"), `queue_directory = ${dir}\nproxy_read_maps = proxy:static:x\n`);
const past = new Date(Date.now() - 60_000);
utimesSync(join(dir, "main.cf"), past, past);
const REQ = Buffer.from("request\0lookup\0table\0static:x\0flags\x00524353\0key\0k\0\0", "latin1");

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m ? Number(m[1]) : 0;
}

async function once(i: number): Promise<[number, number, number]> {
  const sock = join(dir, `s${i}`);
  const t0 = performance.now();
  const p = Bun.spawn([bin, "--listen", sock, "--user", "root"], { env: { MAIL_CONFIG: dir }, stdout: "ignore", stderr: "ignore" });
  let exited = false;
  p.exited.then(() => (exited = true));
  while (!existsSync(sock)) {
    if (exited || performance.now() - t0 > 5000)
      throw new Error(`${bin} did not start (run it by hand; note that its file name is its default service name)`);
    await Bun.sleep(0.2);
  }
  let got = "";
  let wake = () => {};
  const handler = { data(_s: unknown, d: Uint8Array) { got += Buffer.from(d).toString("latin1"); wake(); } };
  let c: Awaited<ReturnType<typeof Bun.connect>>;
  for (;;) {
    try {
      c = await Bun.connect({ unix: sock, socket: handler });
      break;
    } catch {
      await Bun.sleep(0.2); // bound but not yet listening
    }
  }
  const replies = (n: number) => got.split("status\0").length - 1 >= n;
  c.write(REQ);
  while (!replies(1)) await new Promise<void>((r) => (wake = r));
  const ms = performance.now() - t0;
  const r1 = rss(p.pid);
  for (let k = 0; k < 2000; k++) {
    c.write(REQ);
    while (!replies(k + 2)) await new Promise<void>((r) => (wake = r));
  }
  const r2 = rss(p.pid);
  c.end();
  p.kill();
  await p.exited;
  return [ms, r1, r2];
}

const res: Array<[number, number, number]> = [];
for (let i = 0; i < runs; i++) res.push(await once(i));
rmSync(dir, { recursive: true, force: true });
const med = (k: 0 | 1 | 2) => res.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(res.length / 2)];
console.log(`${bin}: start-up to first reply median ${med(0).toFixed(1)} ms (min ${Math.min(...res.map((r) => r[0])).toFixed(1)}), RSS ${(med(1) / 1024).toFixed(1)} MiB after the first reply, ${(med(2) / 1024).toFixed(1)} MiB after 2000 lookups (${runs} runs)`);
