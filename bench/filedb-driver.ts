/**
 * bench/filedb-driver.ts - the cost of the lmdb and cdb drivers alone, in
 * this process (no sockets, no service): lookups/s with and without the
 * LOCK flag, on a postmap-made table.
 *
 *   bun bench/filedb-driver.ts [keys] [seconds]     (defaults 100000, 2)
 */
import { TEST_CTX } from "../test/helpers/driver-caller";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { lmdb } from "../src/tables/lmdb";
import { cdb } from "../src/tables/cdb";
import type { Table } from "../src/tables/table";

const KEYS = Number(process.argv[2] ?? 100000);
const SECONDS = Number(process.argv[3] ?? 2);
const dir = mkdtempSync("/tmp/filedb-driver-");
try {
  const file = `${dir}/map`;
  writeFileSync(file, Array.from({ length: KEYS }, (_, i) => `user${i}@example.com value-${i}`).join("\n") + "\n");
  for (const tt of [lmdb, cdb]) {
    Bun.spawnSync(["postmap", `${tt.type}:${file}`]);
    const t = tt.open({ type: tt.type, name: file, write: false, flags: 0 }, TEST_CTX) as Table;
    for (const [label, flags] of [["LOCK", 64], ["no lock", 0]] as const) {
      let n = 0;
      let miss = 0;
      const end = performance.now() + SECONDS * 1000;
      while (performance.now() < end) {
        for (let k = 0; k < 1000; k++) if (t.lookup(`user${(n++ * 7919) % KEYS}@example.com`, flags) === undefined) miss++;
      }
      console.log(`${tt.type}\t${label}\t${(n / SECONDS).toFixed(0)} lookups/s\tmisses ${miss}`);
    }
    t.close?.();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
