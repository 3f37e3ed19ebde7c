/**
 * build.test.ts - the single executable: build.ts writes it (into a temp
 * directory here, so that dist/proxymap, which other suites use, is not
 * replaced under them), it runs from an empty directory with an empty
 * environment (no bun, no node, no node_modules), it carries lmdb's
 * format-1 native addon, and a real Postfix master(8) runs it as the
 * proxymap service: real `postmap -q` clients are answered, the process
 * runs as mail_owner, logs through postlogd, and exits after max_idle.
 *
 * Native parts (src/sys/embeddedAddon.ts): the lmdb addon is loaded from a
 * private directory beside the executable, made once by root; never from
 * /tmp: with /tmp mounted noexec (a private mount namespace) --self-test
 * passes and an lmdb table answers, nothing is written to /tmp, a second
 * start writes nothing at all; a copy below a world-writable directory, or
 * a private directory someone else could write, is refused with the reason.
 * --install-native writes the files for a package, --types lists the types.
 *
 * The copies run from directories under dist/, not /tmp: below a
 * world-writable directory the executable refuses its native parts.
 *
 * Needs: Postfix installed (apt-get install postfix), root, and node-gyp's
 * prerequisites for the lmdb rebuild (scripts/build-lmdb-v1.sh).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { buildExecutable } from "../../build";
import { PostfixInstance } from "../helpers/postfix-instance";
import { writeCoolFile } from "../helpers/files";
import { BASE } from "../helpers/ldap-data";
import { PrivateSlapd } from "../helpers/slapd";

const REPO = join(import.meta.dir, "..", "..");
mkdirSync(join(REPO, "dist"), { recursive: true });
const dir = mkdtempSync(join(REPO, "dist", ".build-test-"));
const bin = join(dir, "proxymap");

beforeAll(async () => {
  const r = Bun.spawnSync(["sh", join(REPO, "scripts", "build-lmdb-v1.sh")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`scripts/build-lmdb-v1.sh failed: ${r.stderr.toString()}`);
  await buildExecutable({ outfile: bin, bytecode: true });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the executable copied into an empty directory, with no environment at all. */
function runBare(args: string[]) {
  const empty = mkdtempSync(join(dir, "bare-"));
  try {
    const copy = join(empty, "proxymap");
    copyFileSync(bin, copy);
    Bun.spawnSync(["chmod", "755", copy]);
    const r = Bun.spawnSync([copy, ...args], { cwd: empty, env: {}, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}

describe("dist/proxymap as one file", () => {
  test("--self-test from an empty directory with env -i: every native part loads, lmdb writes format 1", () => {
    const r = runBare(["--self-test"]);
    expect(r.stdout).toContain("self-test: ok");
    expect(r.stdout).toMatch(/lmdb \(native addon\): LMDB 0\.9\.\d+.*data format 1/);
    // The worker threads' entry point is embedded (a second entry point): a
    // worker starts from the empty directory, with no source tree anywhere.
    expect(r.stdout).toMatch(/worker threads: started and answered in \d+ ms/);
    expect(r.code).toBe(0);
  });

  test("--demo from an empty directory with env -i", () => {
    const r = runBare(["--demo"]);
    expect(r.stdout).toContain('lookup static:OK "anything" -> OK "OK"');
    expect(r.stdout).toContain("proxymap demo: ok");
    expect(r.stderr).toContain('warning: request for unapproved table: "hash:/etc/aliases"');
    expect(r.code).toBe(0);
  });
});

describe("under a real Postfix master", () => {
  // The unix lookups run on a worker thread (src/tables/unix.ts): the
  // embedded worker also starts under master, as mail_owner.
  test("answers postmap -q through proxy:, runs as mail_owner, logs via postlogd, exits after max_idle", async () => {
    const inst = await PostfixInstance.start({
      impl: { path: bin },
      label: "build",
      mainCf: { proxy_read_maps: "proxy:unix:passwd.byname proxy:static:demo" },
      proxymapArgs: ["-o", "max_idle=2"],
    });
    try {
      const q = inst.postmapQuery("root", "proxy:unix:passwd.byname");
      expect(q.stdout).toBe("root:x:0:0:root:/root:/bin/bash\n");
      const pids = await inst.waitServicePids("proxymap");
      expect(pids.length).toBe(1);
      const pid = pids[0];
      const pf = PostfixInstance.postfixUser();
      expect(PostfixInstance.uids(pid)).toEqual([pf.uid, pf.uid, pf.uid]);
      expect(PostfixInstance.rssKiB(pid)).toBeLessThan(64 * 1024);

      const mark = inst.logMark();
      const refused = inst.postmapQuery("x", "proxy:static:nope");
      expect(refused.code).not.toBe(0);
      await inst.waitForLog(new RegExp(`postfix/proxymap\\[${pid}\\]: warning: request for unapproved table: "static:nope"`), 5000, mark);

      // max_idle=2: with no client the process goes away by itself.
      const deadline = Date.now() + 6000;
      while (PostfixInstance.isAlive(pid) && Date.now() < deadline) await Bun.sleep(100);
      expect(PostfixInstance.isAlive(pid)).toBe(false);
      // ... and master starts a fresh one for the next client.
      expect(inst.postmapQuery("root", "proxy:unix:passwd.byname").code).toBe(0);
    } finally {
      inst.stop();
    }
  }, 30_000);
});

describe("LDAP tables in the single executable", () => {
  /**
   * ldapts (the LDAP BER codec) is bundled: the executable, copied away from
   * the repository's node_modules, answers proxy:ldap: lookups against a
   * private slapd under a real master, plain and with StartTLS.
   */
  test("a copy outside the repository answers postmap -q through proxy:ldap: (plain and StartTLS)", async () => {
    const slapd = await PrivateSlapd.start({ label: "build" });
    const away = mkdtempSync(join(tmpdir(), "bare-ldap-"));
    Bun.spawnSync(["chmod", "755", away]);
    const copy = join(away, "proxymap");
    copyFileSync(bin, copy);
    Bun.spawnSync(["chmod", "755", copy]);
    const plain = writeCoolFile(join(away, "plain.cf"), `server_host = 127.0.0.1:${slapd.port}\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\nspecial_result_attribute = member\n`);
    const tls = writeCoolFile(join(away, "tls.cf"), `server_host = ldap://127.0.0.1:${slapd.port}\nstart_tls = yes\ntls_ca_cert_file = ${slapd.caFile}\ntls_require_cert = yes\nsearch_base = ${BASE}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mail\n`);
    const inst = await PostfixInstance.start({ impl: { path: copy }, label: "build-ldap", mainCf: { proxy_read_maps: `proxy:ldap:${plain} proxy:ldap:${tls}` } });
    try {
      expect(inst.postmapQuery("alice@example.com", `proxy:ldap:${plain}`).stdout).toBe("alice@example.com\n");
      expect(inst.postmapQuery("devs@example.com", `proxy:ldap:${plain}`).stdout).toBe("bob@example.com,bob@mail.example.com,carol@example.com\n");
      expect(inst.postmapQuery("carol@example.com", `proxy:ldap:${tls}`).stdout).toBe("carol@example.com\n");
    } finally {
      inst.stop();
      await slapd.destroy();
      rmSync(away, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("native parts: a private directory beside the executable, never /tmp", () => {
  /** A copy of the executable in a fresh directory under dir. */
  function copy(parent = dir): string {
    const d = mkdtempSync(join(parent, "copy-"));
    chmodSync(d, 0o755);
    const p = join(d, "proxymap");
    copyFileSync(bin, p);
    chmodSync(p, 0o755);
    return p;
  }
  const selfTest = (exe: string) => {
    const r = Bun.spawnSync([exe, "--self-test"], { env: {}, stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
  };

  test("with /tmp mounted noexec: --self-test passes, an lmdb table answers, nothing lands in /tmp", () => {
    // The copy lives outside /tmp (the checkout may be below it, and the tmpfs hides it).
    const outside = mkdtempSync("/var/tmp/proxymap-noexec-");
    try {
      const exe = copy(outside);
      const cf = mkdtempSync(join(outside, "cf-"));
      writeFileSync(join(cf, "map"), "alpha one\n");
      expect(Bun.spawnSync(["postmap", `lmdb:${cf}/map`]).exitCode).toBe(0);
      writeFileSync(join(cf, "main.cf"), `proxy_read_maps = proxy:lmdb:${cf}/map\n`);
      // printf's \\000 is a NUL (a bare \\0 would take the flags' digits as octal).
      const req = ["request", "lookup", "table", `lmdb:${cf}/map`, "flags", "524353", "key", "alpha", ""].join("\\000") + "\\000";
      const script = [
        "mount -t tmpfs -o noexec tmpfs /tmp",
        `${exe} --self-test`,
        `printf '${req}' | MAIL_CONFIG=${cf} ${exe} -S | tr '\\0' '|'`,
        "echo; echo TMP:; ls -A /tmp",
      ].join(" && ");
      const r = Bun.spawnSync(["unshare", "-m", "sh", "-c", script], { stdout: "pipe", stderr: "pipe" });
      const out = r.stdout.toString();
      expect(out).toContain("self-test: ok");
      expect(out).toMatch(new RegExp(`lmdb \\(native addon\\): .*data format 1.*loaded from ${dirname(exe)}/proxymap-bun\\.native/lmdb-[0-9a-f]{16}\\.node`));
      expect(out).toContain("status|0|value|one||");
      expect(out.split("TMP:\n")[1]).toBe("");
      expect(r.exitCode).toBe(0);
      // The private directory: root's, mode 0755; the file root's, 0644.
      const pdir = join(dirname(exe), "proxymap-bun.native");
      const ds = statSync(pdir);
      expect([ds.uid, ds.mode & 0o777]).toEqual([0, 0o755]);
      const [name] = readdirSync(pdir);
      const fs = statSync(join(pdir, name));
      expect([fs.uid, fs.mode & 0o777]).toEqual([0, 0o644]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  test("made once: a second start writes nothing", () => {
    const exe = copy();
    expect(selfTest(exe).code).toBe(0);
    const pdir = join(dirname(exe), "proxymap-bun.native");
    const before = readdirSync(pdir).map((n) => [n, statSync(join(pdir, n)).ino, statSync(join(pdir, n)).mtimeMs]);
    const dirBefore = statSync(pdir).mtimeMs;
    expect(selfTest(exe).code).toBe(0);
    expect(readdirSync(pdir).map((n) => [n, statSync(join(pdir, n)).ino, statSync(join(pdir, n)).mtimeMs])).toEqual(before);
    expect(statSync(pdir).mtimeMs).toBe(dirBefore);
  });

  test("below a world-writable directory: refused, with the reason", () => {
    const open = mkdtempSync(join(dir, "open-"));
    chmodSync(open, 0o777);
    const exe = copy(open);
    const r = selfTest(exe);
    expect(r.code).toBe(1);
    expect(r.out).toContain("lmdb (native addon): FAILED: no usable copy of the lmdb addon");
    expect(r.out).toContain(`${open} is world-writable`);
  });

  test("below a sticky world-writable directory (as /tmp) holding a root-owned one: used (nobody else can swap it)", () => {
    const sticky = mkdtempSync(join(dir, "sticky-"));
    chmodSync(sticky, 0o1777);
    const mine = join(sticky, "root-owned");
    mkdirSync(mine, { mode: 0o755 });
    expect(selfTest(copy(mine)).code).toBe(0);
    // Directly in the sticky directory (the native directory's parent is the sticky one): also fine;
    // but a native directory that is itself sticky and world-writable is not.
    const exe = copy(sticky);
    expect(selfTest(exe).code).toBe(0);
    const pdir = join(dirname(exe), "proxymap-bun.native");
    chmodSync(pdir, 0o1777);
    expect(selfTest(exe).out).toContain(`${pdir} is world-writable`);
  });

  test("a private directory others can write is not used", () => {
    const exe = copy();
    const pdir = join(dirname(exe), "proxymap-bun.native");
    expect(selfTest(exe).code).toBe(0);
    chmodSync(pdir, 0o777);
    const r = selfTest(exe);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${pdir} is world-writable`);
    chmodSync(pdir, 0o755);
    const [name] = readdirSync(pdir);
    chmodSync(join(pdir, name), 0o666);
    expect(selfTest(exe).out).toContain("is writable by others");
  });

  test("--install-native DIR writes the embedded files; --types lists the registry", () => {
    const out = mkdtempSync(join(dir, "native-"));
    const r = Bun.spawnSync([bin, "--install-native", out], { env: {}, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    const names = readdirSync(out);
    expect(names).toEqual([expect.stringMatching(/^lmdb-[0-9a-f]{16}\.node$/)]);
    expect(r.stdout.toString()).toBe(`${join(out, names[0])}\n`);
    const t = Bun.spawnSync([bin, "--types"], { env: {}, stdout: "pipe" });
    const types = t.stdout.toString().trim().split("\n");
    expect(types).toContain("lmdb");
    expect(types).toContain("texthash");
    expect(types).toEqual([...types].sort());
  });
});
