/**
 * stalls.test.ts - no blocking call on the event loop, under a real
 * master(8) running dist/proxymap as its only proxymap process (maxproc 1,
 * so every answer comes from the process that holds the waiting lookup).
 *
 * For each obstacle, one client's lookup waits on it:
 *   (a) lmdb: another process holds the fcntl write lock of FILE.lmdb, as
 *       `postmap lmdb:FILE` does for a whole rebuild;
 *   (b) NSS: unix:passwd.byname asks a source that does not answer: the
 *       instance runs in a private mount namespace (unshare -m) where
 *       nsswitch.conf says "passwd: hesiod files" and libnss_hesiod.so.2 is
 *       a tiny module built here with gcc, which sleeps on "slowuser" while
 *       a flag file exists;
 *   (c) sqlite: a query that runs for about a second (a recursive count);
 *   (d) regexp: a back-reference pattern that glibc needs about a second
 *       for; pcre: five nested-quantifier patterns that each run to PCRE2's
 *       match limit (about 0.2 s each).
 * Meanwhile a new client must get its greeting, a texthash and a static
 * answer within 50 ms, and once the obstacle is gone the waiting lookup
 * must get its right answer (with the reference's warnings, for pcre).
 * Before this change every one of them blocked the event loop: the new
 * client waited for as long as the obstacle lasted.
 *
 * Needs root, Postfix with postfix-lmdb/-sqlite/-pcre, gcc, unshare
 * (util-linux), perl, and a current dist/proxymap (npm run build).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { PostfixInstance } from "../helpers/postfix-instance";
import { requireCommand, requireFile } from "../helpers/require";
import { WireClient } from "../helpers/wire";
import { writeCoolFile } from "../helpers/files";

/** Where Debian keeps the NSS modules (multiarch). */
const NSS_DIR = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"].find((d) => existsSync(join(d, "libnss_files.so.2"))) ?? "/usr/lib/x86_64-linux-gnu";
const HESIOD = join(NSS_DIR, "libnss_hesiod.so.2");

/** A module that answers "slowuser" only, and only once the flag file is gone. */
function nssModuleSource(flag: string): string {
  return `#include <nss.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
static char *put(char **p, const char *s) { char *r = *p; strcpy(r, s); *p += strlen(s) + 1; return r; }
enum nss_status _nss_hesiod_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len, int *errnop) {
  if (strcmp(name, "slowuser") != 0) return NSS_STATUS_NOTFOUND;
  for (int i = 0; i < 3000 && access(${JSON.stringify(flag)}, F_OK) == 0; i++) usleep(10000);
  if (len < 64) { *errnop = ERANGE; return NSS_STATUS_TRYAGAIN; }
  char *p = buf;
  pw->pw_name = put(&p, "slowuser"); pw->pw_passwd = put(&p, "x");
  pw->pw_uid = 4242; pw->pw_gid = 4242;
  pw->pw_gecos = put(&p, "Slow User"); pw->pw_dir = put(&p, "/nonexistent"); pw->pw_shell = put(&p, "/bin/false");
  return NSS_STATUS_SUCCESS;
}
`;
}

const LOOKUP_FLAGS = "524353"; // postmap -q: UTF8_REQUEST | LOCK | DUP_WARN | ...
const HOSTILE_POSIX_KEY = "ab".repeat(20);
const HOSTILE_PCRE_KEY = "a".repeat(25) + "b";

let inst: PostfixInstance;
let nssDir: string;
let flag: string;

beforeAll(async () => {
  requireCommand("gcc", "apt-get install build-essential");
  requireCommand("unshare", "apt-get install util-linux");
  requireCommand("perl", "apt-get install perl");
  requireFile(HESIOD, "apt-get install libc6 (it ships the hesiod NSS module that the test replaces in its own mount namespace)");
  requireFile("/usr/lib/postfix/postfix-lmdb.so", "apt-get install postfix-lmdb");
  requireFile("/usr/lib/postfix/postfix-sqlite.so", "apt-get install postfix-sqlite");
  requireFile("/usr/lib/postfix/postfix-pcre.so", "apt-get install postfix-pcre");

  // The slow NSS module and its flag, readable by the mail owner.
  nssDir = mkdtempSync(join(tmpdir(), "stalls-nss-"));
  chmodSync(nssDir, 0o755);
  flag = join(nssDir, "hold");
  writeFileSync(join(nssDir, "slow.c"), nssModuleSource(flag));
  const cc = Bun.spawnSync(["gcc", "-shared", "-fPIC", "-O2", "-o", join(nssDir, "libnss_slow.so.2"), join(nssDir, "slow.c")], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`gcc failed: ${cc.stderr.toString()}`);
  const system = readFileSync("/etc/nsswitch.conf", "latin1").replace(/^passwd:.*$/m, "");
  writeFileSync(join(nssDir, "nsswitch.conf"), `passwd: hesiod files\n${system}`);
  chmodSync(join(nssDir, "libnss_slow.so.2"), 0o755);

  const mounts = `mount --bind ${join(nssDir, "nsswitch.conf")} /etc/nsswitch.conf && mount --bind ${join(nssDir, "libnss_slow.so.2")} ${HESIOD} && exec "$@"`;
  inst = await PostfixInstance.start({
    impl: "ours",
    label: "stalls",
    proxymapMaxproc: "1",
    masterWrap: ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", mounts, "sh"],
    mainCf: {
      proxy_read_maps: [
        "proxy:texthash:$data_directory/quick",
        "proxy:static:ok",
        "proxy:lmdb:$data_directory/locked",
        "proxy:unix:passwd.byname",
        "proxy:sqlite:$data_directory/slow.cf",
        "proxy:regexp:$data_directory/hostile.regexp",
        "proxy:pcre:$data_directory/hostile.pcre",
      ].join(" "),
    },
  });
  const d = inst.dataDir;
  // Old modification times: no hot-file pause (the reference's) in the measured lookups.
  writeCoolFile(`${d}/quick`, "hello world\n");
  writeCoolFile(`${d}/locked`, "a alpha\n");
  const pm = inst.run("postmap", [`lmdb:${d}/locked`]);
  if (pm.code !== 0) throw new Error(`postmap lmdb: ${pm.stderr}`);
  const db = new Database(`${d}/slow.sqlite`);
  db.run("CREATE TABLE t (k TEXT, v TEXT)");
  db.run("INSERT INTO t VALUES ('fast', 'quick answer'), ('slow', 'slow answer')");
  db.close();
  const count = "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 8000000) SELECT count(*) FROM c)";
  writeCoolFile(`${d}/slow.cf`, `dbpath = ${d}/slow.sqlite\nquery = SELECT v FROM t WHERE k='%s' AND (k <> 'slow' OR ${count} > 0)\n`);
  writeCoolFile(`${d}/hostile.regexp`, "/(.*)(.*)(.*)(.*)(.*)\\5\\4\\3\\2\\1x/ never\n/^(ab)+$/ pairs=$1\n");
  writeCoolFile(`${d}/hostile.pcre`, "/^(a+)+$/ never\n".repeat(5) + "/^(a+)b$/ run=$1\n");
}, 60_000);

afterAll(() => {
  inst?.stop();
  if (nssDir) rmSync(nssDir, { recursive: true, force: true });
});

/**
 * Start the waiting lookup, let it reach its obstacle, then check that a
 * new client is served within 50 ms while it still waits; release the
 * obstacle and return the waiting lookup's reply.
 */
async function whileOneWaits(
  table: string,
  key: string,
  release: () => void | Promise<void>,
  meanwhile?: () => Promise<void>,
): Promise<Record<string, string>> {
  let released = false;
  const free = async () => {
    if (released) return;
    released = true;
    await release();
  };
  const waiter = await WireClient.connect(inst.socket("proxymap"));
  let answered = false;
  const reply = waiter.lookup(table, key).then((r) => {
    answered = true;
    return r;
  });
  try {
    await Bun.sleep(250);
    expect(answered).toBe(false);
    const t0 = performance.now();
    const c = await WireClient.connect(inst.socket("proxymap"), { timeoutMs: 5000 });
    const greeted = performance.now() - t0;
    const texthash = await c.lookup(`texthash:${inst.dataDir}/quick`, "hello");
    const fixed = await c.lookup("static:ok", "anything");
    const served = performance.now() - t0;
    c.close();
    expect(texthash).toEqual({ status: "0", value: "world" });
    expect(fixed).toEqual({ status: "0", value: "ok" });
    expect(answered).toBe(false);
    expect(greeted).toBeLessThan(50);
    expect(served).toBeLessThan(50);
    if (meanwhile) {
      await meanwhile();
      expect(answered).toBe(false);
    }
    await free();
    return await reply;
  } finally {
    // Also when a check failed: the next case must not find the obstacle still there.
    await free();
    waiter.close();
  }
}

/** Threads of a process that are Bun Workers (their name is "Worker"). */
function workerThreads(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).filter((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/comm`, "latin1").trim() === "Worker";
    } catch {
      return false;
    }
  }).length;
}

describe("worker threads only where needed", () => {
  test("a process serving in-memory and lmdb tables runs no worker thread; its first unix lookup starts one", async () => {
    const c = await WireClient.connect(inst.socket("proxymap"));
    expect(await c.lookup(`texthash:${inst.dataDir}/quick`, "hello")).toEqual({ status: "0", value: "world" });
    expect(await c.lookup("static:ok", "x")).toEqual({ status: "0", value: "ok" });
    expect(await c.lookup(`lmdb:${inst.dataDir}/locked`, "a")).toEqual({ status: "0", value: "alpha" });
    const [pid] = await inst.waitServicePids("proxymap");
    expect(workerThreads(pid)).toBe(0);
    expect(await c.lookup("unix:passwd.byname", "root")).toEqual({ status: "0", value: "root:x:0:0:root:/root:/bin/bash" });
    expect(workerThreads(pid)).toBe(1);
    c.close();
  });
});

describe("one event loop for every client: a lookup waiting on something outside the process holds up no one else", () => {
  test("(a) lmdb: another process holds the fcntl write lock (postmap rebuilding the file)", async () => {
    const file = `${inst.dataDir}/locked.lmdb`;
    const holder = Bun.spawn(
      ["perl", "-e", `use Fcntl; open(F, "+<", $ARGV[0]) or die; my $l = pack("s s x4 q q l x4", F_WRLCK, 0, 0, 0, 0); fcntl(F, F_SETLKW, $l) or die "lock: $!"; print "locked\\n"; $| = 1; <STDIN>;`, file],
      { stdin: "pipe", stdout: "pipe" },
    );
    await (holder.stdout as ReadableStream<Uint8Array>).getReader().read();
    const r = await whileOneWaits(`lmdb:${inst.dataDir}/locked`, "a", async () => {
      holder.stdin.end();
      await holder.exited;
    });
    expect(r).toEqual({ status: "0", value: "alpha" });
  }, 30_000);

  test("(b) NSS: unix:passwd.byname asks a source that does not answer (a sleeping NSS module)", async () => {
    writeFileSync(flag, "");
    // Another unix lookup meanwhile is not queued behind the stuck one: the
    // nss pool starts another worker (after 10 ms, plus the worker's start).
    const other = async () => {
      const c = await WireClient.connect(inst.socket("proxymap"));
      const t0 = performance.now();
      expect(await c.lookup("unix:passwd.byname", "daemon")).toMatchObject({ status: "0" });
      expect(performance.now() - t0).toBeLessThan(1000);
      c.close();
    };
    const r = await whileOneWaits("unix:passwd.byname", "slowuser", () => unlinkSync(flag), other);
    expect(r).toEqual({ status: "0", value: "slowuser:x:4242:4242:Slow User:/nonexistent:/bin/false" });
    // Other users still come from the files behind it.
    const c = await WireClient.connect(inst.socket("proxymap"));
    expect(await c.lookup("unix:passwd.byname", "root")).toEqual({ status: "0", value: "root:x:0:0:root:/root:/bin/bash" });
    c.close();
  }, 30_000);

  test("(c) sqlite: a query that runs for a second", async () => {
    const r = await whileOneWaits(`sqlite:${inst.dataDir}/slow.cf`, "slow", () => {});
    expect(r).toEqual({ status: "0", value: "slow answer" });
  }, 30_000);

  test("(d) regexp: a back-reference that glibc matches for a second", async () => {
    const r = await whileOneWaits(`regexp:${inst.dataDir}/hostile.regexp`, HOSTILE_POSIX_KEY, () => {});
    expect(r).toEqual({ status: "0", value: "pairs=ab" });
  }, 30_000);

  test("(d) pcre: nested quantifiers that run to PCRE2's match limit, five times", async () => {
    const mark = inst.logMark();
    const r = await whileOneWaits(`pcre:${inst.dataDir}/hostile.pcre`, HOSTILE_PCRE_KEY, () => {});
    expect(r).toEqual({ status: "0", value: `run=${"a".repeat(25)}` });
    // The reference's warnings, one per rule that ran out.
    await inst.waitForLog(/hostile\.pcre, line 5: match limit exceeded/, 5000, mark);
    const lines = inst.logSince(mark).split("\n").filter((l) => l.includes("match limit exceeded"));
    expect(lines.map((l) => l.replace(/^.*warning: /, ""))).toEqual([1, 2, 3, 4, 5].map((n) => `pcre map ${inst.dataDir}/hostile.pcre, line ${n}: match limit exceeded`));
  }, 30_000);

  test("all of it came from the one proxymap process master started", async () => {
    expect((await inst.waitServicePids("proxymap")).length).toBe(1);
  });
});
