/**
 * filedb-crash-child.ts - the victim of the lmdb crash test
 * (test/unit/lmdb.test.ts): opens lmdb:FILE as the write service does and
 * stores key0, key1, ... forever, writing "ok N" to stdout (unbuffered,
 * with writeSync) only after update N returned success, i.e. after its
 * synchronous commit. The test kills it with SIGKILL mid-stream and checks
 * that every acknowledged key is in the file.
 *
 *   bun bench/filedb-crash-child.ts FILE
 */
import { TEST_CTX } from "../test/helpers/driver-caller";
import { writeSync } from "node:fs";
import { lmdb } from "../src/tables/lmdb";
import { DictFlag } from "../src/protocol/constants";
import type { Table } from "../src/tables/table";

const file = process.argv[2];
if (!file) throw new Error("usage: bun bench/filedb-crash-child.ts FILE");
const t = (await lmdb.open({ type: "lmdb", name: file, write: true, flags: 0 }, TEST_CTX)) as Table;
const flags = DictFlag.LOCK | DictFlag.SYNC_UPDATE | DictFlag.DUP_REPLACE | DictFlag.FOLD_FIX;
writeSync(1, "ready\n");
for (let i = 0; ; i++) {
  if (t.update!(`key${i}`, `value${i} ${"v".repeat(i % 200)}`, flags) === true) writeSync(1, `ok ${i}\n`);
}
