/**
 * The Berkeley DB drivers (src/tables/hash.ts, btree.ts over
 * src/tables/bdb/*): the generated struct offsets against db.h, the library
 * version check, reads of files made by the real `postmap`, writes that
 * `postmap -q` sees at once, flock() interplay with other processes, a
 * file rebuilt by postmap, sequence with deletes in between, damaged files,
 * and a writer killed with SIGKILL in the middle of a stream of updates.
 *
 * Needs Postfix (postmap), libdb5.3 and libdb5.3-dev with a C compiler for
 * the offsets check; each test fails with the install hint when a piece is
 * missing.
 */
import { asCaller, TEST_CTX } from "../helpers/driver-caller";
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { DictFlag } from "../../src/protocol/constants";
import { TableError, type Table, type TableType } from "../../src/tables/table";
import { hash } from "../../src/tables/hash";
import { btree } from "../../src/tables/btree";
import { libdb } from "../../src/tables/bdb/lib";
import { DB_H_VERSION, DB_OFF, DBT_OFF } from "../../src/tables/bdb/offsets.generated";
import { setLogSinks } from "../../src/log/msg";

const HINT = "apt-get install postfix libdb5.3 libdb5.3-dev gcc";
const ROOT = join(import.meta.dir, "../..");
const LOCK = DictFlag.LOCK;
const WRITE = DictFlag.LOCK | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE;
const work = mkdtempSync(join(tmpdir(), "bdbtest-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let logs: string[] = [];
setLogSinks([{ write: (_s, line) => logs.push(line) }]);

function run(cmd: string[], okCodes = [0]): { code: number; out: string; err: string } {
  const p = Bun.spawnSync(cmd, { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/usr/bin` } });
  const r = { code: p.exitCode ?? -1, out: p.stdout.toString("latin1"), err: p.stderr.toString("latin1") };
  if (!okCodes.includes(r.code)) throw new Error(`${cmd.join(" ")} failed (${HINT}): ${r.err}`);
  return r;
}

let n = 0;
/** A fresh NAME (source text) with NAME.db made by postmap TYPE:NAME. */
function build(type: string, text: string): string {
  const file = join(work, `map${++n}`);
  writeFileSync(file, Buffer.from(text, "latin1"));
  run(["postmap", `${type}:${file}`]);
  return file;
}

function postmapQ(type: string, file: string, key: string): string | undefined {
  const r = run(["postmap", "-q", key, `${type}:${file}`], [0, 1]);
  return r.code === 0 ? r.out.replace(/\n$/, "") : undefined;
}

function open(tt: TableType, name: string, write = false, flags = 0): Table {
  return asCaller(tt.open({ type: tt.type, name, write, flags }, TEST_CTX) as Table);
}

async function walk(t: Table, flags = 0): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  let r = (await t.sequence!(0, flags)) as [string, string] | undefined;
  while (r) {
    out.push(r);
    r = (await t.sequence!(1, flags)) as [string, string] | undefined;
  }
  return out;
}

const TYPES: Array<[string, TableType]> = [
  ["hash", hash],
  ["btree", btree],
];

describe("binding", () => {
  test("offsets.generated.ts is what db.h gives (scripts/gen-bdb-offsets.sh)", () => {
    if (!existsSync("/usr/include/db.h")) throw new Error(`/usr/include/db.h is missing: ${HINT}`);
    const cc = Bun.which("cc") ?? Bun.which("gcc");
    if (!cc) throw new Error(`no C compiler: ${HINT}`);
    const exe = join(work, "gen");
    run([cc, "-o", exe, join(ROOT, "scripts/gen-bdb-offsets.c")]);
    const fresh = run([exe]).out;
    expect(readFileSync(join(ROOT, "src/tables/bdb/offsets.generated.ts"), "utf8")).toBe(fresh);
    // The layout the issue measured on x86_64 with 5.3.28.
    if (process.arch === "x64") {
      expect([DB_OFF.open, DB_OFF.get, DBT_OFF.sizeof, DBT_OFF.size, DBT_OFF.flags]).toEqual([1008, 632, 40, 8, 32]);
    }
  });

  test("the loaded library is the version the offsets were made for", () => {
    expect(libdb().version).toEqual([...DB_H_VERSION]);
  });

  test("a missing library gives CONFIG with what to install; other code unaffected", () => {
    const script = join(work, "nolib.ts");
    writeFileSync(
      script,
      `import { setLibraryNamesForTest } from "${ROOT}/src/tables/bdb/lib";
       import { hash } from "${ROOT}/src/tables/hash";
       setLibraryNamesForTest(["libdb-does-not-exist.so"]);
       try { hash.open({ type: "hash", name: "/nonexistent/x", write: false, flags: 0 }, {} as never); console.log("opened"); }
       catch (e) { console.log(e.kind + " " + e.message); }`,
    );
    const out = run([process.execPath, script]).out;
    expect(out).toStartWith("config hash:/nonexistent/x: cannot load the Berkeley DB library libdb-5.3.so");
    expect(out).toContain("apt-get install libdb5.3");
  });
});

for (const [type, tt] of TYPES) {
  describe(`${type}: read`, () => {
    const text = "a 1\nB 2\nkey with space value x\nMixed.Case value\n\xc3\xa4\xc3\xb6 8bit\n\xe4\xf6 not-utf8\nlong " + "v".repeat(3000) + "\n";

    test("lookups: NUL conventions, folding, 8-bit keys, misses", () => {
      const file = build(type, text);
      const t = open(tt, file);
      expect(t.flags).toBe(DictFlag.FIXED | DictFlag.TRY0NULL | DictFlag.TRY1NULL);
      expect(t.lookup("a", LOCK)).toBe("1");
      // The first hit decides: postmap on Linux writes the NUL byte.
      expect(t.flags & (DictFlag.TRY0NULL | DictFlag.TRY1NULL)).toBe(DictFlag.TRY1NULL);
      expect(t.lookup("key", 0)).toBe("with space value x");
      expect(t.lookup("B", 0)).toBeUndefined(); // postmap folded it; the request did not ask to fold
      expect(t.lookup("B", DictFlag.FOLD_FIX)).toBe("2");
      expect(t.lookup("MIXED.CASE", DictFlag.FOLD_FIX)).toBe("value");
      expect(t.lookup("\xc3\xa4\xc3\xb6", 0)).toBe("8bit");
      expect(t.lookup("\xe4\xf6", 0)).toBeUndefined(); // postmap skipped the non-UTF-8 line
      expect(t.lookup("long", 0)).toBe("v".repeat(3000));
      expect(t.lookup("nope", LOCK)).toBeUndefined();
      t.close?.();
    });

    test("sequence walks every entry once, like postmap -s", async () => {
      const file = build(type, text);
      const t = open(tt, file);
      const ours = (await walk(t, LOCK)).map(([k, v]) => `${k}\t${v}`);
      const ref = run(["postmap", "-s", `${type}:${file}`]).out.split("\n").filter(Boolean);
      expect(ours.sort()).toEqual(ref.sort());
      // After the end, "next" stays at the end.
      expect(await t.sequence!(1, 0)).toBeUndefined();
      t.close?.();
    });

    test("a file without NUL bytes (TRY0NULL) is read the same way", () => {
      const file = join(work, `plain${++n}`);
      const w = open(tt, file, true, DictFlag.TRY0NULL);
      expect(w.update!("k", "v0", WRITE)).toBe(true);
      w.close?.();
      expect(postmapQ(type, file, "k")).toBe("v0");
      const r = open(tt, file);
      expect(r.lookup("k", 0)).toBe("v0");
      expect(r.flags & (DictFlag.TRY0NULL | DictFlag.TRY1NULL)).toBe(DictFlag.TRY0NULL);
      r.close?.();
    });

    test("sequence next without first: RETRY, no crash", () => {
      const t = open(tt, build(type, "a b\n"));
      expect(() => t.sequence!(1, 0)).toThrow("dict_db_sequence: no cursor");
      t.close?.();
    });

    test("missing file: RETRY with the reference's text; wrong format: RETRY", () => {
      logs = [];
      expect(() => open(tt, join(work, "absent"))).toThrow(new TableError("retry", `open database ${join(work, "absent")}.db: No such file or directory`));
      const other = build(type === "hash" ? "btree" : "hash", "a b\n");
      expect(() => open(tt, other)).toThrow(`open database ${other}.db: Invalid argument`);
      expect(logs.join("\n")).toContain("unexpected file type or format");
    });

    test("a file rebuilt by postmap is seen at once; changed() says so", async () => {
      const file = build(type, "k old\n");
      const t = open(tt, file);
      expect(t.lookup("k", LOCK)).toBe("old");
      expect(t.changed!()).toBe(false);
      writeFileSync(file, "k new\nk2 more\n");
      run(["postmap", `${type}:${file}`]);
      expect(t.changed!()).toBe(true);
      expect(await t.lookup("k", LOCK)).toBe("new");
      expect(await t.lookup("k2", 0)).toBe("more");
      expect(t.changed!()).toBe(false);
      t.close?.();
    });

    test("a file replaced by rename is seen at once too", async () => {
      const file = build(type, "k old\n");
      const t = open(tt, file);
      expect(t.lookup("k", LOCK)).toBe("old");
      const other = build(type, "k renamed\n");
      run(["mv", other + ".db", file + ".db"]);
      expect(t.changed!()).toBe(true);
      expect(await t.lookup("k", LOCK)).toBe("renamed");
      expect(await t.lookup("k", LOCK)).toBe("renamed");
      expect(t.changed!()).toBe(false);
      t.close?.();
    });

    test("with LOCK a lookup waits while another process holds the file exclusively", async () => {
      const file = build(type, "k v\n");
      const t = open(tt, file);
      const holder = Bun.spawn(["flock", "-x", file + ".db", "sleep", "0.6"]);
      await Bun.sleep(150);
      const start = Date.now();
      expect(t.lookup("k", 0)).toBe("v"); // no LOCK: no waiting
      const r = t.lookup("k", LOCK);
      expect(r).toBeInstanceOf(Promise);
      expect(await r).toBe("v");
      expect(Date.now() - start).toBeGreaterThanOrEqual(300);
      await holder.exited;
      t.close?.();
    });

    test("a busy file holds up only its own requests: open and lookups wait, other tables answer", async () => {
      const a = build(type, "k a\n");
      const b = build(type, "k b\n");
      const tb = open(tt, b);
      const holder = Bun.spawn(["flock", "-x", a + ".db", "sleep", "0.5"]);
      await Bun.sleep(150);
      const opening = tt.open({ type: tt.type, name: a, write: false, flags: LOCK }, TEST_CTX);
      expect(opening).toBeInstanceOf(Promise);
      expect(tb.lookup("k", LOCK)).toBe("b"); // not held up
      const ta = asCaller(await opening);
      const order: string[] = [];
      await Promise.all([
        Promise.resolve(ta.lookup("k", LOCK)).then((v) => order.push(`1:${v}`)),
        Promise.resolve(ta.lookup("k", 0)).then((v) => order.push(`2:${v}`)),
      ]);
      expect(order).toEqual(["1:a", "2:a"]);
      await holder.exited;
      const again = ta.lookup("k", LOCK);
      expect(again).toBe("a"); // free again: answered at once
      const holder2 = Bun.spawn(["flock", "-x", a + ".db", "sleep", "0.4"]);
      await Bun.sleep(150);
      const first = ta.lookup("k", LOCK);
      const second = ta.lookup("k", 0); // no LOCK, but queued behind the first: arrival order
      expect(first).toBeInstanceOf(Promise);
      expect(second).toBeInstanceOf(Promise);
      expect(tb.lookup("k", LOCK)).toBe("b");
      expect(await first).toBe("a");
      expect(await second).toBe("a");
      await holder2.exited;
      ta.close?.();
      tb.close?.();
    });

    test("damaged file: RETRY with a warning, the next request after a rebuild works", async () => {
      const file = build(type, Array.from({ length: 2000 }, (_, i) => `key${i} value${i}`).join("\n") + "\n");
      const t = open(tt, file);
      expect(t.lookup("key1000", LOCK)).toBe("value1000");
      const size = statSync(file + ".db").size;
      const fd = openSync(file + ".db", "r+");
      writeSync(fd, Buffer.alloc(size - 8192, 0x5a), 0, size - 8192, 4096);
      closeSync(fd);
      logs = [];
      let failures = 0;
      for (const k of ["key1000", "key1", "key1999"]) {
        try {
          await t.lookup(k, LOCK);
        } catch (e) {
          expect(e).toBeInstanceOf(TableError);
          expect((e as TableError).kind).toBe("retry");
          expect((e as Error).message).toStartWith(`error reading ${file}.db: `);
          failures++;
        }
      }
      expect(failures).toBeGreaterThan(0);
      await expect(Promise.resolve().then(() => walk(t))).rejects.toThrow(`seeking ${file}.db`);
      run(["postmap", `${type}:${file}`]);
      expect(await t.lookup("key1000", LOCK)).toBe("value1000");
      t.close?.();
    });
  });

  describe(`${type}: write`, () => {
    test("update and delete are on disk at once: postmap -q sees them", async () => {
      const file = build(type, "old x\n");
      const t = open(tt, file, true);
      expect(await t.update!("New", "value 1", WRITE | DictFlag.FOLD_FIX)).toBe(true);
      expect(postmapQ(type, file, "new")).toBe("value 1");
      expect(await t.update!("new", "value 2", WRITE)).toBe(true);
      expect(postmapQ(type, file, "new")).toBe("value 2");
      expect(await t.delete!("old", WRITE)).toBe(true);
      expect(postmapQ(type, file, "old")).toBeUndefined();
      expect(await t.delete!("old", WRITE)).toBe(false);
      expect(await t.lookup("new", LOCK)).toBe("value 2");
      t.close?.();
    });

    test("the write service creates a missing file, with NUL bytes as Postfix on Linux", async () => {
      const file = join(work, `new${++n}`);
      const t = open(tt, file, true);
      expect(await t.update!("k", "v", WRITE)).toBe(true);
      expect(postmapQ(type, file, "k")).toBe("v");
      expect(t.flags & (DictFlag.TRY0NULL | DictFlag.TRY1NULL)).toBe(DictFlag.TRY1NULL);
      t.close?.();
    });

    test("a duplicate without DUP_REPLACE is refused with the reference's warning", async () => {
      const file = build(type, "k v\n");
      const t = open(tt, file, true);
      logs = [];
      expect(await t.update!("k", "w", LOCK | DictFlag.SYNC_UPDATE | DictFlag.DUP_WARN)).toBe(false);
      expect(logs).toEqual([`warning: ${file}.db: duplicate entry: "k"`]);
      expect(postmapQ(type, file, "k")).toBe("v");
      t.close?.();
    });

    test("OPEN_LOCK: held exclusively for good (as postscreen's cache through proxywrite)", async () => {
      const file = build(type, "k v\n");
      const t = open(tt, file, true, DictFlag.OPEN_LOCK);
      t.openLock!();
      const probe = () => Bun.spawnSync(["flock", "-n", "-s", file + ".db", "true"]).exitCode;
      expect(probe()).toBe(1);
      expect(await t.lookup("k", LOCK)).toBe("v");
      expect(await t.update!("k2", "v2", WRITE)).toBe(true);
      expect(probe()).toBe(1); // per-request locking did not give it away
      const other = open(tt, file, false);
      expect(() => other.openLock!()).toThrow("Resource temporarily unavailable");
      other.close?.();
      t.close?.();
      expect(probe()).toBe(0);
    });

    for (const mode of ["delete current", "delete previous (dict_cache)"]) {
      test(`sequence with ${mode} in between: no skip, no repeat`, async () => {
        const count = 3000;
        const file = build(type, Array.from({ length: count }, (_, i) => `key${i} value${i}`).join("\n") + "\n");
        const t = open(tt, file, true);
        const seen = new Map<string, number>();
        let prev: string | undefined;
        let r = (await t.sequence!(0, LOCK)) as [string, string] | undefined;
        while (r) {
          seen.set(r[0], (seen.get(r[0]) ?? 0) + 1);
          if (mode === "delete current") expect(await t.delete!(r[0], WRITE)).toBe(true);
          else {
            if (prev !== undefined && Number(prev.slice(3)) % 2 === 0) expect(await t.delete!(prev, WRITE)).toBe(true);
            prev = r[0];
          }
          r = (await t.sequence!(1, LOCK)) as [string, string] | undefined;
        }
        expect(seen.size).toBe(count);
        expect([...seen.values()].every((v) => v === 1)).toBe(true);
        const left = await walk(t);
        if (mode === "delete current") expect(left).toEqual([]);
        else expect(left.length).toBeGreaterThanOrEqual(count / 2 - 1);
        t.close?.();
      });
    }

    test("SIGKILL during a stream of updates: every acknowledged update is there, the file opens", async () => {
      const file = build(type, "seed 0\n");
      const script = join(work, `writer-${type}.ts`);
      writeFileSync(
        script,
        `import { ${type} } from "${ROOT}/src/tables/${type}";
         const t = ${type}.open({ type: "${type}", name: ${JSON.stringify(file)}, write: true, flags: 0 });
         for (let i = 0; ; i++) {
           await t.update("key" + i, "value" + i + "-" + "x".repeat(i % 300), ${WRITE});
           process.stdout.write(i + "\\n");
         }`,
      );
      const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
      let acked = -1;
      let buf = "";
      const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
      const deadline = Date.now() + 20000;
      while (acked < 1000 && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString();
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        if (lines.length) acked = Number(lines[lines.length - 1]);
      }
      child.kill("SIGKILL");
      await child.exited;
      // Acknowledgements that were in the pipe when it died count too.
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString();
      }
      for (const l of buf.split("\n")) if (/^\d+$/.test(l)) acked = Math.max(acked, Number(l));
      expect(acked).toBeGreaterThanOrEqual(1000);
      const t = open(tt, file);
      for (let i = 0; i <= acked; i++) expect(t.lookup("key" + i, LOCK)).toBe("value" + i + "-" + "x".repeat(i % 300));
      expect((await walk(t)).length).toBeGreaterThanOrEqual(acked + 2);
      t.close?.();
      // The real postmap reads it too.
      expect(postmapQ(type, file, "key" + acked)).toBe("value" + acked + "-" + "x".repeat(acked % 300));
    });
  });
}

test("a truncated cache file under the write service: RETRY, never a crash", async () => {
  const file = build("btree", Array.from({ length: 2000 }, (_, i) => `key${i} value${i}`).join("\n") + "\n");
  const t = open(btree, file, true);
  expect(await t.lookup("key5", LOCK)).toBe("value5");
  truncateSync(file + ".db", 4096 * 3);
  const outcomes: string[] = [];
  for (const op of [() => t.lookup("key1999", LOCK), () => t.update!("k", "v", WRITE), () => walk(t)]) {
    try {
      await op();
      outcomes.push("ok");
    } catch (e) {
      expect(e).toBeInstanceOf(TableError);
      outcomes.push((e as TableError).kind);
    }
  }
  expect(outcomes).toContain("retry");
  t.close?.();
  void copyFileSync;
});
