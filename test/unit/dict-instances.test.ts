/**
 * The dict layer's instances and flags (issue 11 defects 1 and 2, and the
 * instance bound of issue 12), through the same calls the service makes:
 * - 3.11+ requests get one instance per table name and instance_flags
 *   word (FOLD_FIX included), as Postfix 3.12 does; up-to-3.10 requests
 *   keep 3.7's key, where FOLD_FIX is a request bit;
 * - each operation answers with its own call's flags, also when requests
 *   with different flags overlap on an asynchronous table, and leaves the
 *   instance's open flags alone;
 * - the number of open instances is bounded; the least recently used one
 *   is closed and opens again when named.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictGet, dictSeq, openCount, openDict, setMaxTables, setUtf8Enabled, DEFAULT_MAX_TABLES } from "../../src/tables/dict";
import { writeCoolFile } from "../helpers/files";
import { SocketmapServer } from "../helpers/socketmap-server";

const NO_FOLD = 524353; // utf8_request|lock|warn_dup: what postmap -q sends without folding
const FOLDING_INST = 540737; // the same plus fold_fix: smtpd's instance flags
const FOLDING_REQ = 1589329; // fold_fix|utf8_active|utf8_request|fixed|lock|warn_dup

let dir = "";
let logs: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pm-dictinst-"));
  setLogSinks([{ write: (_level, text) => logs.push(text) }]);
  setUtf8Enabled(true);
});
afterEach(async () => {
  await closeAllDicts();
  setMaxTables(DEFAULT_MAX_TABLES);
  logs = [];
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setLogSinks([]);
});

describe("instances per generation", () => {
  test("3.11+: instance_flags differing only in FOLD_FIX are two instances (3.12's answer)", async () => {
    const table = `texthash:${writeCoolFile(join(dir, "th"), "carol@example.com carol-box\n")}`;
    const plain = await openDict(table, false, NO_FOLD, "instance");
    expect(await dictGet(plain, "Carol@Example.COM", NO_FOLD)).toMatchObject({ status: Status.NOKEY });
    const folding = await openDict(table, false, FOLDING_INST, "instance");
    expect(folding).not.toBe(plain);
    expect(await dictGet(folding, "Carol@Example.COM", FOLDING_REQ)).toEqual({ status: Status.OK, value: "carol-box", flags: FOLDING_REQ });
    expect(await dictSeq(folding, 0, FOLDING_REQ)).toMatchObject({ status: Status.OK, key: "carol@example.com" });
  });

  test("up to 3.10: FOLD_FIX is a request bit; both requests share the first instance", async () => {
    const table = `texthash:${writeCoolFile(join(dir, "th37"), "carol@example.com carol-box\n")}`;
    const a = await openDict(table, false, NO_FOLD);
    const b = await openDict(table, false, FOLDING_INST);
    expect(b).toBe(a);
  });

  test("3.11+ and up-to-3.10 requests never share an instance", async () => {
    const table = "inline:{a=1}";
    expect(await openDict(table, false, 0, "instance")).not.toBe(await openDict(table, false, 0));
  });
});

describe("flags are per call", () => {
  let srv: SocketmapServer;
  beforeAll(async () => {
    srv = await SocketmapServer.start({ data: { m: { a: "A", b: "B" } } });
  });
  afterAll(() => srv.close());

  test("overlapping 3.11+ lookups with different request flags each get their own flags back", async () => {
    const table = `unionmap:{${srv.table("m")}}`;
    const d = await openDict(table, false, NO_FOLD, "instance");
    const openFlags = d.flags;
    for (let i = 0; i < 20; i++) {
      const [x, y] = await Promise.all([dictGet(d, "a", FOLDING_REQ), dictGet(d, "b", NO_FOLD)]);
      expect(x).toEqual({ status: Status.OK, value: "A", flags: FOLDING_REQ });
      expect(y).toEqual({ status: Status.OK, value: "B", flags: NO_FOLD });
    }
    expect(d.flags).toBe(openFlags);
    expect(d.flags & DictFlag.UTF8_ACTIVE).toBe(DictFlag.UTF8_ACTIVE);
  });

  test("up to 3.10: the shared word takes the last request's bits, as the reference", async () => {
    const d = await openDict("inline:{a=1}", false, 0);
    await dictGet(d, "a", DictFlag.FOLD_FIX | DictFlag.LOCK);
    expect(d.flags & (DictFlag.FOLD_FIX | DictFlag.LOCK)).toBe(DictFlag.FOLD_FIX | DictFlag.LOCK);
    await dictGet(d, "a", 0);
    expect(d.flags & (DictFlag.FOLD_FIX | DictFlag.LOCK)).toBe(0);
  });
});

describe("bound on open instances", () => {
  test("past proxymap_max_tables the least recently used instance is closed, and opens again when named", async () => {
    setMaxTables(8);
    const first = await openDict("inline:{k=v}", false, 1 << 22, "instance");
    for (let i = 0; i < 40; i++) {
      await openDict("inline:{k=v}", false, (1 << 22) | ((i + 2) << 23), "instance");
      await openDict("inline:{k=v}", false, 1 << 22, "instance"); // keeps `first` recently used
    }
    expect(openCount()).toBeLessThanOrEqual(8);
    const again = await openDict("inline:{k=v}", false, 1 << 22, "instance");
    expect(again).toBe(first);
    const old = await openDict("inline:{k=v}", false, (1 << 22) | (1 << 23), "instance");
    expect(await dictGet(old, "k", 0)).toMatchObject({ status: Status.OK, value: "v" });
    expect(openCount()).toBeLessThanOrEqual(8);
  });
});

