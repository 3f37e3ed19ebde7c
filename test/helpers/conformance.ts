/**
 * conformance.ts - the conformance suite every table driver runs through
 * the dict layer: open flags, lookup, miss, folding, the synchronous hot
 * path, sequence, unsupported operations, the write service, open failures
 * (surrogates), the UTF-8 layer, instance sharing, and the 3.11+ rules
 * (instances per whole instance_flags word, each reply with its own
 * request's flags).
 *
 * Each type runs it from its own file, test/conformance/<type>.test.ts,
 * with that type's facts (a DriverSpec) and whatever real server it needs,
 * so the in-memory types' suites run without MariaDB and a new driver adds
 * one small file. test/conformance/registry.test.ts checks that every
 * registered type has one.
 *
 * The file databases differ from the in-memory types in ways the reference
 * shares (each checked against the C proxymap): the db types settle the
 * TRY0NULL/TRY1NULL convention on first use (`nullBits`), some really
 * update and delete (`writableOps`), and some name themselves after their
 * database file in messages (`labelName`).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict, setUtf8Enabled, type Dict } from "../../src/tables/dict";
import { requireCommand } from "./require";
import { writeCoolFile } from "./files";

const F = DictFlag;
const TRY_BOTH = F.TRY0NULL | F.TRY1NULL;
let dir = "";
let logs: string[] = [];

export interface DriverSpec {
  type: string;
  /** A table of this type holding exactly `entries` (created in the scratch dir if needed). */
  table: () => string | Promise<string>;
  /** [key, value] pairs the table holds (keys lower-case ASCII). */
  entries: Array<[string, string]>;
  /** A key the table does not hold; undefined when every key matches. */
  missing?: string;
  /** The implementation bit the open reply carries. */
  impl: number;
  /** FOLD_FIX finds the entries under upper-case keys. */
  folds: boolean;
  sequence: boolean;
  /** sequence answers NOKEY with this warning instead (memcache without a backup). */
  sequenceWarning?: (name: string) => string;
  /** Can the write service open it? */
  writable: boolean;
  /** A name of this type that fails to open, and the failure text. */
  failure?: [name: string, reason: string];
  /** Lookups always fail with this status (fail:). */
  lookupStatus?: number;
  /**
   * A db type (Postfix dict_db/dict_cdb/dict_lmdb): an open request with
   * neither TRY0NULL nor TRY1NULL gets both, and the first hit keeps only
   * this one: the convention the table was built with (postmap on Linux
   * writes hash/btree/lmdb keys with their NUL: TRY1NULL; cdb keys without:
   * TRY0NULL). Undefined: the flags carry only what the request asked for.
   */
  nullBits?: number;
  /**
   * Lookups complete later: a Promise, never the hot path (a network table,
   * or one whose calls run on a worker thread: unix, sqlite).
   */
  async?: boolean;
  /** Update and delete really work on the write service (OK), instead of CONFIG. */
  writableOps?: boolean;
  /** Update works on the write service, delete is not supported (environ). */
  updateOnly?: boolean;
  /**
   * The "type:name" that the table's own messages (UTF-8 layer, unsupported
   * operations) show, from the "type:name" it was opened as; the reference's
   * dict name is the database file for hash/btree (NAME.db) and cdb
   * (NAME.cdb), the table name for the others (lmdb included). Default: as
   * opened.
   */
  labelName?: (name: string) => string;
}

/** The scratch directory of the running suite (tables are written there). */
export function scratch(): string {
  return dir;
}

/** A file database built by the installed postmap(1) from the two conformance entries. */
export function postmapTable(type: string, hint: string): string {
  const postmap = requireCommand("postmap", hint);
  const p = join(dir, `conf-${type}`);
  writeFileSync(p, "alpha 1\nbeta two words\n");
  const r = Bun.spawnSync([postmap, `${type}:${p}`]);
  if (r.exitCode !== 0) throw new Error(`postmap ${type}:${p} failed (${hint}): ${r.stderr.toString()}`);
  return `${type}:${p}`;
}

/** A pattern table file (cidr, regexp, pcre) in the scratch directory, as "type:path". */
export function patternFile(name: string, text: string): string {
  return `${name.slice(name.lastIndexOf(".") + 1)}:${writeCoolFile(join(dir, name), text)}`;
}

/** The conformance entries as a CONF_DATA map for the test servers. */
export const CONF_DATA = { alpha: "1", beta: "two words" };

/** The "type:name" a table's own messages show. */
function label(spec: DriverSpec, name: string): string {
  return spec.labelName ? spec.labelName(name) : name;
}

/** The flags of a table just opened with `request`, before any lookup. */
function openFlags(spec: DriverSpec, request: number): number {
  const added = spec.nullBits !== undefined && (request & TRY_BOTH) === 0 ? TRY_BOTH : 0;
  return request | added | spec.impl;
}

function setUp(): void {
  dir = mkdtempSync(join(tmpdir(), "tables-conformance-"));
  setLogSinks([{ write: (_s, line) => logs.push(line) }]);
}

function tearDown(): void {
  rmSync(dir, { recursive: true, force: true });
  setLogSinks([{ write: (_s, line) => process.stderr.write(`proxymap: ${line}\n`) }]);
}

async function reset(): Promise<void> {
  await closeAllDicts();
  logs = [];
  setUtf8Enabled(false);
}

async function open(name: string, flags = 0, writer = false, gen: "classic" | "instance" = "classic"): Promise<Dict> {
  return await openDict(name, writer, flags, gen);
}

export function describeDriver(spec: DriverSpec): void {
  describe(`${spec.type} conformance`, () => {
    beforeAll(setUp);
    afterAll(tearDown);
    afterEach(reset);

    test("open replies the request flags plus the implementation bits", async () => {
      const d = await open(await spec.table(), F.TRY0NULL);
      expect(d.flags).toBe(F.TRY0NULL | spec.impl);
    });

    test("NUL convention: only a db type adds TRY0NULL|TRY1NULL to a request with neither, and the first hit keeps one", async () => {
      const d = await open(await spec.table());
      expect(d.flags).toBe(spec.impl | (spec.nullBits !== undefined ? TRY_BOTH : 0));
      if (spec.entries.length === 0) return;
      expect((await dictGet(d, spec.entries[0][0], 0)).status).toBe(spec.lookupStatus ?? Status.OK);
      expect(d.flags).toBe(spec.impl | (spec.nullBits ?? 0));
      if (spec.missing !== undefined) {
        await dictGet(d, spec.missing, 0);
        expect(d.flags).toBe(spec.impl | (spec.nullBits ?? 0));
      }
    });

    if (spec.nullBits !== undefined) {
      test("NUL convention: a convention the request names is kept; the other one finds nothing", async () => {
        const other = spec.nullBits === F.TRY1NULL ? F.TRY0NULL : F.TRY1NULL;
        const right = await open(await spec.table(), spec.nullBits!);
        for (const [k, v] of spec.entries) expect(await dictGet(right, k, 0)).toMatchObject({ status: Status.OK, value: v });
        expect(right.flags).toBe(spec.impl | spec.nullBits!);
        const wrong = await open(await spec.table(), other);
        for (const [k] of spec.entries) expect(await dictGet(wrong, k, 0)).toMatchObject({ status: Status.NOKEY, value: "" });
        expect(wrong.flags).toBe(spec.impl | other);
        expect(logs).toEqual([]);
      });
    }

    test("lookup finds each entry, synchronously (no Promise on the hot path)", async () => {
      const d = await open(await spec.table());
      for (const [k, v] of spec.entries) {
        const r = dictGet(d, k, 0);
        // Network and worker-thread tables (spec.async) answer later by design.
        expect(r instanceof Promise).toBe(spec.async === true);
        expect(await r).toMatchObject({ status: Status.OK, value: v });
      }
    });

    if (spec.missing !== undefined) {
      test("a missing key is NOKEY (or the type's failure)", async () => {
        const d = await open(await spec.table());
        expect(await dictGet(d, spec.missing!, 0)).toMatchObject({ status: spec.lookupStatus ?? Status.NOKEY, value: "" });
        expect(logs).toEqual([]);
      });
    }

    if (spec.folds) {
      test("FOLD_FIX folds an upper-case key; without it the key is taken as is", async () => {
        const d = await open(await spec.table());
        for (const [k, v] of spec.entries) {
          expect(await dictGet(d, k.toUpperCase(), F.FOLD_FIX)).toMatchObject({ status: Status.OK, value: v });
          if (spec.type !== "static") expect((await dictGet(d, k.toUpperCase(), 0)).status).toBe(Status.NOKEY);
        }
      });
    }

    test("the request bits of the flags follow the last request", async () => {
      const d = await open(await spec.table());
      // A miss leaves a db type's NUL convention undecided: both bits stay.
      const table = openFlags(spec, 0);
      await dictGet(d, "x", F.FOLD_FIX | F.LOCK);
      expect(d.flags).toBe(table | F.FOLD_FIX | F.LOCK);
      await dictGet(d, "x", 0);
      expect(d.flags).toBe(table);
    });

    if (spec.sequence) {
      test("sequence walks every entry, then NOKEY", async () => {
        const d = await open(await spec.table());
        const seen: Array<[string, string]> = [];
        let r = await dictSeq(d, 0, 0);
        while (r.status === Status.OK) {
          seen.push([r.key, r.value]);
          r = await dictSeq(d, 1, 0);
        }
        expect(r.status).toBe(spec.lookupStatus ?? Status.NOKEY);
        expect(seen.sort()).toEqual([...spec.entries].sort());
      });
    } else if (spec.sequenceWarning) {
      test("sequence finds nothing, with the type's warning", async () => {
        const name = await spec.table();
        const d = await open(name);
        expect(await dictSeq(d, 0, 0)).toMatchObject({ status: Status.NOKEY, key: "", value: "" });
        expect(logs).toEqual([spec.sequenceWarning!(name)]);
      });
    } else {
      test("sequence is not supported: CONFIG and a warning, process goes on", async () => {
        const name = await spec.table();
        const d = await open(name);
        expect(await dictSeq(d, 0, 0)).toMatchObject({ status: Status.CONFIG, key: "", value: "" });
        expect(logs).toEqual([`warning: table ${name}: sequence operation is not supported`]);
        expect((await dictGet(d, spec.entries[0][0], 0)).status).toBe(Status.OK);
      });
    }

    test("update and delete on the write service", async () => {
      const name = await spec.table();
      const d = await open(name, 0, true);
      const put = (await dictPut(d, "k", "v", 0)).status;
      const del = (await dictDel(d, "k", 0)).status;
      if (spec.type === "fail") {
        expect([put, del]).toEqual([Status.RETRY, Status.RETRY]);
      } else if (spec.writableOps) {
        expect([put, del]).toEqual([Status.OK, Status.OK]);
        expect(logs).toEqual([]);
      } else if (spec.updateOnly) {
        expect([put, del]).toEqual([Status.OK, Status.CONFIG]);
        expect(logs).toEqual([`warning: table ${label(spec, name)}: delete operation is not supported`]);
      } else if (!spec.writable) {
        const why = `${name} is unavailable. ${name} map requires O_RDONLY access mode`;
        expect([put, del]).toEqual([Status.RETRY, Status.RETRY]);
        expect(logs.filter((l) => l.startsWith("warning:"))).toEqual([`warning: ${why}`, `warning: ${why}`]);
      } else {
        expect([put, del]).toEqual([Status.CONFIG, Status.CONFIG]);
        expect(logs).toEqual([
          `warning: table ${label(spec, name)}: update operation is not supported`,
          `warning: table ${label(spec, name)}: delete operation is not supported`,
        ]);
      }
    });

    if (spec.writableOps) {
      test("the write service stores, finds, deletes, and then misses a key", async () => {
        const d = await open(await spec.table(), 0, true);
        expect(d.flags).toBe(openFlags(spec, 0));
        expect((await dictPut(d, "k", "v", F.DUP_REPLACE)).status).toBe(Status.OK);
        // An undecided update writes the platform's convention, which then stays.
        if (spec.nullBits !== undefined) expect(d.flags & TRY_BOTH).toBe(spec.nullBits);
        expect(await dictGet(d, "k", 0)).toMatchObject({ status: Status.OK, value: "v" });
        expect((await dictPut(d, "k", "w", F.DUP_REPLACE)).status).toBe(Status.OK);
        expect(await dictGet(d, "k", 0)).toMatchObject({ status: Status.OK, value: "w" });
        expect((await dictDel(d, "k", 0)).status).toBe(Status.OK);
        expect(await dictGet(d, "k", 0)).toMatchObject({ status: Status.NOKEY, value: "" });
        expect((await dictDel(d, "k", 0)).status).toBe(Status.NOKEY);
        for (const [k, v] of spec.entries) expect(await dictGet(d, k, 0)).toMatchObject({ status: Status.OK, value: v });
        expect(logs).toEqual([]);
      });
    }

    if (spec.failure) {
      test("an open failure is a surrogate: logged once, RETRY with a warning each time", async () => {
        const [name, reason] = spec.failure!;
        const d = await open(name);
          expect(d.flags & F.PATTERN).toBe(F.PATTERN);
        expect(logs).toEqual([`error: ${reason}`]);
        expect(await dictGet(d, "alpha", 0)).toMatchObject({ status: Status.RETRY, value: "" });
        expect(await dictSeq(d, 0, 0)).toMatchObject({ status: Status.RETRY, key: "", value: "" });
        expect(logs.slice(1)).toEqual([`warning: ${name} is unavailable. ${reason}`, `warning: ${name} is unavailable. ${reason}`]);
        expect(await open(name)).toBe(d);
        expect(logs.length).toBe(3);
      });
    }

    test("UTF-8 layer: a non-UTF-8 key is NOKEY with the reference warning", async () => {
      setUtf8Enabled(true);
      const name = await spec.table();
      const d = await open(name, F.UTF8_REQUEST);
      expect(d.flags & F.UTF8_ACTIVE).toBe(F.UTF8_ACTIVE);
      expect(await dictGet(d, "a\xff", F.UTF8_REQUEST)).toMatchObject({ status: Status.NOKEY, value: "" });
      expect(logs).toEqual([`warning: ${label(spec, name)}: non-UTF-8 key "a\xff": malformed UTF-8 or invalid codepoint`]);
    });

    test("the same name and instance flags share one instance; other instance flags do not", async () => {
      const name = await spec.table();
      const a = await open(name, F.FOLD_FIX);
      expect(await open(name, F.LOCK)).toBe(a);
      expect(await open(name, F.TRY1NULL)).not.toBe(a);
    });

    test("3.11+: one instance per whole instance_flags word; each reply carries its request's flags", async () => {
      const name = await spec.table();
      const a = await open(name, F.LOCK, false, "instance");
      expect(await open(name, F.LOCK | F.FOLD_FIX, false, "instance")).not.toBe(a);
      expect(await open(name, F.LOCK, false, "instance")).toBe(a);
      expect(await open(name, F.LOCK)).not.toBe(a);
      const first = a.flags;
      if (spec.entries.length === 0) return;
      const [k, v] = spec.entries[0];
      const request = first | F.FOLD_FIX | F.UTF8_REQUEST;
      const r = await dictGet(a, k, request);
      expect(r).toMatchObject({ status: spec.lookupStatus ?? Status.OK, value: spec.lookupStatus === undefined ? v : "" });
      // A db type reports the NUL convention its hit settled; nothing else changes.
      expect(r.flags).toBe(spec.nullBits !== undefined && spec.lookupStatus === undefined ? (request & ~TRY_BOTH) | spec.nullBits : request);
      expect(a.flags).toBe(first);
    });
  });
}
