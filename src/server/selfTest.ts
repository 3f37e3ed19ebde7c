/**
 * selfTest.ts - the --self-test mode: report which native parts this
 * executable carries and whether each loads, then exit (0 when all load).
 *
 * Checks: libc through bun:ffi (syslog, chroot, sockets), bun:sqlite, the
 * lmdb package with its native addon (embedded by build.ts; the LMDB version
 * tells the data format: 0.9.29 and older write format 1 like Postfix's
 * liblmdb, 0.9.90 is format 2), PCRE2, POSIX regex, ICU (case folding),
 * mysql2 (pure JavaScript), Bun's built-in PostgreSQL client (pgsql
 * tables), and a worker thread (the entry point build.ts embeds; NSS,
 * sqlite, regexp and pcre run their blocking calls there). Last, every
 * table type's prepare() (src/tables/prepare.ts): the drivers this
 * executable loads only on first use must be in it and load.
 *
 * Reads: nothing. Writes: a report on standard output.
 */
import { getpwuid, preloadLibc } from "../sys/libc";
import { prepared, typesWithPrepare } from "../tables/prepare";
import { TABLE_TYPES } from "../tables/registry";
import { pcre2Missing } from "../sys/pcre2";
import { preloadRegex } from "../sys/regex";
import { OffloadPool } from "../tables/offload/pool";
import { icuFoldCase, preloadIcu } from "../tables/icu";
import { loadedFrom } from "../sys/embeddedAddon";

type Check = [name: string, run: () => string | Promise<string>];

const CHECKS: Check[] = [
  ["runtime", () => `bun ${Bun.version} ${process.platform}-${process.arch}`],
  [
    "libc (bun:ffi)",
    () => {
      preloadLibc();
      const me = getpwuid(process.getuid?.() ?? 0);
      return `loaded (getpwuid: ${me ? me.name : "no entry"})`;
    },
  ],
  [
    "sqlite (bun:sqlite)",
    async () => {
      const { Database } = await import("bun:sqlite");
      const db = new Database(":memory:");
      const row = db.query("select sqlite_version() as v").get() as { v: string };
      db.close();
      return `SQLite ${row.v}`;
    },
  ],
  [
    "lmdb (native addon)",
    async () => {
      const lmdb = (await import("lmdb")) as unknown as { version?: { versionString: string; patch: number; minor: number } };
      const v = lmdb.version;
      if (!v) return "loaded (version unknown)";
      const format = v.minor === 9 && v.patch >= 90 ? 2 : 1;
      const from = loadedFrom.get("lmdb") ?? "node_modules (running from the sources)";
      return `${v.versionString}, data format ${format}${format === 1 ? " (Postfix-compatible)" : " (NOT Postfix-compatible)"}, loaded from ${from}`;
    },
  ],
  [
    "pcre (libpcre2-8, system library)",
    () => {
      const missing = pcre2Missing();
      if (missing) throw new Error(missing);
      return "loaded";
    },
  ],
  [
    "regexp (libc regcomp)",
    () => {
      preloadRegex();
      return "loaded";
    },
  ],
  [
    "worker threads",
    async () => {
      const pool = new OffloadPool("self-test", 1);
      const t0 = performance.now();
      try {
        const answer = await pool.call<string>("offload.ping", null);
        if (answer !== "pong") throw new Error(`unexpected answer ${answer}`);
        return `started and answered in ${(performance.now() - t0).toFixed(0)} ms`;
      } finally {
        pool.close();
      }
    },
  ],
  [
    "icu (libicuuc, system library: Unicode case folding)",
    () => {
      if (!preloadIcu()) throw new Error("libicuuc not found or unusable (apt-get install libicu72)");
      const folded = icuFoldCase(Buffer.from("STRA\u1e9eE", "utf8"));
      return `loaded (STRA\u1e9eE folds to ${folded?.toString("utf8")})`;
    },
  ],
  [
    "mysql2",
    async () => {
      const m = (await import("mysql2")) as unknown as { createPool?: unknown };
      return typeof m.createPool === "function" ? "loaded" : "loaded (no createPool?)";
    },
  ],
  [
    "postgres (Bun's built-in SQL client, for pgsql)",
    () => {
      // Read only here: the getter loads Bun's SQL clients, which costs start-up time.
      if (typeof Bun.SQL !== "function") throw new Error("Bun.SQL is missing");
      return "built in";
    },
  ],
  [
    "table types (prepare: code loaded on first use, libraries)",
    async () => {
      const t0 = performance.now();
      const failed: string[] = [];
      for (const tt of TABLE_TYPES) {
        try {
          await prepared(tt, { jailed: true });
        } catch (e) {
          failed.push(`${tt.type}: ${(e as Error).message}`);
        }
      }
      if (failed.length) throw new Error(failed.join("; "));
      const names = typesWithPrepare();
      return `${TABLE_TYPES.length} types, ${names.length} prepared (${names.join(", ")}) in ${(performance.now() - t0).toFixed(0)} ms`;
    },
  ],
];

/** Run every check, print one line each; the exit status. */
export async function selfTest(out: (line: string) => void = (l) => process.stdout.write(l + "\n")): Promise<number> {
  let failed = 0;
  for (const [name, run] of CHECKS) {
    try {
      out(`${name}: ${await run()}`);
    } catch (e) {
      failed++;
      out(`${name}: FAILED: ${(e as Error).message}`);
    }
  }
  out(failed ? `self-test: ${failed} check(s) failed` : "self-test: ok");
  return failed ? 1 : 0;
}
