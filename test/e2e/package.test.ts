/**
 * package.test.ts - the Debian package (scripts/package.ts, packaging/) on
 * the real machine, over Debian's real postfix package.
 *
 * 1. Builds the .deb three times from one copy of dist/proxymap: twice as
 *    package.json's version (the two must be the same bytes: reproducible)
 *    and once as VERSION+1 (PROXYMAP_DEB_VERSION) for the upgrade. Checks
 *    its fields and contents (ours at /usr/lib/proxymap-bun/proxymap, its
 *    native addon beside it, nothing at Postfix's path), and that it carries
 *    dist/proxymap unchanged. lintian runs on it meanwhile: no error,
 *    warning or info may be left (packaging/lintian-overrides says why each
 *    override is there).
 * 2. A private Postfix instance (test/helpers/postfix-instance.ts) whose
 *    proxymap service runs /usr/lib/postfix/sbin/proxymap, the path the
 *    package diverts, with a secondary instance (multi_instance_directories);
 *    dpkg runs with MAIL_CONFIG naming the primary, so the maintainer
 *    scripts' `postfix status` / `postfix reload` act on it and never on the
 *    system's Postfix. Real `postmap -q KEY proxy:texthash:...` clients ask
 *    it; which program answered is told by the inode of /proc/PID/exe of the
 *    instance's proxymap processes.
 *    install -> ours answers (and postinst reloaded), Postfix's file kept
 *    unchanged at the diverted name, a link to ours at the path; upgrade ->
 *    the new file serves; remove -> the C binary back bit for bit (`dpkg -V
 *    postfix` as before), the C program answers; purge -> the saved
 *    defaults file gone from both instances' data_directory; install again
 *    -> ours; purge. All along, a watcher process checks the path as fast as
 *    it can: it must never find it without an executable (master would fail
 *    to start a proxymap and throttle the service for 60 s).
 * 3. Refusals: an installed executable whose --self-test fails (its native
 *    addon removed between unpack and configure), and a secondary instance
 *    whose proxy_read_maps names a table type ours does not serve: configure
 *    fails with the reason, Postfix's proxymap stays at the path, undiverted.
 *
 * The machine must end as it was found, even when a step fails: afterAll
 * purges the package and removes our diversion, and loading this file
 * removes what a run that died may have left (before reference.ts is read). Our package is installed only for the few
 * seconds of step 2 (other tests use the C binary meanwhile, through
 * test/helpers/reference.ts). Run as root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DIVERTED,
  INSTALLED,
  NATIVE_DIR,
  PACKAGE,
  TARGET,
  diversion,
  dpkg,
  dpkgTry,
  isOurLink,
  startWatcher,
  exeOf,
  fileId,
  makeReloadable,
  md5,
  packageState,
  postfixMd5,
  removeStale,
  sha256,
  snapshot,
  verifyPostfix,
  type MachineState,
} from "../helpers/deb";
import type { PostfixInstance as Instance } from "../helpers/postfix-instance";

// Before anything imports test/helpers/reference.ts (postfix-instance.ts and
// require.ts do): a package or diversion that a dead run left would make it
// name the diverted C binary, which removing the leftovers takes away.
const stale = removeStale();
const { PostfixInstance } = await import("../helpers/postfix-instance");
const { REPO_ROOT, requireCommand, requireOurBinary, requirePostfix } = await import("../helpers/require");

const DPKG_DEV = "apt-get install dpkg-dev (dpkg-gencontrol, dpkg-shlibdeps)";
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const NEXT = `${VERSION}+1`;

let work = "";
let binary = "";
let binarySha = "";
let initial: MachineState | undefined;
let cFile = { dev: 0, ino: 0, size: 0 };
let inst: Instance | undefined;
let table = "";
/** The secondary instance's configuration and data directories. */
let second = { etc: "", data: "" };
const debs = { v1: "", v1again: "", v2: "" };
let lintian: Promise<{ code: number; out: string }> | undefined;

function run(argv: string[], env: Record<string, string> = {}): { code: number; out: string } {
  const r = Bun.spawnSync(argv, { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C.UTF-8", TZ: "UTC", ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString() + r.stderr.toString() };
}

async function runAsync(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(argv, {
    cwd: REPO_ROOT,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C.UTF-8", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [o, e, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: o + e };
}

/** `bun scripts/package.ts` into DIR; resolves to the .deb's path. */
async function buildDeb(dir: string, epoch: string, version?: string): Promise<string> {
  const env: Record<string, string> = { SOURCE_DATE_EPOCH: epoch, ...(version ? { PROXYMAP_DEB_VERSION: version } : {}) };
  const r = await runAsync([process.execPath, join(REPO_ROOT, "scripts", "package.ts"), "--binary", binary, "--out", dir], env);
  if (r.code !== 0) throw new Error(`scripts/package.ts failed (exit ${r.code}):\n${r.out}`);
  const arch = run(["dpkg", "--print-architecture"]).out.trim();
  return join(dir, `${PACKAGE}_${version ?? VERSION}_${arch}.deb`);
}

function query(): { code: number; stdout: string; stderr: string } {
  return inst!.postmapQuery("k1", `proxy:texthash:${table}`);
}

/**
 * Ask until the instance's proxymap processes all run `want` (a file's dev
 * and inode) and a real postmap client is answered; returns their PIDs.
 */
async function servedBy(want: { dev: number; ino: number }, what: string): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  let last = "";
  for (;;) {
    const r = query();
    const pids = inst!.servicePids("proxymap");
    const ids = pids.map(exeOf);
    const all = pids.length > 0 && ids.every((id) => id !== undefined && id.dev === want.dev && id.ino === want.ino);
    if (r.code === 0 && r.stdout === "v-one\n" && all) {
      // Still the same processes after the answer: they are the ones that gave it.
      const again = inst!.servicePids("proxymap").map(exeOf);
      if (again.length && again.every((id) => id !== undefined && id.dev === want.dev && id.ino === want.ino)) return pids;
    }
    last = `postmap exit ${r.code} stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}; proxymap PIDs ${pids.join(",")} run ${JSON.stringify(ids)}`;
    if (Date.now() > deadline) throw new Error(`the proxymap service was not answered by ${what} within 10 s: ${last}\n${inst!.log().slice(-2000)}`);
    await Bun.sleep(100);
  }
}

/** The secondary instance's main.cf, with these proxy_read_maps. */
function writeSecond(readMaps: string): void {
  writeFileSync(
    join(second.etc, "main.cf"),
    `compatibility_level = 3.6\nmulti_instance_name = postfix-second\nmulti_instance_enable = no\n` +
      `data_directory = ${second.data}\nproxy_read_maps = ${readMaps}\n`,
  );
  writeFileSync(join(second.etc, "master.cf"), "");
}

function reloads(): number {
  return (inst!.log().match(/postfix\/master\[\d+\]: reload -- /g) ?? []).length;
}

describe("Debian package: build, lintian, install over postfix, upgrade, remove, purge", () => {
  beforeAll(() => {
    requirePostfix();
    requireOurBinary();
    requireCommand("dpkg-deb", "apt-get install dpkg");
    requireCommand("dpkg-gencontrol", DPKG_DEV);
    requireCommand("dpkg-shlibdeps", DPKG_DEV);
    requireCommand("lintian", "apt-get install lintian");
    if (stale.length) console.warn(`package.test: ${stale.join("; ")}`);
    initial = snapshot();
    // The file at the path must be Debian's own C proxymap before we start.
    if (md5(TARGET) !== postfixMd5())
      throw new Error(`${TARGET} is not the file the postfix package installed: apt-get install --reinstall postfix`);
    cFile = fileId(TARGET);

    work = mkdtempSync(join(tmpdir(), "proxymap-deb-test-"));
    chmodSync(work, 0o755);
    // One snapshot of dist/proxymap: other tests may rebuild it meanwhile.
    binary = join(work, "proxymap");
    copyFileSync(join(REPO_ROOT, "dist", "proxymap"), binary);
    binarySha = sha256(binary);
    table = join(work, "map");
    writeFileSync(table, "k1 v-one\n", { mode: 0o644 });
    second = { etc: join(work, "second", "etc"), data: join(work, "second", "data") };
    for (const d of [second.etc, second.data]) mkdirSync(d, { recursive: true, mode: 0o755 });
    writeSecond(`proxy:texthash:${table}`);
  });

  afterAll(() => {
    const problems: string[] = [];
    try {
      if (packageState().status) dpkg(["--purge", PACKAGE], inst?.configDir ?? "");
    } catch (e) {
      problems.push((e as Error).message);
    }
    try {
      removeStale();
    } catch (e) {
      problems.push((e as Error).message);
    }
    inst?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    if (initial) {
      const now = snapshot();
      if (JSON.stringify(now) !== JSON.stringify(initial))
        problems.push(`machine state differs from the start:\nbefore ${JSON.stringify(initial)}\nafter  ${JSON.stringify(now)}`);
    }
    if (problems.length) throw new Error(`package.test cleanup: ${problems.join("\n")}`);
  });

  test("npm run package: a reproducible .deb that carries dist/proxymap", async () => {
    const git = run(["git", "-C", REPO_ROOT, "log", "-1", "--format=%ct"]);
    // One epoch for all three builds (a commit landing meanwhile must not change it).
    const epoch = git.code === 0 && /^\d+$/.test(git.out.trim()) ? git.out.trim() : "1795685762";
    [debs.v1, debs.v1again, debs.v2] = await Promise.all([
      buildDeb(join(work, "a"), epoch),
      buildDeb(join(work, "b"), epoch),
      buildDeb(join(work, "c"), epoch, NEXT),
    ]);
    // lintian runs while the package goes through dpkg in the next test.
    lintian = runAsync(["lintian", "--pedantic", "--display-info", "--display-experimental", debs.v1]);

    expect(sha256(debs.v1again)).toBe(sha256(debs.v1));
    expect(sha256(debs.v2)).not.toBe(sha256(debs.v1));

    const field = (deb: string, name: string) => run(["dpkg-deb", "--field", deb, name]).out.trim();
    expect(field(debs.v1, "Package")).toBe(PACKAGE);
    expect(field(debs.v1, "Version")).toBe(VERSION);
    expect(field(debs.v2, "Version")).toBe(NEXT);
    expect(field(debs.v1, "Depends")).toMatch(/^libc6 \(>= [0-9.]+\), libstdc\+\+6 \(>= [0-9.]+\), libdb5\.3, postfix \(>= 3\.5\)$/);

    const list = run(["dpkg-deb", "--contents", debs.v1]).out.trim().split("\n");
    const paths = list.map((l) => l.split(/\s+/).pop());
    expect(paths).toEqual([
      "./",
      "./usr/",
      "./usr/lib/",
      "./usr/lib/proxymap-bun/",
      "./usr/lib/proxymap-bun/native/",
      expect.stringMatching(/^\.\/usr\/lib\/proxymap-bun\/native\/lmdb-[0-9a-f]{16}\.node$/),
      "./usr/lib/proxymap-bun/proxied-types.awk",
      "./usr/lib/proxymap-bun/proxymap",
      "./usr/share/",
      "./usr/share/doc/",
      "./usr/share/doc/proxymap-bun/",
      "./usr/share/doc/proxymap-bun/changelog.gz",
      "./usr/share/doc/proxymap-bun/copyright",
      "./usr/share/lintian/",
      "./usr/share/lintian/overrides/",
      "./usr/share/lintian/overrides/proxymap-bun",
      "./usr/share/man/",
      "./usr/share/man/man8/",
      "./usr/share/man/man8/proxymap-bun.8.gz",
    ]);
    // Owned by root, one timestamp, the executable with its size and mode.
    const when = new Date(Number(epoch) * 1000).toISOString().slice(0, 16).replace("T", " ");
    for (const l of list) {
      expect(l).toContain(" root/root ");
      expect(l).toContain(` ${when} `);
    }
    expect(list[7]).toMatch(new RegExp(`^-rwxr-xr-x root/root +${statSync(binary).size} `));
    expect(list[5]).toMatch(/^-rw-r--r-- root\/root /);
    // The packaged executable is dist/proxymap, byte for byte.
    const tar = Bun.spawnSync(["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/lib/proxymap-bun/proxymap | sha256sum', "sh", debs.v1], { stdout: "pipe" });
    expect(tar.stdout.toString().split(" ")[0]).toBe(binarySha);
    // The maintainer scripts are in the control archive (no preinst: nothing changes before configure).
    const control = run(["dpkg-deb", "--info", debs.v1]).out;
    for (const s of ["postinst", "prerm", "postrm", "md5sums"]) expect(control).toContain(` ${s}`);
    expect(control).not.toContain(" preinst");
  }, 60_000);

  test("install over Debian's postfix, upgrade, remove, purge, install again: an executable at the path all along", async () => {
    expect(debs.v1).not.toBe("");
    inst = await PostfixInstance.start({
      impl: { path: TARGET }, // the path the package diverts: C now, ours once installed
      label: "deb",
      mainCf: { proxy_read_maps: `proxy:texthash:${table}`, multi_instance_directories: second.etc },
      lifetimeSec: 300,
    });
    makeReloadable(inst.queueDir);

    // Before: the C proxymap answers.
    await servedBy(cFile, "the C proxymap (before install)");
    const watch = await startWatcher(TARGET);
    let watched: Awaited<ReturnType<typeof watch.stop>> | undefined;
    try {
      // --- install: Postfix's file kept at the diverted name, a link to ours at the path, Postfix reloaded.
      let r0 = reloads();
      dpkg(["--install", debs.v1], inst.configDir);
      expect(packageState()).toEqual({ status: "ii", version: VERSION });
      expect(diversion()).toEqual({ by: PACKAGE, truename: DIVERTED });
      expect(fileId(DIVERTED)).toEqual(cFile); // the same file, not a copy
      expect(sha256(DIVERTED)).toBe(initial!.targetSha);
      expect(readlinkSync(TARGET)).toBe(INSTALLED);
      expect(sha256(TARGET)).toBe(binarySha);
      expect(verifyPostfix()).toBe(initial!.verify);
      expect(reloads()).toBe(r0 + 1); // postinst: postfix status, then postfix reload
      // The installed executable loads its addon from the package's directory.
      const st = run([INSTALLED, "--self-test"]);
      expect(st.out).toMatch(new RegExp(`lmdb \\(native addon\\): .*loaded from ${NATIVE_DIR}/lmdb-[0-9a-f]{16}\\.node`));
      expect(st.code).toBe(0);
      const v1File = fileId(TARGET);
      const pids = await servedBy(v1File, "ours (after install)");
      expect(sha256(`/proc/${pids[0]}/exe`)).toBe(binarySha);

      // --- upgrade: the diversion stays, the new file is in place and serves.
      r0 = reloads();
      dpkg(["--install", debs.v2], inst.configDir);
      expect(packageState()).toEqual({ status: "ii", version: NEXT });
      expect(diversion()).toEqual({ by: PACKAGE, truename: DIVERTED });
      expect(fileId(DIVERTED)).toEqual(cFile);
      const v2File = fileId(TARGET);
      expect(v2File.ino).not.toBe(v1File.ino);
      expect(sha256(TARGET)).toBe(binarySha);
      expect(reloads()).toBe(r0 + 1);
      await servedBy(v2File, "ours (after upgrade)");

      // --- remove: the C binary back bit for bit at the path, the diversion gone, the C program answers.
      r0 = reloads();
      dpkg(["--remove", PACKAGE], inst.configDir);
      expect(packageState().status).toBe("rc"); // postrm stays until purge
      expect(diversion()).toEqual({ by: "", truename: TARGET });
      expect(fileId(TARGET)).toEqual(cFile);
      expect(isOurLink(TARGET)).toBe(false);
      expect(existsSync(DIVERTED)).toBe(false);
      expect(sha256(TARGET)).toBe(initial!.targetSha);
      expect(md5(TARGET)).toBe(postfixMd5());
      expect(verifyPostfix()).toBe(initial!.verify);
      expect(reloads()).toBe(r0 + 1);
      await servedBy(cFile, "the C proxymap (after remove)");

      // --- purge: the saved postconf -d output goes from every instance's data_directory.
      const ourSaved = readdirSync(inst.dataDir).filter((f) => f.startsWith("proxymap-defaults."));
      expect(ourSaved.length).toBe(1); // written by our daemon under master
      writeFileSync(join(second.data, "proxymap-defaults.0123abcd"), "KEY\n");
      dpkg(["--purge", PACKAGE], inst.configDir);
      expect(packageState().status).toBe("");
      expect(diversion().by).toBe("");
      expect(readdirSync(inst.dataDir).filter((f) => f.startsWith("proxymap-defaults."))).toEqual([]);
      expect(readdirSync(second.data)).toEqual([]);

      // --- install again, then purge straight from installed.
      dpkg(["--install", debs.v1], inst.configDir);
      expect(diversion()).toEqual({ by: PACKAGE, truename: DIVERTED });
      await servedBy(fileId(TARGET), "ours (installed again)");
      dpkg(["--purge", PACKAGE], inst.configDir);
      await servedBy(cFile, "the C proxymap (after the final purge)");
    } finally {
      watched = await watch.stop();
    }
    // Never a moment without an executable at the path.
    expect(watched.misses).toBe(0);
    expect(watched.first).toBe("");
    expect(watched.checks).toBeGreaterThan(10_000);
    console.log(`watcher: ${watched.checks} checks of ${TARGET}, ${watched.misses} without an executable`);

    expect(snapshot()).toEqual(initial!);
  }, 120_000);

  test("refused: an executable whose --self-test fails; Postfix's proxymap stays, undiverted", async () => {
    expect(inst).toBeDefined();
    dpkg(["--unpack", debs.v1], inst!.configDir);
    // The native addon gone between unpack and configure: the self-test cannot load lmdb.
    for (const f of readdirSync(NATIVE_DIR)) rmSync(join(NATIVE_DIR, f));
    const r = dpkgTry(["--configure", PACKAGE], inst!.configDir);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`proxymap-bun: the self-test of ${INSTALLED} failed, so it cannot stand in for Postfix's proxymap:`);
    expect(r.out).toContain("lmdb (native addon): FAILED");
    expect(r.out).toContain(`proxymap-bun: Postfix's own proxymap stays in place (${TARGET}); nothing was changed.`);
    expect(diversion()).toEqual({ by: "", truename: TARGET });
    expect(fileId(TARGET)).toEqual(cFile);
    await servedBy(cFile, "the C proxymap (self-test refused)");
    dpkg(["--purge", PACKAGE], inst!.configDir);
    expect(snapshot()).toEqual(initial!);
  }, 60_000);

  test("refused: a secondary instance's proxy_read_maps names a type ours does not serve", async () => {
    expect(inst).toBeDefined();
    const served = run([binary, "--types"]).out.trim().split("\n");
    const missing = ["nis", "nisplus", "netinfo", "dbm", "sdbm"].find((t) => !served.includes(t))!;
    writeSecond(`proxy:texthash:${table}, proxy:${missing}:mail.aliases`);
    try {
      const r = dpkgTry(["--install", debs.v1], inst!.configDir);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`proxymap-bun: proxy_read_maps or proxy_write_maps name table types that ${INSTALLED} does not serve`);
      expect(r.out).toContain(`${second.etc}: ${missing}`);
      expect(r.out).toContain("Postfix's own proxymap stays in place");
      expect(diversion()).toEqual({ by: "", truename: TARGET });
      expect(fileId(TARGET)).toEqual(cFile);
      await servedBy(cFile, "the C proxymap (types refused)");
    } finally {
      writeSecond(`proxy:texthash:${table}`);
    }
    dpkg(["--purge", PACKAGE], inst!.configDir);
    expect(snapshot()).toEqual(initial!);
  }, 60_000);

  test("lintian: no errors, warnings or infos left", async () => {
    expect(lintian).toBeDefined();
    const r = await lintian!;
    const hints = r.out.split("\n").filter((l) => /^[EWIPX]: /.test(l));
    expect(hints).toEqual([]);
    expect(r.code).toBe(0);
  }, 60_000);
});
