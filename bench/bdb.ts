/**
 * bench/bdb.ts - lookups and updates per second on btree: and hash: tables,
 * the C proxymap and ours in the same run, at 1 and 8 concurrent clients,
 * each client a connection doing one request at a time (as Postfix
 * daemons do). Lookups go to the read service on a postmap-made file of
 * 10,000 entries; updates (with SYNC_UPDATE, so one fdatasync each) to the
 * write service. Both implementations run under a private master(8)
 * (test/helpers/postfix-instance.ts).
 *
 *   bun bench/bdb.ts [seconds-per-run] [--pin SERVER_CPU,CLIENT_CPU]   (default 3 s; root; ours needs dist/proxymap)
 *
 * --pin as in compare.ts: master (and its proxymaps) on one CPU, the load on
 * the other. At the end: ours/C per type, operation and clients, with p99.
 *
 * Prints one line per run: impl, type, op, clients, requests/s, p50 and p99
 * latency in ms.
 */
import { TEST_CTX } from "../test/helpers/driver-caller";
import { existsSync } from "node:fs";
import { PostfixInstance, OUR_PROXYMAP, type ProxymapImpl } from "../test/helpers/postfix-instance";
import { WireClient, type Attr } from "../test/helpers/wire";

const SECONDS = Number(/^\d/.test(process.argv[2] ?? "") ? process.argv[2] : 3);
const PIN = process.argv.includes("--pin") ? (process.argv[process.argv.indexOf("--pin") + 1] ?? "1,0").split(",") : undefined;
/** Every run, for the ratios printed at the end. */
const RESULTS: { name: string; type: string; op: string; clients: number; rate: number; p99: number }[] = [];

function pin(pid: number, cpu: string): void {
  const r = Bun.spawnSync(["taskset", "-a", "-p", "-c", cpu, String(pid)], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`taskset ${cpu} ${pid}: ${r.stderr.toString()}`);
}
const ENTRIES = 10_000;
const LOOKUP_FLAGS = "524353"; // UTF8_REQUEST|LOCK|DUP_WARN, as postmap -q
const UPDATE_FLAGS = "448"; // LOCK|SYNC_UPDATE|DUP_REPLACE

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

async function drive(socket: string, clients: number, make: (i: number) => Attr[]): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const conns = await Promise.all(Array.from({ length: clients }, () => WireClient.connect(socket)));
  const lat: number[] = [];
  let errors = 0;
  let count = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    conns.map(async (c, ci) => {
      let i = ci;
      while (performance.now() < end) {
        const t0 = performance.now();
        const r = await c.request(make(i), 10_000);
        lat.push(performance.now() - t0);
        if (r.kind !== "reply" || r.attrs[0]?.[1] !== "0") errors++;
        count++;
        i += clients;
      }
    }),
  );
  for (const c of conns) c.close();
  lat.sort((a, b) => a - b);
  return { rate: count / SECONDS, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), errors };
}

async function benchImpl(impl: ProxymapImpl): Promise<void> {
  const name = impl === "c" ? "C" : "ours";
  if (impl === "ours" && !existsSync(OUR_PROXYMAP)) {
    console.log(`${name}: ${OUR_PROXYMAP} is missing: npm run build`);
    return;
  }
  const source = Array.from({ length: ENTRIES }, (_, i) => `key${i} value-${i}`).join("\n") + "\n";
  // Everything in $data_directory (owned by mail_owner): the write service
  // creates its files there, and the approval lists are in main.cf from the
  // start (proxywrite ignores reloads).
  const inst = await PostfixInstance.start({
    impl,
    label: `bdbbench-${name}`,
    mainCf: {
      proxy_read_maps: "proxy:hash:$data_directory/h proxy:btree:$data_directory/b",
      proxy_write_maps: "proxy:hash:$data_directory/cache-hash proxy:btree:$data_directory/cache-btree",
    },
  });
  if (PIN) {
    pin(inst.masterPid, PIN[0]);
    pin(process.pid, PIN[1]);
  }
  try {
    const tables: Record<string, string> = {};
    for (const [type, rel] of [["hash", "h"], ["btree", "b"]]) {
      const file = `${inst.dataDir}/${rel}`;
      await Bun.write(file, source);
      const r = inst.run("postmap", [`${type}:${file}`]);
      if (r.code !== 0) throw new Error(`postmap ${type}:${file}: ${r.stderr}`);
      tables[type] = `${type}:${file}`;
    }
    const cacheFile = `${inst.dataDir}/cache`;
    for (const type of ["hash", "btree"]) {
      for (const clients of [1, 8]) {
        const table = tables[type];
        const r = await drive(inst.socket("proxymap"), clients, (i) => [
          ["request", "lookup"],
          ["table", table],
          ["flags", LOOKUP_FLAGS],
          ["key", `key${i % ENTRIES}`],
        ]);
        console.log(`${name}\t${type}\tlookup\t${clients}\t${r.rate.toFixed(0)}/s\tp50 ${r.p50.toFixed(2)}ms\tp99 ${r.p99.toFixed(2)}ms\terrors ${r.errors}`);
        RESULTS.push({ name, type, op: "lookup", clients, rate: r.rate, p99: r.p99 });
      }
      for (const clients of [1, 8]) {
        const table = `${type}:${cacheFile}-${type}`;
        const r = await drive(inst.socket("proxywrite"), clients, (i) => [
          ["request", "update"],
          ["table", table],
          ["flags", UPDATE_FLAGS],
          ["key", `10.0.${(i >> 8) & 255}.${i & 255}`],
          ["value", `${i};${i};${i};${i};${i}`],
        ]);
        console.log(`${name}\t${type}\tupdate\t${clients}\t${r.rate.toFixed(0)}/s\tp50 ${r.p50.toFixed(2)}ms\tp99 ${r.p99.toFixed(2)}ms\terrors ${r.errors}`);
        RESULTS.push({ name, type, op: "update", clients, rate: r.rate, p99: r.p99 });
      }
    }
  } finally {
    inst.stop();
  }
}

/** Our driver alone, in this process (no sockets): the cost of the binding itself. */
async function benchDriver(): Promise<void> {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { hash } = await import("../src/tables/hash");
  const { btree } = await import("../src/tables/btree");
  const dir = mkdtempSync("/tmp/bdbbench-");
  try {
    for (const tt of [hash, btree]) {
      const file = `${dir}/${tt.type}`;
      writeFileSync(file, Array.from({ length: ENTRIES }, (_, i) => `key${i} value-${i}`).join("\n") + "\n");
      Bun.spawnSync(["postmap", `${tt.type}:${file}`]);
      const t = tt.open({ type: tt.type, name: file, write: false, flags: 0 }, TEST_CTX) as import("../src/tables/table").Table;
      let n = 0;
      const end = performance.now() + SECONDS * 1000;
      while (performance.now() < end) for (let k = 0; k < 1000; k++) t.lookup(`key${n++ % ENTRIES}`, 64);
      console.log(`driver\t${tt.type}\tlookup\t-\t${(n / SECONDS).toFixed(0)}/s\t(in-process, with flock)`);
      t.close?.();
      const w = tt.open({ type: tt.type, name: `${file}-w`, write: true, flags: 0 }, TEST_CTX) as import("../src/tables/table").Table;
      n = 0;
      const end2 = performance.now() + SECONDS * 1000;
      while (performance.now() < end2) w.update!(`10.0.${(n >> 8) & 255}.${n++ & 255}`, "1;2;3;4;5", 448);
      console.log(`driver\t${tt.type}\tupdate\t-\t${(n / SECONDS).toFixed(0)}/s\t(in-process, flock + fdatasync)`);
      w.close?.();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`impl\ttype\top\tclients\trate\tp50\tp99\t(${SECONDS}s per run)`);
await benchImpl("c");
await benchImpl("ours");
if (PIN) pin(process.pid, `0-${Math.max(0, navigator.hardwareConcurrency - 1)}`);
await benchDriver();
// Issue 16's targets for lookups: ours/C >= 1.0x at 1 client and >= 2.0x at 8, p99 no worse than C's.
for (const type of ["hash", "btree"])
  for (const op of ["lookup", "update"])
    for (const clients of [1, 8]) {
      const c = RESULTS.find((r) => r.name === "C" && r.type === type && r.op === op && r.clients === clients);
      const o = RESULTS.find((r) => r.name === "ours" && r.type === type && r.op === op && r.clients === clients);
      if (!c || !o) continue;
      console.log(`ratio\t${type}\t${op}\t${clients}\tours/C ${(o.rate / c.rate).toFixed(2)}x\tp99 ours ${o.p99.toFixed(2)}ms C ${c.p99.toFixed(2)}ms${o.p99 <= c.p99 ? "" : " (ours worse)"}`);
    }
