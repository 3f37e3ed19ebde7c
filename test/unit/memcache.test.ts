/**
 * memcache.test.ts - the memcache table (src/tables/memcache.ts and
 * src/tables/memcache/), against a private memcached of the test's own
 * (test/helpers/memcached.ts) on loopback TCP and on a UNIX socket:
 *  - the protocol codec, whole and byte by byte; the settings and key rules
 *    (3.7, and the 3.11/3.12 differences: key_digest, control characters);
 *  - the same requests to the C proxymap (the oracle) and to ours give the
 *    same replies and log lines, and leave memcached and the lmdb backup in
 *    the same state: memcached hits, backup hits written back, misses,
 *    updates and deletes with and without a backup, walks, skipped keys,
 *    oversized values, key_format/domain/folding, memcached down, keys
 *    memcached refuses, the backup's duplicate handling by first-open
 *    flags, settings the reference exits on; replies memcached never sends
 *    come from a scripted server (test/helpers/memcache-server.ts);
 *  - ours only: a set memcached would run as a command is never sent, many
 *    lookups in flight on few connections, a stalled server delays only
 *    its own tables (time limit), memcached stopped and restarted, and one
 *    key's update and lookup kept in order.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, utimesSync } from "node:fs";
import { writeCoolFile } from "../helpers/files";
import { logged } from "../helpers/logs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memcached } from "../helpers/memcached";
import { ScriptedMemcacheServer } from "../helpers/memcache-server";
import { parseIn, runOracle, runOurs, withoutReference } from "../golden/lib/golden";
import { closeAllDicts, dictDel, dictGet, dictPut, openContext, openDict, type Dict } from "../../src/tables/dict";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { getReplyParser, lineReplyParser, parseValueLine, readLine, setCommand, setRefusal } from "../../src/tables/memcache/proto";
import { readMcConfig } from "../../src/tables/memcache/config";
import { KeyMaker } from "../../src/tables/memcache/key";
import { McClient, memcacheLimits } from "../../src/tables/memcache/client";
import { Pipeline } from "../../src/tables/net/pipeline";
import { CfgParser } from "../../src/tables/dbCommon/cfgParser";
import { requireCommand } from "../helpers/require";
import type { ReplyParser } from "../../src/tables/net/pipeline";

/** A lookup's status and value (its flags are the dict layer's business, tested there). */
async function get(d: Dict, key: string, flags = 0): Promise<{ status: number; value: string }> {
  const r = await dictGet(d, key, flags);
  return { status: r.status, value: r.value };
}
const put = async (d: Dict, key: string, value: string, flags = 0): Promise<number> => (await dictPut(d, key, value, flags)).status;
const del = async (d: Dict, key: string, flags = 0): Promise<number> => (await dictDel(d, key, flags)).status;

const tmp = mkdtempSync(join(tmpdir(), "memcache-test-"));
let mc: Memcached;
let mcUnix: Memcached;
let scripted: ScriptedMemcacheServer;

/** A file of the test's directory that Postfix will not wait to "cool down". */
function write(name: string, text: string): string {
  return writeCoolFile(join(tmp, name), text);
}

/** An lmdb file NAME.lmdb made by the installed postmap from "key value" lines. */
function lmdb(name: string, lines: string): string {
  const src = write(name, lines);
  const r = Bun.spawnSync(["postmap", `lmdb:${src}`]);
  if (r.exitCode !== 0) throw new Error(`postmap lmdb:${src}: ${r.stderr.toString()}`);
  utimesSync(`${src}.lmdb`, new Date(2020, 0, 1), new Date(2020, 0, 1));
  return `lmdb:${src}`;
}

/** postmap -s of an lmdb backup: its whole content, sorted. */
function backupContent(table: string): string {
  const r = Bun.spawnSync(["postmap", "-s", table]);
  return r.stdout.toString("latin1").split("\n").sort().join("\n");
}

beforeAll(async () => {
  requireCommand("postmap", "apt-get install postfix");
  [mc, mcUnix, scripted] = await Promise.all([Memcached.start(), Memcached.start({ unix: true }), ScriptedMemcacheServer.start()]);
});
afterAll(async () => {
  await closeAllDicts();
  await Promise.all([mc?.close(), mcUnix?.close(), scripted?.close()]);
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- codec

/** Feed a parser every prefix of `bytes`: "more" until whole, then the same answer as whole. */
function byteByByte<T>(parse: ReplyParser<T>, bytes: string) {
  const whole = parse(bytes, 0, false);
  for (let n = 0; n < bytes.length; n++) {
    const part = parse(bytes.slice(0, n), 0, false);
    if (part.kind === "done") return { whole, early: n, part };
  }
  return { whole, early: -1 };
}

describe("memcache protocol codec", () => {
  test("reply lines: CRLF or LF, and the line_size_limit bound as vstring_get_bound() reads it", () => {
    expect(readLine("END\r\nx", 0, 1024)).toEqual({ kind: "line", text: "END", next: 5 });
    expect(readLine("END\nx", 0, 1024)).toEqual({ kind: "line", text: "END", next: 4 });
    expect(readLine("xxEND\r\n", 2, 1024)).toEqual({ kind: "line", text: "END", next: 7 });
    expect(readLine("END\r", 0, 1024)).toEqual({ kind: "more" });
    // "END\r\n" needs 4 places: the '\r' may take the last one when '\n' follows.
    expect(readLine("END\r\n", 0, 4)).toEqual({ kind: "line", text: "END", next: 5 });
    expect(readLine("END\r", 0, 4)).toEqual({ kind: "more" });
    expect(readLine("END\rx", 0, 4)).toEqual({ kind: "toolong" });
    expect(readLine("END\r\n", 0, 3)).toEqual({ kind: "toolong" });
    expect(readLine("END\n", 0, 4)).toEqual({ kind: "line", text: "END", next: 4 });
    expect(readLine("ENDX\n", 0, 4)).toEqual({ kind: "toolong" });
  });

  test("VALUE lines as sscanf(\"VALUE %*s %*s %ld\") reads them", () => {
    expect(parseValueLine("VALUE k 0 5")).toEqual({ key: "k", bytes: 5 });
    expect(parseValueLine("VALUE  k\t7   12x")).toEqual({ key: "k", bytes: 12 });
    expect(parseValueLine("VALUEk 0 5")).toEqual({ key: "k", bytes: 5 });
    expect(parseValueLine("VALUE k 0 -3")).toEqual({ key: "k", bytes: -3 });
    expect(parseValueLine("VALUE k 0 +3")).toEqual({ key: "k", bytes: 3 });
    expect(parseValueLine("VALUE k 0")).toBeUndefined();
    expect(parseValueLine("VALUE k 0 x")).toBeUndefined();
    expect(parseValueLine("value k 0 1")).toBeUndefined();
    expect(parseValueLine("VALUE")).toBeUndefined();
  });

  test("get replies, whole and byte by byte", () => {
    const p = getReplyParser("k", 1024, 100);
    const cases: Array<[string, unknown, boolean]> = [
      ["END\r\n", { kind: "end" }, false],
      ["VALUE k 3 5\r\nab\ncd\r\nEND\r\n", { kind: "value", value: "ab\ncd" }, false],
      ["VALUE k 0 5\r\nab\0cd\r\nEND\r\n", { kind: "value", value: "ab" }, false],
      ["VALUE k 0 0\r\n\r\nEND\r\n", { kind: "value", value: "" }, false],
      ["SERVER_ERROR out of memory\r\n", { kind: "unexpected", line: "SERVER_ERROR out of memory" }, false],
      ["VALUE k 0 101\r\n", { kind: "unexpected", line: "VALUE k 0 101" }, true],
      ["VALUE k 0 -1\r\n", { kind: "unexpected", line: "VALUE k 0 -1" }, true],
      ["VALUE other 0 1\r\n", { kind: "unexpected", line: "VALUE other 0 1" }, true],
      ["VALUE k 0 2\r\nabXY", { kind: "data" }, true],
      ["VALUE k 0 2\r\nab\r\nNOPE\r\n", { kind: "value", value: "ab" }, true],
    ];
    for (const [bytes, want, broken] of cases) {
      const { whole, early } = byteByByte(p, bytes);
      expect(whole.kind === "done" && whole.value).toEqual(want as never);
      expect(whole.kind === "done" && (whole.broken ?? false)).toBe(broken);
      if (!broken) {
        expect(early).toBe(-1);
        expect(whole.kind === "done" && whole.used).toBe(bytes.length);
      }
    }
    // Pipelined: the next reply's bytes are left alone.
    expect(p("END\r\nVALUE k 0 1\r\n", 0, false)).toEqual({ kind: "done", value: { kind: "end" }, used: 5, broken: false });
    // No more bytes will come: a value without its END is still the answer.
    expect(p("VALUE k 0 2\r\nab\r\n", 0, true)).toMatchObject({ kind: "done", value: { kind: "value", value: "ab" }, broken: true });
    expect(p("VALUE k 0 2\r\na", 0, true)).toMatchObject({ kind: "done", value: { kind: "data" } });
    expect(p("VALU", 0, true)).toEqual({ kind: "more" });
    expect(getReplyParser("k", 8, 100)("VALUE k 0 1\r\n", 0, false)).toMatchObject({ kind: "done", value: { kind: "toolong" }, broken: true });
  });

  test("set and delete replies; commands; sets memcached would misread", () => {
    const p = lineReplyParser(1024);
    expect(p("STORED\r\n", 0, false)).toEqual({ kind: "done", value: { kind: "line", line: "STORED" }, used: 8, broken: false });
    expect(p("NOT_FOUND\r", 0, false)).toEqual({ kind: "more" });
    expect(lineReplyParser(3)("STORED\r\n", 0, false)).toMatchObject({ value: { kind: "toolong" }, broken: true });
    expect(setCommand("k", 7, 600, "a\r\nb")).toBe("set k 7 600 4\r\na\r\nb\r\n");
    expect(setRefusal("k".repeat(250), 0)).toBeUndefined();
    expect(setRefusal("k".repeat(251), 0)).toBe("key is longer than 250 bytes");
    expect(setRefusal("k", -1)).toBe("flags -1 is negative");
  });
});

// ---------------------------------------------------------------- settings and keys

describe("memcache settings and key rules", () => {
  const parse = (values: Record<string, string>, version = "3.7.11") => {
    const opened: string[] = [];
    const gen: [number, number, number] = [Number(version.split(".")[0]), Number(version.split(".")[1]), 0];
    const cfg = readMcConfig(CfgParser.fromValues("/etc/postfix/mc.cf", new Map(Object.entries(values))), gen, openContext("classic", false), {
      memcache: (s) => opened.push(`memcache ${s}`),
      backup: (b) => opened.push(`backup ${b}`),
    });
    return { cfg, opened };
  };

  test("defaults and the reference's bounds", () => {
    const { cfg, opened } = parse({});
    expect(cfg).toMatchObject({ keyFormat: "%s", timeoutSec: 2, ttl: 3600, flags: 0, retryPauseSec: 1, maxTry: 2, maxLine: 1024, maxData: 10240, memcache: "inet:localhost:11211", backup: null, skipControls: false });
    expect(opened).toEqual(["memcache inet:localhost:11211"]);
    expect(parse({ ttl: "-5", flags: "-1", timeout: "0" }).cfg).toMatchObject({ ttl: -5, flags: -1, timeoutSec: 0 });
    for (const [k, v, text] of [
      ["max_try", "0", "invalid max_try parameter value 0 < 1"],
      ["retry_pause", "0", "invalid retry_pause parameter value 0 < 1"],
      ["line_size_limit", "0", "invalid line_size_limit parameter value 0 < 1"],
      ["data_size_limit", "x", "bad numerical configuration: data_size_limit = x"],
      ["key_format", "%x", "db_common_parse: /etc/postfix/mc.cf: Invalid query template: %x"],
    ]) {
      expect(() => parse({ [k]: v })).toThrow(text);
    }
  });

  test("the backup is opened after memcache, before key_format is checked", () => {
    const { opened } = parse({ backup: "proxy:btree:/x", memcache: "unix:/s" });
    expect(opened).toEqual(["memcache unix:/s", "backup proxy:btree:/x"]);
    expect(() => parse({ backup: "btree:/x", key_format: "%x" })).toThrow("Invalid query template");
  });

  test("key_digest: ignored by 3.7 as by the installed reference, read from 3.11 on", () => {
    expect(parse({ key_digest: "sha256" }).cfg.keyDigest).toBeUndefined();
    expect(parse({ key_digest: "SHA2-256" }, "3.11.0").cfg.keyDigest?.digest).toBeDefined();
    expect(parse({ key_digest: "whirlpool" }, "3.11.0").cfg.keyDigest).toMatchObject({ name: "whirlpool", digest: undefined });
    expect(parse({}, "3.12.0").cfg.skipControls).toBe(true);
  });

  test("which keys reach memcached, and as what", async () => {
    const { logs } = await logged(async () => {
      const km = (values: Record<string, string>, version?: string) => new KeyMaker(parse(values, version).cfg);
      const plain = km({});
      expect(await plain.make("Key", 0, "lookup")).toEqual({ key: "Key" });
      expect(await plain.make("Key", DictFlag.FOLD_FIX, "lookup")).toEqual({ key: "key" });
      expect(await plain.make("", 0, "lookup")).toEqual({ skip: true });
      expect(await plain.make("a b", 0, "lookup")).toEqual({ skip: true });
      expect(await plain.make("a\x01b", 0, "lookup")).toEqual({ key: "a\x01b" });
      expect(await plain.make("\xe9t\xe9", 0, "lookup")).toEqual({ key: "\xe9t\xe9" });
      expect(await plain.make("a\tb", 0, "update")).toEqual({ skip: true });
      expect(await plain.make("", 0, "delete")).toEqual({ skip: true });
      const fmt = km({ key_format: "%d/%u", domain: "example.com, !bad.example.com" });
      expect(await fmt.make("User@Example.com", DictFlag.FOLD_FIX, "lookup")).toEqual({ key: "example.com/user" });
      expect(await fmt.make("user", 0, "lookup")).toEqual({ skip: true });
      expect(await fmt.make("user@other.org", 0, "lookup")).toEqual({ skip: true });
      expect(await fmt.make("@example.com", 0, "lookup")).toEqual({ skip: true });
      const v312 = km({}, "3.12.0");
      expect(await v312.make("a\x01b", 0, "update")).toEqual({ skip: true });
      expect(await v312.make("a\x7fb", 0, "lookup")).toEqual({ skip: true });
      const digest = km({ key_digest: "sha256", key_format: "x-%s" }, "3.11.0");
      expect(await digest.make("a b", 0, "lookup")).toEqual({ key: new Bun.CryptoHasher("sha256").update("x-a b").digest("hex") });
    });
    expect(logs).toEqual([
      'warning: /etc/postfix/mc.cf: skipping update for name "a\tb": name contains space',
      'warning: /etc/postfix/mc.cf: skipping update for name "a\x01b": name contains space or controls',
    ]);
  });
});

// ---------------------------------------------------------------- against the C proxymap

/** Every memcache key a case can make: its keys as is and folded, and their "%d/%u" forms. */
function keysOf(text: string): string[] {
  const out = ["carol", "example.com/user"];
  for (const r of parseIn("memcache", "keys", text).requests) {
    if (!("key" in r)) continue;
    for (const k of [r.key, r.key.toLowerCase()]) {
      out.push(k);
      const at = k.lastIndexOf("@");
      if (at > 0) out.push(`${k.slice(at + 1)}/${k.slice(0, at)}`);
    }
  }
  return out;
}

/** The state a case leaves behind: memcached's items and each backup's content. */
async function state(server: Memcached | ScriptedMemcacheServer, keys: string[], backups: string[]): Promise<string> {
  const items = server instanceof Memcached ? [...(await server.items(keys))] : [...server.items].sort();
  return JSON.stringify(items) + "\n" + backups.map(backupContent).join("\n--\n");
}

/**
 * Run a case through the C proxymap and through ours, each from the state
 * `setup` makes; replies, log lines and the state afterwards must be equal.
 */
async function sameAsOracle(text: string, setup: () => Promise<void>, server: Memcached | ScriptedMemcacheServer = mc, backups: string[] = []): Promise<string> {
  const c = parseIn("memcache", "live", text);
  await setup();
  const keys = keysOf(text);
  const { ref, diedAt } = await runOracle(c);
  const refState = await state(server, keys, backups);
  await setup();
  const ours = await runOurs(c);
  expect(diedAt).toBe(c.requests.findIndex((r) => r.dies));
  expect(ours).toBe(withoutReference(ref));
  if (diedAt < 0) expect(await state(server, keys, backups)).toBe(refState);
  return ours;
}

const BACKUP_LINES = "alice\tA-backup\nbob\tB\nlong\t" + "x".repeat(50) + "\nuser@example.com\tfrom-backup\n";

describe("memcache against the C proxymap", () => {
  let main: string;
  let backup: string;
  const reset = async () => {
    await mc.flush();
    await mc.set("carol", "C-mc", 3, 0);
    await mc.set("example.com/user", "U-mc", 0, 0);
    backup = lmdb("backup", BACKUP_LINES);
    main = `memcache:${write("mc.cf", `memcache = ${mc.server}\nbackup = ${backup}\nttl = 600\nflags = 7\ndata_size_limit = 40\n`)}`;
    write("nob.cf", `memcache = ${mc.server}\n`);
    write("fmt.cf", `memcache = ${mc.server}\nkey_format = %d/%u\ndomain = example.com, !bad.example.com\nbackup = ${backup}\n`);
    write("down.cf", `memcache = inet:127.0.0.1:1\nbackup = ${backup}\n`);
    write("down-nob.cf", "memcache = inet:127.0.0.1:1\n");
    write("down-unix.cf", `memcache = unix:${tmp}/no-such.sock\n`);
  };
  beforeAll(reset);

  test("lookups, write-back, updates, deletes, walks (lmdb backup opened with DUP_REPLACE)", async () => {
    await sameAsOracle(
      `
option writer
open "${main}" ${DictFlag.UTF8_REQUEST | DictFlag.DUP_REPLACE}
lookup "${main}" 524353 "carol"
lookup "${main}" 524353 "alice"
lookup "${main}" 524353 "alice"
lookup "${main}" 524353 "long"
lookup "${main}" 524353 "nobody"
lookup "${main}" 524353 ""
lookup "${main}" 524353 "a b"
update "${main}" 524353 "a b" "x"
update "${main}" 524353 "" "x"
update "${main}" 524353 "dave" "D"
update "${main}" 524353 "alice" "A2"
update "${main}" 524353 "bob" "0123456789012345678901234567890123456789X"
delete "${main}" 0 "carol"
delete "${main}" 0 "dave"
delete "${main}" 0 "dave"
delete "${main}" 0 ""
sequence "${main}" 0 0
sequence "${main}" 0 1
sequence "${main}" 0 1
sequence "${main}" 0 1
sequence "${main}" 0 1
lookup "${main}" 512 "bob"
`,
      reset,
      mc,
      [backup],
    );
  });

  test("no backup: a miss is a miss, sequence needs a backup, update and delete answer for memcached", async () => {
    const t = `memcache:${tmp}/nob.cf`;
    await sameAsOracle(
      `
option writer
lookup "${t}" 0 "carol"
lookup "${t}" 0 "alice"
sequence "${t}" 0 0
update "${t}" 0 "x" "y"
update "${t}" 0 "x" "${"v".repeat(10241)}"
lookup "${t}" 0 "x"
delete "${t}" 0 "x"
delete "${t}" 0 "x"
delete "${t}" 0 "carol"
`,
      reset,
      mc,
      [],
    );
  });

  test("first open with DUP_WARN: an existing backup key keeps its value, memcached takes the new one, the reply is not found", async () => {
    await sameAsOracle(
      `
option writer
open "${main}" 524353
update "${main}" 0 "alice" "A2"
update "${main}" 0 "erin" "E"
lookup "${main}" 0 "alice"
`,
      reset,
      mc,
      [backup],
    );
  });

  test("first open without DUP flags: the reference dies updating an existing backup key, ours answers with the backup's status", async () => {
    const ours = await sameAsOracle(
      `
option writer
open "${main}" ${DictFlag.UTF8_REQUEST}
update "${main}" 0 "erin" "E"
! update "${main}" 0 "alice" "A2"
`,
      reset,
      mc,
      [backup],
    );
    expect(ours).toContain('!| warning: lmdb:');
    expect(ours).toContain('!< status="5"');
  });

  test("key_format, domain and FOLD_FIX: the memcache key is the expansion, the backup gets the key as received", async () => {
    const t = `memcache:${tmp}/fmt.cf`;
    await sameAsOracle(
      `
option writer
open "${t}" 0
lookup "${t}" 0 "user@example.com"
lookup "${t}" ${DictFlag.FOLD_FIX} "USER@Example.COM"
lookup "${t}" 0 "user"
lookup "${t}" 0 "user@bad.example.com"
lookup "${t}" 0 "user@other.org"
lookup "${t}" 0 "@example.com"
update "${t}" 0 "user@other.org" "x"
update "${t}" 0 "new@example.com" "N"
delete "${t}" 0 "user@example.com"
lookup "${t}" 0 "user@example.com"
`,
      reset,
      mc,
      [backup],
    );
  });

  test("memcached down: with a backup it answers alone; without one, RETRY (TCP and UNIX socket)", async () => {
    const down = `memcache:${tmp}/down.cf`;
    const nob = `memcache:${tmp}/down-nob.cf`;
    const unix = `memcache:${tmp}/down-unix.cf`;
    await sameAsOracle(
      `
option writer
open "${down}" ${DictFlag.DUP_REPLACE}
lookup "${down}" 0 "alice"
lookup "${down}" 0 "zed"
update "${down}" 0 "alice" "A3"
delete "${down}" 0 "bob"
lookup "${nob}" 0 "alice"
update "${nob}" 0 "alice" "x"
delete "${nob}" 0 "alice"
lookup "${unix}" 0 "alice"
`,
      reset,
      mc,
      [backup],
    );
  });

  for (const where of ["unix", "ipv6"] as const) {
    test(`a memcached on ${where === "unix" ? "a UNIX socket" : "IPv6 loopback (inet:[::1]:port)"}`, async () => {
      const server = where === "unix" ? mcUnix : await Memcached.start({ host: "::1" });
      try {
        const t = `memcache:${write(`${where}.cf`, `memcache = ${server.server}\nttl = 0\n`)}`;
        const setup = async () => {
          await server.flush();
          await server.set("k", `from ${where}`);
        };
        const out = await sameAsOracle(
          `
option writer
lookup "${t}" 0 "k"
update "${t}" 0 "k2" "v2"
lookup "${t}" 0 "k2"
delete "${t}" 0 "k"
`,
          setup,
          server,
        );
        expect(out).toContain(`< status="0" value="from ${where}"`);
        expect(out).toContain('< status="0" value="v2"');
      } finally {
        if (server !== mcUnix) await server.close();
      }
    });
  }

  test("a key memcached refuses (over 250 bytes): one retry after retry_pause, then RETRY or the backup", async () => {
    const long = "k".repeat(260);
    await sameAsOracle(
      `
option writer
open "${main}" ${DictFlag.DUP_REPLACE}
lookup "memcache:${tmp}/nob.cf" 0 "${long}"
lookup "${main}" 0 "${long}"
delete "${main}" 0 "${long}"
`,
      reset,
      mc,
      [backup],
    );
  }, 30_000);

  test("settings the reference exits on: CONFIG for that table only", async () => {
    const bad: Array<[string, string]> = [
      ["transport", "memcache = foo:/x\n"],
      ["nocolon", "memcache = nocolon\n"],
      ["template", "key_format = %x\n"],
      ["maxtry", "max_try = 0\n"],
      ["number", "timeout = soon\n"],
    ];
    for (const [name, text] of bad) {
      const t = `memcache:${write(`bad-${name}.cf`, text)}`;
      const ours = await sameAsOracle(`lookup "memcache:${tmp}/nob.cf" 0 "carol"\n! lookup "${t}" 0 "a"\n`, reset);
      expect(ours).toContain('!< status="5" value=""');
    }
  }, 60_000);

  test("open failures: a missing file, NO_UNAUTH (surrogates: RETRY)", async () => {
    await sameAsOracle(
      `
lookup "memcache:${tmp}/missing.cf" 0 "a"
open "memcache:${tmp}/nob.cf" ${DictFlag.NO_UNAUTH}
lookup "memcache:${tmp}/nob.cf" ${DictFlag.NO_UNAUTH} "carol"
lookup "memcache:${tmp}/nob.cf" 0 "carol"
`,
      reset,
    );
  });

  test("the read service writes backup hits back to memcached too", async () => {
    await sameAsOracle(
      `
lookup "${main}" 0 "bob"
lookup "${main}" 0 "bob"
sequence "${main}" 0 0
`,
      reset,
      mc,
      [backup],
    );
  });
});

describe("memcache against the C proxymap: replies memcached never sends", () => {
  const reset = async () => {
    scripted.items.clear();
    write("scripted.cf", `memcache = ${scripted.address}\n`);
    write("scripted-short.cf", `memcache = ${scripted.address}\nline_size_limit = 8\n`);
  };
  const raw = (s: string) => `raw=${s.replace(/[^A-Za-z0-9@_.-]/g, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0"))}`;

  test("garbage, bad lengths, a value without END, NUL in a value, a close in mid-reply, a line too long", async () => {
    const t = `memcache:${tmp}/scripted.cf`;
    const short = `memcache:${tmp}/scripted-short.cf`;
    await sameAsOracle(
      `
option writer
lookup "${t}" 0 "${raw("VALUE @K 0 3\r\nabc\r\nXYZ\r\n")}"
lookup "${t}" 0 "${raw("VALUE @K 9 5\r\nab\0cd\r\nEND\r\n")}"
lookup "${t}" 0 "${raw("VALUE @K 0 3\nabc\r\nEND\n")}"
lookup "${t}" 0 "${raw("garbage\r\n")}"
lookup "${t}" 0 "${raw("VALUE @K 0 99999\r\n")}"
lookup "${t}" 0 "close"
lookup "${short}" 0 "${raw("ENDENDENDEND\r\n")}"
update "${t}" 0 "${raw("NOT_STORED\r\n")}" "v"
delete "${t}" 0 "${raw("SERVER_ERROR busy\r\n")}"
update "${t}" 0 "plain" "v"
lookup "${t}" 0 "plain"
`,
      reset,
      scripted,
    );
  }, 60_000);
});

// ---------------------------------------------------------------- pipelined connections

describe("pipelined connections (net/pipeline.ts, memcache/client.ts)", () => {
  const ep = () => ({ kind: "inet" as const, host: "127.0.0.1", port: Number(scripted.address.split(":").at(-1)) });
  const get = (key: string) => getReplyParser(key, 1024, 10240);

  test("requests in flight on one connection get their own replies; a reply that breaks the stream hands the rest back", async () => {
    scripted.items.clear();
    scripted.items.set("a", { flags: "0", value: "A" });
    scripted.items.set("b", { flags: "0", value: "B" });
    const p = await Pipeline.open(ep(), 1000);
    const bad = "raw=VALUE%20@K%200%2099999%0d%0a";
    const [a, broken, b] = await Promise.all([p.request("get a\r\n", get("a"), 1000), p.request(`get ${bad}\r\n`, get(bad), 1000), p.request("get b\r\n", get("b"), 1000)]);
    expect(a).toEqual({ kind: "reply", value: { kind: "value", value: "A" } });
    expect(broken).toEqual({ kind: "reply", value: { kind: "unexpected", line: `VALUE ${bad} 0 99999` } });
    expect(b).toEqual({ kind: "aborted" });
    expect(p.usable).toBe(false);
    // The shared client sends an aborted request again: every caller gets its answer.
    const c = McClient.acquire(scripted.address);
    try {
      const [x, y, z] = await Promise.all([c.get("a", 1024, 10240, 1000), c.get(bad, 1024, 10240, 1000), c.get("b", 1024, 10240, 1000)]);
      expect(x).toEqual({ kind: "reply", reply: { kind: "value", value: "A" } });
      expect(y.kind === "reply" && y.reply.kind).toBe("unexpected");
      expect(z).toEqual({ kind: "reply", reply: { kind: "value", value: "B" } });
    } finally {
      c.release();
    }
  });

  test("a request's time limit counts even behind one without a limit; the peer's close fails what is in flight", async () => {
    const p = await Pipeline.open(ep(), 1000);
    const started = Date.now();
    const [first, second] = await Promise.all([p.request("get stall\r\n", get("stall"), 0), p.request("get stall\r\n", get("stall"), 300)]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(first).toEqual({ kind: "io", errno: "Connection timed out" });
    expect(second).toEqual({ kind: "io", errno: "Connection timed out" });
    const q = await Pipeline.open(ep(), 1000);
    expect(await q.request("get close\r\n", get("close"), 1000)).toEqual({ kind: "io", errno: undefined });
  });
});

// ---------------------------------------------------------------- ours only

describe("memcache, ours only", () => {
  const logs: string[] = [];
  beforeAll(() => setLogSinks([{ write: (_s, l) => logs.push(l) }]));
  afterAll(async () => {
    await closeAllDicts();
    setLogSinks([{ write: (_s, l) => process.stderr.write(`proxymap: ${l}\n`) }]);
  });

  test("a set memcached would misread is never sent (a value 'flush_all' under a long key does not empty the cache)", async () => {
    await mc.flush();
    await mc.set("keep", "me");
    const t = `memcache:${write("inject.cf", `memcache = ${mc.server}\n`)}`;
    const d = await openDict(t, true, DictFlag.DUP_REPLACE);
    logs.length = 0;
    const started = Date.now();
    expect(await put(d, "k".repeat(251), "flush_all", 0)).toBe(Status.RETRY);
    expect(Date.now() - started).toBeLessThan(500);
    expect(logs).toEqual([`warning: database ${t}: update failed: not sent: key is longer than 250 bytes`]);
    expect(await mc.get("keep")).toEqual({ flags: 0, value: "me" });
    const neg = await openDict(`memcache:${write("negflags.cf", `memcache = ${mc.server}\nflags = -1\n`)}`, true, 0);
    expect(await put(neg, "k", "flush_all", 0)).toBe(Status.RETRY);
    expect(await mc.get("keep")).toEqual({ flags: 0, value: "me" });
  });

  test("many lookups in flight share a few pipelined connections, each gets its own answer", async () => {
    await mc.flush();
    for (let i = 0; i < 50; i++) await mc.set(`p${i}`, `value-${i}`);
    const t = `memcache:${write("pipe.cf", `memcache = ${mc.server}\n`)}`;
    const d = await openDict(t, false, 0);
    const keys = Array.from({ length: 500 }, (_, i) => `p${i % 60}`);
    const got = await Promise.all(keys.map((k) => get(d, k, 0)));
    got.forEach((r, i) => {
      const n = i % 60;
      expect(r).toEqual(n < 50 ? { status: Status.OK, value: `value-${n}` } : { status: Status.NOKEY, value: "" });
    });
    const conns = Number(/curr_connections (\d+)/.exec(await mc.command("stats\r\n", /END\r\n$/))?.[1]);
    // Our connections plus the stats one itself.
    expect(conns).toBeLessThanOrEqual(memcacheLimits.maxConnections + 1);
  });

  test("a stalled memcached: its lookups time out (RETRY, or the backup answers), other servers' tables are not held up", async () => {
    const stalled = await Memcached.start();
    try {
      await stalled.set("s", "stalled value");
      const backup = lmdb("stall-backup", "s\tfrom backup\n");
      const slow = `memcache:${write("stalled.cf", `memcache = ${stalled.server}\ntimeout = 1\nmax_try = 1\nbackup = ${backup}\n`)}`;
      const slowNob = `memcache:${write("stalled-nob.cf", `memcache = ${stalled.server}\ntimeout = 1\nmax_try = 1\n`)}`;
      const healthy = `memcache:${write("healthy.cf", `memcache = ${mc.server}\n`)}`;
      await mc.set("h", "healthy value");
      const [ds, dn, dh] = await Promise.all([openDict(slow, false, 0), openDict(slowNob, false, 0), openDict(healthy, false, 0)]);
      expect(await get(ds, "s", 0)).toEqual({ status: Status.OK, value: "stalled value" });
      await stalled.pause();
      const started = Date.now();
      const waiting = [get(ds, "s", 0), get(dn, "s", 0)];
      const quick = await get(dh, "h", 0);
      const quickMs = Date.now() - started;
      expect(quick).toEqual({ status: Status.OK, value: "healthy value" });
      expect(quickMs).toBeLessThan(200);
      const [withBackup, without] = await Promise.all(waiting);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(withBackup).toEqual({ status: Status.OK, value: "from backup" });
      expect(without).toEqual({ status: Status.RETRY, value: "" });
      stalled.resume();
      // The write-back that timed out may still be run by memcached once it goes on.
      expect(["stalled value", "from backup"]).toContain((await get(dn, "s", 0)).value);
    } finally {
      stalled.resume();
      await stalled.close();
    }
  }, 20_000);

  test("memcached stopped and restarted: the backup answers meanwhile, the cache fills again after", async () => {
    const own = await Memcached.start();
    try {
      const backup = lmdb("restart-backup", "k\tfrom backup\n");
      const t = `memcache:${write("restart.cf", `memcache = ${own.server}\nbackup = ${backup}\n`)}`;
      const nob = `memcache:${write("restart-nob.cf", `memcache = ${own.server}\n`)}`;
      const [d, n] = await Promise.all([openDict(t, true, DictFlag.DUP_REPLACE), openDict(nob, true, 0)]);
      expect(await get(d, "k", 0)).toEqual({ status: Status.OK, value: "from backup" });
      expect(await own.get("k")).toEqual({ flags: 0, value: "from backup" });
      await own.stop();
      await Bun.sleep(50);
      logs.length = 0;
      const started = Date.now();
      expect(await get(d, "k", 0)).toEqual({ status: Status.OK, value: "from backup" });
      expect(await get(n, "k", 0)).toEqual({ status: Status.RETRY, value: "" });
      expect(await put(d, "k2", "v2", 0)).toBe(Status.OK);
      expect(Date.now() - started).toBeLessThan(500);
      expect(logs.every((l) => l.startsWith(`warning: connect to 127.0.0.1:${own.port}: Connection refused`))).toBe(true);
      await own.restart();
      expect(await get(n, "k", 0)).toEqual({ status: Status.NOKEY, value: "" });
      expect(await get(d, "k2", 0)).toEqual({ status: Status.OK, value: "v2" });
      expect(await own.get("k2")).toEqual({ flags: 0, value: "v2" });
    } finally {
      await own.close();
    }
  }, 20_000);

  test("one key's update and lookup stay in order: the cache never keeps a value the backup no longer has", async () => {
    await mc.flush();
    const backup = lmdb("order-backup", "k\told\n");
    const t = `memcache:${write("order.cf", `memcache = ${mc.server}\nbackup = ${backup}\n`)}`;
    const d = await openDict(t, true, DictFlag.DUP_REPLACE);
    for (let round = 0; round < 20; round++) {
      await mc.command("delete k\r\n");
      const value = `new-${round}`;
      const [l, u] = await Promise.all([get(d, "k", 0), put(d, "k", value, 0)]);
      expect(u).toBe(Status.OK);
      expect(l.status).toBe(Status.OK);
      expect((await mc.get("k"))?.value).toBe(value);
    }
    expect(await del(d, "k", 0)).toBe(Status.OK);
  });
});
