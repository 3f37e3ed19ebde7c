/**
 * load.ts - a load tool for any proxymap socket.
 *
 * N persistent clients each send one lookup, wait for its reply, and send
 * the next, for T seconds, cycling through a key set; reports lookups/s and
 * the p50/p99 latency of a lookup. Written by hand for speed (the client
 * must not be the bottleneck): one pre-encoded request per key, replies cut
 * by counting NUL-terminated fields, latencies kept as numbers. With
 * --procs P the clients are spread over P child processes.
 *
 *   bun bench/load.ts --socket PATH --table texthash:/path --keys k1,k2 | --keyfile FILE
 *                     [--clients 8] [--seconds 5] [--flags 524353] [--no-greeting] [--procs 1] [--json]
 *
 * Used by bench/compare.ts (same process, runLoad()). Logs nothing but its result.
 */
import { readFileSync } from "node:fs";

export interface LoadOptions {
  socket: string;
  table: string;
  keys: string[];
  clients: number;
  seconds: number;
  flags?: number;
  /** Read the 3.6+ greeting on connect (default true). */
  greeting?: boolean;
  /** Spread clients over this many child processes (default 1: this one). */
  procs?: number;
}

export interface LoadResult {
  clients: number;
  lookups: number;
  seconds: number;
  perSec: number;
  p50Us: number;
  p99Us: number;
  errors: number;
  /** Replies that found the key (status 0). */
  hits: number;
  /** Latencies in microseconds (only when asked, for merging). */
  samples?: number[];
}

function encodeLookup(table: string, flags: number, key: string): Buffer {
  return Buffer.from(`request\0lookup\0table\0${table}\0flags\0${flags}\0key\0${key}\0\0`, "latin1");
}

/** Length of the complete attribute list at the start of b (from offset), or -1. */
function listEnd(b: Buffer, off: number): number {
  let pos = off;
  for (;;) {
    const n = b.indexOf(0, pos);
    if (n < 0) return -1;
    if (n === pos) return n + 1 - off;
    const v = b.indexOf(0, n + 1);
    if (v < 0) return -1;
    pos = v + 1;
  }
}

function percentile(sorted: Float64Array | number[], q: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

/** Run the clients in this process. */
async function runHere(o: LoadOptions, keepSamples: boolean): Promise<LoadResult> {
  const flags = o.flags ?? 524353;
  const reqs = o.keys.map((k) => encodeLookup(o.table, flags, k));
  const lat: number[] = [];
  let errors = 0;
  let hits = 0;
  let stop = false;
  const started: Promise<void>[] = [];
  const finished: Promise<void>[] = [];
  const kick: (() => void)[] = [];
  let t0 = 0;
  for (let c = 0; c < o.clients; c++) {
    let buf: Buffer = Buffer.alloc(0);
    let greeted = o.greeting === false;
    let sentAt = 0;
    let i = c * 7919;
    let readyResolve!: () => void;
    let doneResolve!: () => void;
    started.push(new Promise<void>((r) => (readyResolve = r)));
    finished.push(new Promise<void>((r) => (doneResolve = r)));
    const send = (s: { write(b: Buffer): number }) => {
      sentAt = performance.now();
      s.write(reqs[i++ % reqs.length]);
    };
    const sock = await Bun.connect({
      unix: o.socket,
      socket: {
        data(s, chunk) {
          buf = buf.length ? Buffer.concat([buf, chunk]) : (chunk as Buffer);
          for (;;) {
            const n = listEnd(buf, 0);
            if (n < 0) return;
            const list = buf.subarray(0, n);
            buf = buf.subarray(n);
            if (!greeted) {
              greeted = true;
              readyResolve();
              continue;
            }
            if (t0) {
              lat.push((performance.now() - sentAt) * 1000);
              // "status\0" then a digit: anything but 0/1 (found/not found) counts as an error.
              const st = list[7];
              if (st === 0x30) hits++;
              else if (st !== 0x31) errors++;
            }
            if (stop) {
              s.end();
              doneResolve();
              return;
            }
            send(s);
          }
        },
        close() {
          readyResolve();
          doneResolve();
        },
        error() {
          errors++;
          readyResolve();
          doneResolve();
        },
      },
    });
    if (greeted) readyResolve();
    kick.push(() => send(sock));
  }
  await Promise.all(started);
  t0 = performance.now();
  for (const k of kick) k();
  await Bun.sleep(o.seconds * 1000);
  stop = true;
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.race([Promise.all(finished), Bun.sleep(5000)]);
  const sorted = Float64Array.from(lat).sort();
  return {
    clients: o.clients,
    lookups: lat.length,
    seconds: elapsed,
    perSec: lat.length / elapsed,
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    errors,
    hits,
    samples: keepSamples ? lat : undefined,
  };
}

/** Run a load; with procs > 1 the clients are split over child processes and merged. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const procs = Math.max(1, Math.min(o.procs ?? 1, o.clients));
  if (procs === 1) return runHere(o, false);
  const share = (i: number) => Math.floor(o.clients / procs) + (i < o.clients % procs ? 1 : 0);
  const kids = Array.from({ length: procs }, (_, i) =>
    Bun.spawn(
      [process.execPath, import.meta.path, "--child", "--socket", o.socket, "--table", o.table, "--clients", String(share(i)), "--seconds", String(o.seconds), "--flags", String(o.flags ?? 524353), ...(o.greeting === false ? ["--no-greeting"] : [])],
      // The keys go through stdin: a large key set does not fit in argv.
      { stdin: Buffer.from(o.keys.join("\n"), "latin1"), stdout: "pipe", stderr: "inherit" },
    ),
  );
  const outs = await Promise.all(kids.map(async (k) => JSON.parse(await new Response(k.stdout).text()) as LoadResult));
  const lat = Float64Array.from(outs.flatMap((r) => r.samples ?? [])).sort();
  const seconds = Math.max(...outs.map((r) => r.seconds));
  const lookups = outs.reduce((a, r) => a + r.lookups, 0);
  return { clients: o.clients, lookups, seconds, perSec: lookups / seconds, p50Us: percentile(lat, 0.5), p99Us: percentile(lat, 0.99), errors: outs.reduce((a, r) => a + r.errors, 0), hits: outs.reduce((a, r) => a + r.hits, 0) };
}

function arg(argv: string[], name: string, dflt?: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const socket = arg(argv, "--socket");
  const table = arg(argv, "--table");
  const keyfile = arg(argv, "--keyfile");
  const keys = argv.includes("--child")
    ? (await new Response(Bun.stdin.stream()).text()).split("\n").filter(Boolean)
    : keyfile
      ? readFileSync(keyfile, "latin1").split("\n").filter(Boolean)
      : (arg(argv, "--keys") ?? "").split(",").filter(Boolean);
  if (!socket || !table || !keys.length) {
    console.error("usage: bun bench/load.ts --socket PATH --table TYPE:NAME (--keys a,b | --keyfile FILE) [--clients N] [--seconds T] [--flags F] [--no-greeting] [--procs P] [--json]");
    process.exit(2);
  }
  const o: LoadOptions = {
    socket,
    table,
    keys,
    clients: Number(arg(argv, "--clients", "8")),
    seconds: Number(arg(argv, "--seconds", "5")),
    flags: Number(arg(argv, "--flags", "524353")),
    greeting: !argv.includes("--no-greeting"),
    procs: Number(arg(argv, "--procs", "1")),
  };
  if (argv.includes("--child")) {
    process.stdout.write(JSON.stringify(await runHere(o, true)));
  } else {
    const r = await runLoad(o);
    if (argv.includes("--json")) console.log(JSON.stringify(r));
    else console.log(`${r.clients} clients: ${Math.round(r.perSec)} lookups/s, p50 ${(r.p50Us / 1000).toFixed(3)} ms, p99 ${(r.p99Us / 1000).toFixed(3)} ms, ${r.lookups} lookups in ${r.seconds.toFixed(1)} s, ${r.errors} errors`);
  }
}
