/**
 * hash: and btree: through the dict layer (src/tables/dict.ts), the way the
 * service uses them: statuses and warnings for a damaged file, a walk
 * interrupted by an error, a file rebuilt under the read service, and the
 * write service's update/delete statuses.
 *
 * Needs Postfix (postmap) and libdb5.3; fails with the install hint otherwise.
 */
import { afterAll, beforeEach, describe, expect, mock, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import * as registry from "../../src/tables/registry";
import { hash } from "../../src/tables/hash";
import { btree } from "../../src/tables/btree";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict } from "../../src/tables/dict";
import { Status } from "../../src/protocol/constants";
import { setLogSinks } from "../../src/log/msg";

if (!registry.findTableType("hash") || !registry.findTableType("btree")) {
  const find = registry.findTableType;
  mock.module("../../src/tables/registry", () => ({
    ...registry,
    findTableType: (t: string) => (t === "hash" ? hash : t === "btree" ? btree : find(t)),
  }));
}

const HINT = "apt-get install postfix libdb5.3";
const work = mkdtempSync(join(tmpdir(), "bdbdict-"));
afterAll(async () => {
  await closeAllDicts();
  rmSync(work, { recursive: true, force: true });
});
let logs: string[] = [];
setLogSinks([{ write: (_s, line) => logs.push(line) }]);
beforeEach(async () => {
  await closeAllDicts();
  logs = [];
});

let n = 0;
function build(type: string, text: string): string {
  const file = join(work, `m${++n}`);
  writeFileSync(file, text);
  const p = Bun.spawnSync(["postmap", `${type}:${file}`], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } });
  if (p.exitCode !== 0) throw new Error(`postmap failed (${HINT}): ${p.stderr.toString()}`);
  return file;
}

const LOCK = 64;
const WRITE = 64 | 256 | 128;

for (const type of ["hash", "btree"]) {
  describe(`${type} through dict.ts`, () => {
    test("damaged file: RETRY with the reference's text as a warning; repaired file: OK", async () => {
      const file = build(type, Array.from({ length: 2000 }, (_, i) => `key${i} value${i}`).join("\n") + "\n");
      const d = await openDict(`${type}:${file}`, false, 0);
      expect((await dictGet(d, "key7", LOCK)).value).toBe("value7");
      const size = statSync(file + ".db").size;
      const fd = openSync(file + ".db", "r+");
      writeSync(fd, Buffer.alloc(size - 8192, 0x5a), 0, size - 8192, 4096);
      closeSync(fd);
      const statuses: number[] = [];
      for (const k of ["key1000", "key1", "key1999"]) statuses.push((await dictGet(d, k, LOCK)).status);
      expect(statuses).toContain(Status.RETRY);
      expect(logs.some((l) => l.startsWith(`warning: error reading ${file}.db: `))).toBe(true);
      // A walk that fails, then "next": RETRY again, no crash (the reference panics: "no cursor").
      expect((await dictSeq(d, 0, 0)).status).toBe(Status.RETRY);
      logs = [];
      expect((await dictSeq(d, 1, 0)).status).toBe(Status.RETRY);
      expect(logs).toContain("warning: dict_db_sequence: no cursor");
      build(type, ""); // (another file) keeps the numbering simple
      Bun.spawnSync(["postmap", `${type}:${file}`]);
      const again = await openDict(`${type}:${file}`, false, 0);
      expect(await dictGet(again, "key1000", LOCK)).toMatchObject({ status: Status.OK, value: "value1000" });
    });

    test("read service: a rebuild by postmap is answered at once", async () => {
      const file = build(type, "k old\n");
      const d = await openDict(`${type}:${file}`, false, 0);
      expect((await dictGet(d, "k", LOCK)).value).toBe("old");
      writeFileSync(file, "k new\n");
      Bun.spawnSync(["postmap", `${type}:${file}`]);
      const d2 = await openDict(`${type}:${file}`, false, 0);
      expect((await dictGet(d2, "k", LOCK)).value).toBe("new");
    });

    test("write service: statuses of update, delete, walk", async () => {
      const file = build(type, "a 1\n");
      const d = await openDict(`${type}:${file}`, true, 0);
      expect((await dictPut(d, "b", "2", WRITE)).status).toBe(Status.OK);
      expect((await dictDel(d, "a", WRITE)).status).toBe(Status.OK);
      expect((await dictDel(d, "a", WRITE)).status).toBe(Status.NOKEY);
      expect(await dictSeq(d, 0, LOCK)).toMatchObject({ status: Status.OK, key: "b", value: "2" });
      expect(await dictSeq(d, 1, LOCK)).toMatchObject({ status: Status.NOKEY, key: "", value: "" });
    });

    test("missing library: CONFIG, other types unaffected (child process)", () => {
      const root = join(import.meta.dir, "../..");
      const script = join(work, `nolib-${type}.test.ts`);
      writeFileSync(
        script,
        `import { mock } from "bun:test";
         import { setLibraryNamesForTest } from "${root}/src/tables/bdb/lib";
         import { ${type} } from "${root}/src/tables/${type}";
         import * as registry from "${root}/src/tables/registry";
         import { setLogSinks } from "${root}/src/log/msg";
         const find = registry.findTableType;
         mock.module("${root}/src/tables/registry", () => ({ ...registry, findTableType: (t) => (t === "${type}" ? ${type} : find(t)) }));
         const { openDict, dictGet } = await import("${root}/src/tables/dict");
         const logs = []; setLogSinks([{ write: (_s, l) => logs.push(l) }]);
         setLibraryNamesForTest(["libdb-missing.so"]);
         const d = await openDict("${type}:/x/y", false, 0);
         const i = await openDict("inline:{a=b}", false, 0);
         console.log(JSON.stringify({ bdb: (await dictGet(d, "a", 0)).status, inline: (await dictGet(i, "a", 0)).value, logs }));`,
      );
      const p = Bun.spawnSync([process.execPath, "test", script]);
      const out = p.stdout.toString() + p.stderr.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) throw new Error(`child failed: ${out}`);
      const r = JSON.parse(line);
      expect(r.bdb).toBe(Status.CONFIG);
      expect(r.inline).toBe("b");
      expect(r.logs.join("\n")).toContain("apt-get install libdb5.3");
    });
  });
}
