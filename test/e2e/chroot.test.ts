/**
 * Chrooted services: master.cf's chroot column set to "y", so each
 * proxymap process chroots to queue_directory and runs as mail_owner.
 * Inside the jail there is no /tmp to unpack an embedded addon into, no
 * libc.so.6, libpcre2 or libdb path: everything a table type needs must be
 * loaded before the chroot (TableType.prepare, src/tables/prepare.ts). Real `postmap -q`
 * clients ask tables that live inside the jail, of every type whose driver
 * loads something native: lmdb (embedded addon), hash (libdb), pcre
 * (libpcre2), regexp and cidr (libc), plus texthash; regexp and pcre walks
 * also run on worker threads started inside the jail; and an update through
 * proxywrite lands in the lmdb file. Non-ASCII keys of postmap-built tables
 * are found: postmap folded them with ICU when it built the table, and ours
 * folds a request's key with ICU too, loaded before the jail. (Postfix's own
 * clients fold before they ask and open their tables without UTF-8 on the
 * server's side, so a client that opens a table UTF-8 active and leaves
 * folding to the server shows it, as the C proxymap answers it: without ICU
 * the fallback folds "kırmızı" - dotless i, which ICU leaves alone - to
 * "kirmizi", and the entry is missed.)
 *
 * Only ours: Debian's C proxymap loads its lmdb/pcre plugins on first use,
 * which a jail without the plugin files does not allow.
 *
 * Needs Postfix with postfix-lmdb (root), libdb5.3, libpcre2-8 and
 * dist/proxymap (npm run build).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { WireClient } from "../helpers/wire";

let inst: PostfixInstance;
/** Table names as the jailed daemon sees them. */
const T = {
  lmdb: "lmdb:/jail/map",
  hash: "hash:/jail/map",
  pcre: "pcre:/jail/p.pcre",
  regexp: "regexp:/jail/r.regexp",
  cidr: "cidr:/jail/c.cidr",
  texthash: "texthash:/jail/map",
  write: "lmdb:/jail/verify",
  // Asked only by the raw client below, which opens them UTF-8 active.
  foldLmdb: "lmdb:/jail/fold",
  foldHash: "hash:/jail/fold",
  foldTexthash: "texthash:/jail/fold",
};

beforeAll(async () => {
  requirePostfix();
  requireOurBinary();
  const all = Object.entries(T).filter(([k]) => k !== "write").map(([, t]) => `proxy:${t}`).join(" ");
  inst = await PostfixInstance.start({
    impl: "ours",
    label: "chroot",
    chroot: true,
    mainCf: { proxy_read_maps: all, proxy_write_maps: `proxy:${T.write}` },
  });
  const jail = join(inst.queueDir, "jail");
  mkdirSync(jail, { mode: 0o755 });
  await Bun.write(join(jail, "map"), "alpha one\nbeta two\nkırmızı red\nmüller umlaut\n");
  await Bun.write(join(jail, "fold"), "kırmızı red\nmüller umlaut\n");
  await Bun.write(join(jail, "p.pcre"), "/^pc(.*)$/ pcre-$1\n/^long(x+)$/ long-pcre\n");
  await Bun.write(join(jail, "r.regexp"), "/^re(.*)$/ regexp-$1\n/^bk(..)\\1$/ backref-$1\n/^long(x+)$/ long-regexp\n");
  await Bun.write(join(jail, "c.cidr"), "192.0.2.0/24 cidr-hit\n");
  await Bun.write(join(jail, "verify"), "");
  for (const type of ["lmdb", "hash"])
    for (const f of ["map", "fold"]) expect(inst.run("postmap", [`${type}:${join(jail, f)}`]).code).toBe(0);
  expect(inst.run("postmap", [`lmdb:${join(jail, "verify")}`]).code).toBe(0);
  Bun.spawnSync(["chown", "-R", "postfix", jail]);
});

afterAll(() => inst?.stop());

describe("ours under master with chroot = y", () => {
  test("every native-backed table type answers from inside the jail", () => {
    expect(inst.postmapQuery("alpha", `proxy:${T.lmdb}`)).toMatchObject({ code: 0, stdout: "one\n" });
    expect(inst.postmapQuery("beta", `proxy:${T.hash}`)).toMatchObject({ code: 0, stdout: "two\n" });
    expect(inst.postmapQuery("pcX", `proxy:${T.pcre}`)).toMatchObject({ code: 0, stdout: "pcre-X\n" });
    expect(inst.postmapQuery("reY", `proxy:${T.regexp}`)).toMatchObject({ code: 0, stdout: "regexp-Y\n" });
    expect(inst.postmapQuery("192.0.2.7", `proxy:${T.cidr}`)).toMatchObject({ code: 0, stdout: "cidr-hit\n" });
    expect(inst.postmapQuery("alpha", `proxy:${T.texthash}`)).toMatchObject({ code: 0, stdout: "one\n" });
    expect(inst.postmapQuery("absent", `proxy:${T.lmdb}`).code).toBe(1);
    // Unicode case folding inside the jail, as postmap folded the keys.
    for (const t of [T.lmdb, T.hash, T.texthash]) {
      expect(inst.postmapQuery("kırmızı", `proxy:${t}`)).toMatchObject({ code: 0, stdout: "red\n" });
      expect(inst.postmapQuery("MÜLLER", `proxy:${t}`)).toMatchObject({ code: 0, stdout: "umlaut\n" });
    }
    expect(inst.log()).not.toMatch(/warning|fatal|panic|error/);
  }, 60_000);

  test("keys folded by the server (FOLD_FIX in the request) with ICU inside the jail, as postmap folded them", async () => {
    const c = await WireClient.connect(inst.socket("proxymap"));
    const UTF8_REQUEST = 1 << 19;
    const FOLD_FIX = 1 << 14;
    const flags = String(UTF8_REQUEST | FOLD_FIX | 0x40 | 0x1);
    const ask = async (table: string, key: string) => {
      const r = await c.request([["request", "lookup"], ["table", table], ["flags", flags], ["key", Buffer.from(key, "utf8").toString("latin1")]]);
      return r.kind === "reply" ? Object.fromEntries(r.attrs) : r.kind;
    };
    for (const t of [T.foldLmdb, T.foldHash, T.foldTexthash]) {
      expect(await ask(t, "kırmızı")).toEqual({ status: "0", value: "red" });
      expect(await ask(t, "MÜLLER")).toEqual({ status: "0", value: "umlaut" });
    }
    c.close();
    expect(inst.log()).not.toMatch(/warning|fatal|panic|error/);
  }, 60_000);

  test("worker threads start inside the jail: regexp and pcre walks that may not run on the main thread", async () => {
    // A back-reference, and keys over 256 bytes, go to a worker (src/tables/pattern/regexRules.ts).
    const c = await WireClient.connect(inst.socket("proxymap"));
    const long = "long" + "x".repeat(300);
    expect(await c.lookup(T.regexp, "bkabab")).toEqual({ status: "0", value: "backref-ab" });
    expect(await c.lookup(T.regexp, long)).toEqual({ status: "0", value: "long-regexp" });
    expect(await c.lookup(T.pcre, long)).toEqual({ status: "0", value: "long-pcre" });
    c.close();
    expect(inst.log()).not.toMatch(/warning|fatal|panic|error/);
  }, 60_000);

  test("the serving process is jailed in queue_directory and runs as mail_owner", () => {
    const pids = inst.servicePids("proxymap");
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      expect(readlinkSync(`/proc/${pid}/root`)).toBe(inst.queueDir);
      const uid = /Uid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))![1];
      const postfixUid = Bun.spawnSync(["id", "-u", "postfix"]).stdout.toString().trim();
      expect(uid).toBe(postfixUid);
    }
  });

  test("proxywrite updates an lmdb file inside the jail; postmap reads the update", async () => {
    // As verify(8) writes its cache (postmap -i cannot write through proxy:).
    const c = await WireClient.connect(inst.socket("proxywrite"));
    const r = await c.request([["request", "update"], ["table", T.write], ["flags", String(0x40 | 0x100)], ["key", "user@example.com"], ["value", "ok"]]);
    c.close();
    expect(r).toMatchObject({ kind: "reply", attrs: [["status", "0"]] });
    const outside = `lmdb:${join(inst.queueDir, "jail", "verify")}`;
    expect(inst.postmapQuery("user@example.com", outside)).toMatchObject({ code: 0, stdout: "ok\n" });
    expect(inst.log()).not.toMatch(/warning|fatal|panic|error/);
  }, 60_000);
});
