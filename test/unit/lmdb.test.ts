/**
 * The lmdb driver (src/tables/lmdb.ts, src/tables/lmdb/*): files made by
 * the real `postmap lmdb:FILE`, updates read back by the real `postmap -q`
 * and the other way round, no lock file, fcntl locking, map growth, the
 * over-long key, and differential runs (reads, and interleaved writes on
 * proxywrite) against the C proxymap of the installed Postfix.
 *
 * Needs Postfix with postfix-lmdb, and the format-1 addon
 * (scripts/build-lmdb-v1.sh); fails with the install hint otherwise.
 */
import { asCaller, TEST_CTX } from "../helpers/driver-caller";
import { afterAll, beforeAll, describe, expect, mock, test } from "bun:test";
import { loadLmdb } from "../../src/tables/lmdb/native";
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import * as registry from "../../src/tables/registry";
import { lmdb } from "../../src/tables/lmdb";
import { setTableMainConfig } from "../../src/tables/dbCommon/mainConfig";
import { DictFlag } from "../../src/protocol/constants";
import type { Table } from "../../src/tables/table";
import type { MainConfig } from "../../src/config/mainCf";
import { escape, parseIn, runOracle, runOurs, withoutReference, PROXYMAP, requireOracle } from "../golden/lib/golden";
import { WireClient, attrsToObject, encodeRequest } from "../helpers/wire";
import { nextTurn, othersCanWrite } from "../helpers/fcntl-probe";

// Until src/tables/registry.ts lists lmdb, put it in for these tests.
if (!registry.findTableType("lmdb")) {
  const find = registry.findTableType;
  mock.module("../../src/tables/registry", () => ({ ...registry, findTableType: (t: string) => (t === "lmdb" ? lmdb : find(t)) }));
}

const HINT = "apt-get install postfix postfix-lmdb";
const STAMP = join(import.meta.dir, "../../node_modules/lmdb/build/Release/proxymap-bun.stamp");

/** A configuration with only lmdb_map_size set. */
function config(mapSize?: number): MainConfig {
  const get = (n: string) => (n === "lmdb_map_size" && mapSize !== undefined ? String(mapSize) : "");
  return { get, has: (n: string) => get(n) !== "", expand: (s: string) => s, raw: () => undefined, configDir: "/etc/postfix", installedVersion: "3.7.11", defaultsSource: "builtin" } as unknown as MainConfig;
}

function run(cmd: string[], input?: string): string {
  const p = Bun.spawnSync(cmd, { stdin: input === undefined ? undefined : Buffer.from(input, "latin1"), env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${HINT}): ${p.stderr.toString()}`);
  return p.stdout.toString("latin1");
}

function build(text: string, opts: string[] = []): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "lmdbtest-"));
  const file = join(dir, "map");
  writeFileSync(file, Buffer.from(text, "latin1"));
  run(["postmap", ...opts, `lmdb:${file}`]);
  return { dir, file };
}

const MAP = "a 1\nUPPER up\nuser@example.com mailbox\n\xc3\xa9t\xc3\xa9 summer\nzz last\n";
const L = DictFlag.LOCK | DictFlag.FOLD_FIX | DictFlag.UTF8_REQUEST;
const W = L | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE;

// The driver loads the lmdb package on its first open (asynchronously);
// loaded here, every open below is synchronous.
beforeAll(async () => {
  setTableMainConfig(config());
  await loadLmdb();
});

describe("lmdb setup", () => {
  test("the format-1 addon is built", () => {
    if (!existsSync(STAMP) || !readFileSync(STAMP, "latin1").includes("LMDB_DATA_V1=true")) {
      throw new Error("the lmdb addon is not the format-1 build: run sh scripts/build-lmdb-v1.sh (after npm ci)");
    }
  });
});

describe("lmdb driver", () => {
  test("reads a postmap-made file: NUL conventions, folding, sequence; no lock file", () => {
    const { dir, file } = build(MAP);
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: false, flags: 0 }, TEST_CTX) as Table);
      expect(t.flags & (DictFlag.TRY0NULL | DictFlag.TRY1NULL | DictFlag.FIXED | DictFlag.MULTI_WRITER)).toBe(
        DictFlag.TRY0NULL | DictFlag.TRY1NULL | DictFlag.FIXED | DictFlag.MULTI_WRITER,
      );
      expect(t.lookup("a", L)).toBe("1");
      expect(t.flags & DictFlag.TRY0NULL).toBe(0); // postmap appends the NUL to lmdb keys
      expect(t.lookup("UPPER", L)).toBe("up");
      expect(t.lookup("UPPER", DictFlag.LOCK)).toBeUndefined();
      expect(t.lookup("\xc3\xa9t\xc3\xa9", L)).toBe("summer");
      expect(t.lookup("nope", L)).toBeUndefined();
      const seen: string[] = [];
      for (let r = t.sequence!(0, L) as [string, string] | undefined; r; r = t.sequence!(1, L) as [string, string] | undefined) seen.push(`${r[0]}=${r[1]}`);
      expect(seen).toEqual(["a=1", "upper=up", "user@example.com=mailbox", "zz=last", "\xc3\xa9t\xc3\xa9=summer"]);
      t.close!();
      expect(readdirSync(dir).sort()).toEqual(["map", "map.lmdb"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing file or directory fails without creating anything", () => {
    const dir = mkdtempSync(join(tmpdir(), "lmdbtest-"));
    try {
      expect(() => lmdb.open({ type: "lmdb", name: join(dir, "none"), write: false, flags: 0 }, TEST_CTX)).toThrow(/open database .*none\.lmdb: No such file or directory/);
      expect(() => lmdb.open({ type: "lmdb", name: join(dir, "sub/none"), write: true, flags: 0 }, TEST_CTX)).toThrow(/No such file or directory/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("our updates are read by the real postmap, theirs by us (open table, no re-open)", async () => {
    const { dir, file } = build("seed 0\n");
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      expect(t.update!("Ours", "from-bun", W)).toBe(true);
      expect(run(["postmap", "-q", "ours", `lmdb:${file}`])).toBe("from-bun\n");
      run(["postmap", "-i", `lmdb:${file}`], "theirs from-postmap\n");
      expect(t.lookup("theirs", L)).toBe("from-postmap");
      // The lookup's shared lock lasts until the end of this turn of the
      // event loop (src/tables/lockQueue.ts): let it end before postmap,
      // run synchronously here, waits for the exclusive lock.
      await nextTurn();
      run(["postmap", "-d", "seed", `lmdb:${file}`]);
      expect(t.lookup("seed", L)).toBeUndefined();
      expect(t.delete!("ours", W)).toBe(true);
      expect(t.delete!("ours", W)).toBe(false);
      expect(run(["postmap", "-s", `lmdb:${file}`])).toBe("theirs\tfrom-postmap\n");
      t.close!();
      expect(readdirSync(dir).sort()).toEqual(["map", "map.lmdb"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a new table created by the write service is readable by postmap", () => {
    const dir = mkdtempSync(join(tmpdir(), "lmdbtest-"));
    try {
      const file = join(dir, "verify_cache");
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      expect(t.update!("user@example.com", "1:2:3", W)).toBe(true);
      t.close!();
      expect(statSync(file + ".lmdb").mode & 0o777).toBe(0o644 & ~process.umask());
      expect(run(["postmap", "-q", "user@example.com", `lmdb:${file}`])).toBe("1:2:3\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the map grows when full (lmdb_map_size 64 KiB)", () => {
    const dir = mkdtempSync(join(tmpdir(), "lmdbtest-"));
    setTableMainConfig(config(65536));
    try {
      const file = join(dir, "grow");
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      for (let i = 0; i < 3000; i++) expect(t.update!(`key${i}`, `value ${i} ${"x".repeat(40)}`, W)).toBe(true);
      expect(t.lookup("key2999", L)).toBe(`value 2999 ${"x".repeat(40)}`);
      t.close!();
      expect(statSync(file + ".lmdb").size).toBeGreaterThan(65536);
      expect(run(["postmap", "-q", "key1234", `lmdb:${file}`])).toBe(`value 1234 ${"x".repeat(40)}\n`);
    } finally {
      setTableMainConfig(config());
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a reader and a writer follow a file that another process grew beyond their map (MDB_MAP_RESIZED)", () => {
    const { dir, file } = build("first 1\n");
    setTableMainConfig(config(65536));
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: false, flags: 0 }, TEST_CTX) as Table);
      const w = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      expect(t.lookup("first", L)).toBe("1");
      expect(w.update!("before", "b", W)).toBe(true);
      const lines = Array.from({ length: 400 }, (_, i) => `grown${i} ${"y".repeat(1500)}`).join("\n") + "\n";
      run(["postmap", "-i", `lmdb:${file}`], lines);
      expect(statSync(file + ".lmdb").size).toBeGreaterThan(4 * 65536);
      expect(t.lookup("grown399", L)).toBe("y".repeat(1500));
      expect(t.lookup("first", L)).toBe("1");
      expect(w.update!("after", "a", W)).toBe(true);
      expect(t.lookup("after", L)).toBe("a");
      t.close!();
      w.close!();
      expect(run(["postmap", "-q", "after", `lmdb:${file}`])).toBe("a\n");
    } finally {
      setTableMainConfig(config());
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a file renamed over the table is noticed; a new open reads it, the old one keeps its file", () => {
    const a = build("k old\n");
    const b = build("k new\n");
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: a.file, write: false, flags: 0 }, TEST_CTX) as Table);
      expect(t.lookup("k", L)).toBe("old");
      expect(t.changed!()).toBe(false);
      renameSync(b.file + ".lmdb", a.file + ".lmdb");
      expect(t.changed!()).toBe(true);
      expect(t.lookup("k", L)).toBe("old");
      const t2 = asCaller(lmdb.open({ type: "lmdb", name: a.file, write: false, flags: 0 }, TEST_CTX) as Table);
      expect(t2.lookup("k", L)).toBe("new");
      t.close!();
      expect(t2.lookup("k", L)).toBe("new");
      t2.close!();
    } finally {
      rmSync(a.dir, { recursive: true, force: true });
      rmSync(b.dir, { recursive: true, force: true });
    }
  });

  test("a 5,000-byte key answers a status", () => {
    const { dir, file } = build("a 1\n");
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      const big = "k".repeat(5000);
      expect(t.lookup(big, L)).toBeUndefined();
      expect(() => t.update!(big, "v", W)).toThrow(/error updating lmdb:.*MDB_BAD_VALSIZE/);
      expect(t.delete!(big, W)).toBe(false);
      expect(t.lookup("a", L)).toBe("1");
      t.close!();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a writer holding the exclusive fcntl lock makes a LOCK lookup wait, without blocking the event loop", async () => {
    const { dir, file } = build("a 1\n");
    try {
      // perl holds F_WRLCK on map.lmdb for 400 ms, like postmap rebuilding it.
      const holder = Bun.spawn(
        ["perl", "-e", `use Fcntl; open(F, "+<", $ARGV[0]) or die; my $l = pack("s s x4 q q l x4", F_WRLCK, 0, 0, 0, 0); fcntl(F, F_SETLKW, $l) or die "lock: $!"; print "locked\\n"; $| = 1; select(undef, undef, undef, 0.4);`, file + ".lmdb"],
        { stdout: "pipe" },
      );
      const reader = (holder.stdout as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: false, flags: 0 }, TEST_CTX) as Table);
      const t0 = Date.now();
      const waiting = t.lookup("a", L);
      expect(waiting).toBeInstanceOf(Promise);
      // Meanwhile the event loop turns: a timer fires on time, and a
      // lookup that does not ask for the lock is answered at once.
      const tick = Date.now();
      await Bun.sleep(20);
      expect(Date.now() - tick).toBeLessThan(100);
      const t1 = Date.now();
      expect(t.lookup("a", L & ~DictFlag.LOCK)).toBe("1");
      expect(Date.now() - t1).toBeLessThan(100);
      expect(await waiting).toBe("1");
      expect(Date.now() - t0).toBeGreaterThan(250);
      await holder.exited;
      // With the file free, a LOCK lookup answers at once, without a Promise.
      expect(t.lookup("a", L)).toBe("1");
      t.close!();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("lmdb lock lifetime", () => {
  test("LOCK lookups of one event-loop turn share one shared lock, dropped before the next turn; an update drops it at once", async () => {
    const { dir, file } = build("a 1\nb 2\n");
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      expect(othersCanWrite(file + ".lmdb")).toBe(true);
      expect(t.lookup("a", L)).toBe("1");
      expect(t.lookup("b", L)).toBe("2");
      // Still this turn: the lookups' shared lock is held, a writer would wait.
      expect(othersCanWrite(file + ".lmdb")).toBe(false);
      await nextTurn();
      expect(othersCanWrite(file + ".lmdb")).toBe(true);
      // An exclusive operation after a kept shared lock converts it and drops it when done.
      expect(t.lookup("a", L)).toBe("1");
      t.update!("c", "3", L);
      expect(othersCanWrite(file + ".lmdb")).toBe(true);
      expect(t.lookup("c", L)).toBe("3");
      await nextTurn();
      expect(othersCanWrite(file + ".lmdb")).toBe(true);
      t.close!();
      expect(othersCanWrite(file + ".lmdb")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A golden-style case whose FILE.lmdb is made by the real postmap. */
function oracleCase(name: string, map: string, postmapOpts: string[], requests: string) {
  const { dir, file } = build(map, postmapOpts);
  const bytes = readFileSync(file + ".lmdb").toString("latin1");
  rmSync(dir, { recursive: true, force: true });
  return parseIn("lmdb", name, `file t.lmdb "${escape(bytes)}"\n${requests}`);
}

const T = "lmdb:@DIR@/t";

describe("lmdb against the C proxymap", () => {
  const cases = [
    oracleCase(
      "lookups",
      MAP,
      [],
      [
        `open "${T}" 0`,
        `lookup "${T}" ${L} "a"`,
        `lookup "${T}" ${L} "UPPER"`,
        `lookup "${T}" 64 "UPPER"`,
        `lookup "${T}" ${L} "nope"`,
        `lookup "${T}" ${L} "\\xc3\\xa9t\\xc3\\xa9"`,
        `sequence "${T}" 0 0`,
        `sequence "${T}" 0 1`,
        `sequence "${T}" 0 1`,
        `sequence "${T}" 0 1`,
        `sequence "${T}" 0 1`,
        `sequence "${T}" 0 1`,
      ].join("\n"),
    ),
    // The open reply shows the NUL convention the first hit fixed. Needs the
    // dict layer to take the driver's TRY bits back after each operation.
    oracleCase("flags_after_lookup", "a 1\n", [], `open "${T}" 0\nlookup "${T}" ${L} "a"\nopen "${T}" 0`),
    oracleCase("open_only", MAP, [], `open "${T}" 0\nopen "${T}" 8\nlookup "${T}" ${L} "a"`),
    oracleCase("nonul", "k v\nK2 v2\n", ["-n"], [`lookup "${T}" ${L} "k"`, `lookup "${T}" ${L} "K2"`, `sequence "${T}" 0 0`].join("\n")),
    oracleCase("missing", "", [], `lookup "lmdb:@DIR@/none" ${L} "a"\nlookup "lmdb:@DIR@/none" ${L} "b"`),
    oracleCase(
      "writes",
      "seed 0\n",
      [],
      [
        "option writer",
        `update "${T}" ${L} "New" "one"`,
        `lookup "${T}" ${L} "new"`,
        `update "${T}" ${L} "new" "two"`,
        `lookup "${T}" ${L} "NEW"`,
        `delete "${T}" ${L} "seed"`,
        `delete "${T}" ${L} "seed"`,
        `lookup "${T}" ${L} "seed"`,
        `update "${T}" 0 "Case" "kept"`,
        `lookup "${T}" 0 "Case"`,
        `sequence "${T}" 0 0`,
        `sequence "${T}" 0 1`,
        `sequence "${T}" 0 1`,
      ].join("\n"),
    ),
    // A cache clean-up walk (verify(8), postscreen(8)): delete as you go.
    oracleCase(
      "walk_delete",
      "a 1\nb 2\nc 3\nd 4\n",
      [],
      [
        "option writer",
        `sequence "${T}" 64 0`,
        `delete "${T}" 320 "a"`,
        `sequence "${T}" 64 1`,
        `sequence "${T}" 64 1`,
        `delete "${T}" 320 "c"`,
        `update "${T}" 448 "bb" "new"`,
        `sequence "${T}" 64 1`,
        `sequence "${T}" 64 1`,
        `sequence "${T}" 64 0`,
        `sequence "${T}" 64 1`,
        `sequence "${T}" 64 1`,
        `sequence "${T}" 64 1`,
      ].join("\n"),
    ),
    // The reference answers NOKEY to the long lookup, and exits on the long update.
    oracleCase("bigkey", "a 1\n", [], `lookup "${T}" ${L} "a"\nlookup "${T}" ${L} "${"k".repeat(5000)}"\nlookup "${T}" ${L} "a"`),
    oracleCase("bigkey_update", "a 1\n", [], `option writer\nupdate "${T}" ${L} "${"k".repeat(510)}" "fits"\nlookup "${T}" ${L} "${"k".repeat(510)}"\n! update "${T}" ${L} "${"k".repeat(5000)}" "v"`),
    oracleCase("key511_update", "a 1\n", [], `option writer\n! update "${T}" ${L} "${"k".repeat(511)}" "v"`),
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { ref, diedAt } = await runOracle(c);
      expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
      expect(await runOurs(c)).toBe(withoutReference(ref));
    });
  }
});

afterAll(() => setTableMainConfig(config()));

describe("lmdb crash safety", () => {
  test("SIGKILL mid-stream: every acknowledged update is in the file, which opens cleanly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lmdbcrash-"));
    try {
      const file = join(dir, "cache");
      const child = Bun.spawn([process.execPath, join(import.meta.dir, "../../bench/filedb-crash-child.ts"), file], { stdout: "pipe", stderr: "inherit" });
      const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
      let out = "";
      let acked = -1;
      while (acked < 400) {
        const { value, done } = await reader.read();
        if (done) break;
        out += Buffer.from(value).toString("latin1");
        const m = out.match(/ok (\d+)\n(?![\s\S]*ok \d+\n)/);
        if (m) acked = Number(m[1]);
      }
      child.kill("SIGKILL");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += Buffer.from(value).toString("latin1");
      }
      await child.exited;
      expect(child.signalCode).toBe("SIGKILL");
      const acks = [...out.matchAll(/ok (\d+)\n/g)].map((m) => Number(m[1]));
      const last = acks[acks.length - 1];
      expect(last).toBeGreaterThanOrEqual(400);
      // The real tool opens the file and sees every acknowledged key.
      const listed = new Map(run(["postmap", "-s", `lmdb:${file}`]).split("\n").filter(Boolean).map((l) => l.split("\t") as [string, string]));
      for (const i of acks) expect(listed.get(`key${i}`)).toBe(`value${i} ${"v".repeat(i % 200)}`);
      // And so does ours, read-only, after the crash.
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: false, flags: 0 }, TEST_CTX) as Table);
      expect(t.lookup(`key${last}`, L)).toBe(`value${last} ${"v".repeat(last % 200)}`);
      t.close!();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The C proxymap (read or write service) on one table, run by runpm.pl without master(8). */
async function startC(dir: string, table: string, writer: boolean) {
  requireOracle();
  const cf = join(dir, writer ? "etc-w" : "etc-r");
  Bun.spawnSync(["mkdir", "-p", cf]);
  writeFileSync(join(cf, "main.cf"), `compatibility_level = 3.6\n${writer ? "proxy_write_maps" : "proxy_read_maps"} = proxy:${table}\n`);
  const past = new Date("2020-01-01T00:00:00Z");
  (await import("node:fs")).utimesSync(join(cf, "main.cf"), past, past);
  const sock = join(dir, writer ? "w.sock" : "r.sock");
  const args = ["perl", join(import.meta.dir, "../golden/lib/runpm.pl"), sock, PROXYMAP, "-t", "unix", "-V"];
  if (writer) args.push("-n", "proxywrite");
  const proc = Bun.spawn(args, { env: { MAIL_CONFIG: cf, PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  await (proc.stdout as ReadableStream<Uint8Array>).getReader().read();
  const client = await WireClient.connect(sock);
  const ask = async (request: string, flags: number, rest: Array<[string, string]>) => {
    await client.send(encodeRequest(request, table, flags, rest));
    const r = await client.readReply(5000);
    if (r.kind !== "reply") throw new Error(`C proxymap: no reply (${r.kind})`);
    return attrsToObject(r.attrs);
  };
  return {
    lookup: (key: string) => ask("lookup", L, [["key", key]]),
    update: (key: string, value: string) => ask("update", W, [["key", key], ["value", value]]),
    stop: async () => {
      client.close();
      proc.stdin.end();
      await proc.exited;
    },
  };
}

describe("lmdb with the C proxymap on the same file at the same time", () => {
  test("our commits are seen by the C proxymap at once, and its commits by us", async () => {
    const { dir, file } = build("seed 0\n");
    const table = `lmdb:${file}`;
    const cRead = await startC(dir, table, false);
    const cWrite = await startC(dir, table, true);
    try {
      const ours = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      const oursRead = asCaller(lmdb.open({ type: "lmdb", name: file, write: false, flags: DictFlag.TRY1NULL }, TEST_CTX) as Table);
      for (let i = 0; i < 40; i++) {
        expect(ours.update!(`ours${i}`, `o${i}`, W)).toBe(true);
        expect(await cRead.lookup(`ours${i}`)).toMatchObject({ status: "0", value: `o${i}` });
        expect((await cWrite.update(`theirs${i}`, `t${i}`)).status).toBe("0");
        expect(ours.lookup(`theirs${i}`, L)).toBe(`t${i}`);
        expect(oursRead.lookup(`theirs${i}`, L)).toBe(`t${i}`);
        // Both writers on one key: the last commit wins, for every reader.
        expect(ours.update!("shared", `o${i}`, W)).toBe(true);
        expect((await cWrite.update("shared", `t${i}`)).status).toBe("0");
        expect(ours.lookup("shared", L)).toBe(`t${i}`);
        expect(await cRead.lookup("shared")).toMatchObject({ status: "0", value: `t${i}` });
      }
      ours.close!();
      oursRead.close!();
      const all = run(["postmap", "-s", table]).split("\n").filter(Boolean);
      expect(all.length).toBe(1 + 40 + 40 + 1);
    } finally {
      await cRead.stop();
      await cWrite.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("lmdb duplicates", () => {
  test("without DUP_REPLACE an existing key is kept: DUP_IGNORE silent, DUP_WARN warns, neither is CONFIG", () => {
    const { dir, file } = build("k old\n");
    try {
      const t = asCaller(lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX) as Table);
      expect(t.update!("k", "new", DictFlag.DUP_IGNORE)).toBe(false);
      expect(t.update!("k", "new", DictFlag.DUP_WARN)).toBe(false);
      expect(() => t.update!("k", "new", 0)).toThrow(/duplicate entry: "k"/);
      expect(t.lookup("k", 0)).toBe("old");
      expect(t.update!("k", "new", DictFlag.DUP_REPLACE)).toBe(true);
      expect(t.lookup("k", 0)).toBe("new");
      t.close!();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
