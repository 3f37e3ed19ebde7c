/**
 * robust.ts - shared setup of the robustness suites: one private instance
 * whose proxymap is ours, approving a mix of tables, and the checks every
 * suite makes afterwards (no process of the service died; its memory stayed
 * bounded).
 *
 * Deaths are read from master's own log lines ("process ... pid N exit
 * status S" / "killed by signal S"; a clean exit after max_idle or max_use
 * logs nothing) and from fatal/panic lines of the service itself.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostfixInstance, type InstanceOptions } from "./postfix-instance";
import { requireCommand, requireOurBinary, requirePostfix } from "./require";
import { encodeAttrs, type Attr } from "./wire";
import { PROBE_TABLE } from "../diff/corpus";
import { writeCoolFile } from "./files";
import { Database } from "bun:sqlite";

export { PROBE_REPLY, PROBE_REQUEST, PROBE_TABLE } from "../diff/corpus";

export interface RobustSetup {
  inst: PostfixInstance;
  dir: string;
  /** Approved for the read service. */
  tables: string[];
  /** An lmdb table made by the real postmap (PROTOCOL.md section 7: a 5,000-byte key). */
  lmdb: string;
  /** An empty texthash table (`next` after `first` kills the reference). */
  empty: string;
  cleanup(): void;
}

/** Start ours under master with tables for robustness tests. */
export async function startRobust(label: string, extra: Partial<InstanceOptions> = {}): Promise<RobustSetup> {
  requirePostfix();
  // ROBUST_IMPL=c runs a suite against the C reference: a control showing what the suite catches.
  const impl = process.env.ROBUST_IMPL === "c" ? "c" : "ours";
  if (impl === "ours") requireOurBinary();
  requireCommand("/usr/lib/postfix/postfix-lmdb.so", "apt-get install postfix-lmdb");
  const dir = mkdtempSync(join(tmpdir(), `pfx-${label}-tables-`));
  chmodSync(dir, 0o755);
  const lines: string[] = [];
  for (let i = 0; i < 200; i++) lines.push(`key${i}\tvalue-${i}`);
  writeFileSync(join(dir, "th"), lines.join("\n") + "\n", { mode: 0o644 });
  writeFileSync(join(dir, "empty"), "", { mode: 0o644 });
  writeFileSync(join(dir, "db"), "alice alice@example.com\nbob bob@example.com\n", { mode: 0o644 });
  const lmdb = `lmdb:${join(dir, "db")}`;
  const empty = `texthash:${join(dir, "empty")}`;
  // Tables whose lookups may run on worker threads (src/tables/offload/):
  // a back-reference and long keys send regexp walks there, a match past the
  // main thread's limit sends pcre walks there, every sqlite query goes there.
  // (No back-reference that could run for hours on a 300 KB key: the reference would too.)
  writeCoolFile(join(dir, "re"), "/^key(1)\\1/ ones\n/^(key)([0-9]+)$/ $1-$2\n/^(k)(e)y\\2?/ key-like\n");
  writeCoolFile(join(dir, "pcre"), "/^(a+)+$/ never\n/^(key)(\\d+)$/ $1-$2\n/^(\\w+\\s?)+$/ words\n");
  const db = new Database(join(dir, "s.sqlite"));
  db.run("CREATE TABLE t (k TEXT, v TEXT)");
  db.run("INSERT INTO t VALUES ('key1', 'one'), ('root', 'sql root')");
  db.close();
  chmodSync(join(dir, "s.sqlite"), 0o644);
  writeCoolFile(join(dir, "s.cf"), `dbpath = ${join(dir, "s.sqlite")}\nquery = SELECT v FROM t WHERE k='%s'\n`);
  const blocking = [`regexp:${join(dir, "re")}`, `pcre:${join(dir, "pcre")}`, `sqlite:${join(dir, "s.cf")}`];
  const tables = [PROBE_TABLE, `texthash:${join(dir, "th")}`, empty, "inline:{a=1,b=2}", "static:foo", "fail:oops", "unix:passwd.byname", "unix:group.byname", lmdb, "static:", "environ:", ...blocking];
  const inst = await PostfixInstance.start({
    impl,
    label,
    ...extra,
    mainCf: {
      proxy_read_maps: tables.map((t) => `proxy:${t}`).join(" "),
      proxy_write_maps: [PROBE_TABLE, "static:foo", "inline:{a=1,b=2}", `texthash:${join(dir, "th")}`, lmdb].map((t) => `proxy:${t}`).join(" "),
      ...(extra.mainCf ?? {}),
    },
  });
  // The lmdb file is made by the real postmap with the instance's own main.cf
  // (a machine installed with "No configuration" has no /etc/postfix/main.cf).
  const mk = inst.run("postmap", [lmdb]);
  if (mk.code !== 0) {
    inst.stop();
    throw new Error(`postmap ${lmdb} failed: ${mk.stderr} (apt-get install postfix-lmdb)`);
  }
  chmodSync(join(dir, "db.lmdb"), 0o644);
  // proxywrite (running as mail_owner) updates it.
  const pf = PostfixInstance.postfixUser();
  chownSync(join(dir, "db.lmdb"), pf.uid, pf.gid);
  return {
    inst,
    dir,
    tables,
    lmdb,
    empty,
    cleanup() {
      inst.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Master's log lines about service processes that ended abnormally, and fatal/panic lines. */
export function deaths(inst: PostfixInstance): string[] {
  return inst
    .log()
    .split("\n")
    .filter((l) => /postfix\/master\[\d+\]: warning: process \S*proxymap pid \d+ (exit status|killed by signal)/.test(l) || /postfix\/proxy(map|write)\[\d+\]: (fatal|panic):/.test(l));
}

/** A 3.7-shape request list. */
export function req(request: string, table: string, flags: number | string, rest: Attr[] = []): Buffer {
  return encodeAttrs([["request", request], ["table", table], ["flags", String(flags)], ...rest]);
}

export const LOOKUP_FLAGS = 524353;
