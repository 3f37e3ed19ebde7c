/**
 * package.ts - make the Debian package dist/proxymap-bun_VERSION_ARCH.deb from
 * dist/proxymap (the executable `npm run build` writes) and packaging/.
 *
 * Built with Debian's own tools, in a throw-away tree laid out like a Debian
 * source package (WORK/debian/...): dpkg-shlibdeps finds the C library
 * version the executable needs, dpkg-gencontrol writes DEBIAN/control from
 * packaging/control and packaging/changelog (Installed-Size included), and
 * `dpkg-deb --root-owner-group` builds the archive (no fakeroot needed: every
 * file is owned by root in the archive whoever builds it).
 *
 * Reproducible: the same commit gives the same bytes. SOURCE_DATE_EPOCH is
 * the commit time (`git log -1 --format=%ct`) unless the environment sets it,
 * else the changelog's date; every file's mtime is set to it, modes are set
 * explicitly (the umask does not matter), gzip runs with -n (no name or time
 * in its header), dpkg-deb sorts the members and takes its timestamps from
 * SOURCE_DATE_EPOCH, and the compression is fixed (gzip level 6: xz took
 * 8-60 s on this 110 MiB executable for 15% less, and its multi-threaded
 * encoder is only as reproducible as the xz library's block layout).
 *
 * Usage: bun scripts/package.ts [--binary PATH] [--out DIR]
 *   --binary   the executable to package (default dist/proxymap)
 *   --out      where the .deb goes (default dist/)
 * Environment:
 *   PROXYMAP_DEB_VERSION   package another version than package.json's (tests
 *                          use it to build an upgrade); a changelog entry for it
 *                          is added in the package, packaging/ is not changed
 *   SOURCE_DATE_EPOCH      overrides the commit time
 *
 * Layout: the executable is /usr/lib/proxymap-bun/proxymap and the native
 * files it carries (lmdb's addon, written by its own --install-native) are
 * in /usr/lib/proxymap-bun/native, where it loads them from. Postfix's path
 * /usr/lib/postfix/sbin/proxymap is not in the package: the maintainer
 * scripts divert it (the C binary kept at proxymap.postfix) and replace it
 * by a symbolic link to ours, each change one rename(2), so that master
 * always finds an executable there (packaging/postinst, prerm, postrm).
 *
 * Reads: package.json, packaging/*, the executable. Writes: the .deb (and a
 * temp directory it removes). Prints the .deb's path and sha256 on stdout.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const PKG_DIR = join(ROOT, "packaging");
export const PACKAGE = "proxymap-bun";
/** Where Postfix's master looks for the proxymap executable on Debian. */
export const TARGET = "/usr/lib/postfix/sbin/proxymap";
/** Where the diversion keeps Postfix's C proxymap (must match packaging/postinst, prerm and postrm). */
export const DIVERTED = "/usr/lib/postfix/sbin/proxymap.postfix";
/** Where the package installs our executable (TARGET becomes a link to it). */
export const INSTALLED = "/usr/lib/proxymap-bun/proxymap";
/** Where it installs the native files the executable carries (src/sys/embeddedAddon.ts PACKAGE_DIR). */
export const NATIVE_DIR = "/usr/lib/proxymap-bun/native";
/** postinst's awk program that lists the table types of proxy: entries. */
const TYPES_AWK = "/usr/lib/proxymap-bun/proxied-types.awk";
/** The maintainer scripts. */
const SCRIPTS = ["postinst", "prerm", "postrm"];

const HINT = "apt-get install dpkg-dev (dpkg-deb, dpkg-gencontrol, dpkg-shlibdeps)";

function fail(text: string): never {
  throw new Error(`package: ${text}`);
}

/** Run a tool; fail with its output when it does not exit 0. */
function run(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  let r;
  try {
    r = Bun.spawnSync(argv, { cwd: opts.cwd, env: opts.env ?? toolEnv(), stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    return fail(`${argv[0]}: ${(e as Error).message}: ${HINT}`);
  }
  if (r.exitCode !== 0) fail(`${argv.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

let sourceDateEpoch = "";
/** A fixed environment for the Debian tools: C locale, UTC, our epoch. */
function toolEnv(): Record<string, string> {
  return {
    PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    LC_ALL: "C.UTF-8",
    TZ: "UTC",
    ...(sourceDateEpoch ? { SOURCE_DATE_EPOCH: sourceDateEpoch } : {}),
  };
}

/** "Thu, 26 Nov 2026 09:36:02 +0000" (the changelog's date format) for an epoch. */
function rfc2822(epoch: number): string {
  const d = new Date(epoch * 1000);
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getUTCDay()];
  const mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][d.getUTCMonth()];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${day}, ${p(d.getUTCDate())} ${mon} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** The Debian architecture of the executable (it is built for this machine). */
function debArch(): string {
  const a = run(["dpkg", "--print-architecture"]).trim();
  if (!a) fail("dpkg --print-architecture printed nothing");
  return a;
}

/** The epoch every timestamp in the package gets. */
function chooseEpoch(changelogDate: string): string {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env && /^\d+$/.test(env)) return env;
  const r = Bun.spawnSync(["git", "-C", ROOT, "log", "-1", "--format=%ct"], { stdout: "pipe", stderr: "pipe" });
  const ct = r.exitCode === 0 ? r.stdout.toString().trim() : "";
  if (/^\d+$/.test(ct)) return ct;
  const t = Date.parse(changelogDate);
  if (Number.isFinite(t)) return String(Math.floor(t / 1000));
  return fail("no SOURCE_DATE_EPOCH, no git commit time and no changelog date");
}

function gzipTo(src: Buffer | string, dest: string): void {
  const p = Bun.spawnSync(["gzip", "-9nc"], { stdin: typeof src === "string" ? Buffer.from(src) : src, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) fail(`gzip failed: ${p.stderr.toString()}`);
  writeFileSync(dest, p.stdout);
}

/** Every path under dir (files and directories), relative, sorted. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(relative(base, p));
    if (statSync(p).isDirectory()) out.push(...walk(p, base));
  }
  return out;
}

export interface PackageResult {
  deb: string;
  version: string;
  sha256: string;
  sourceDateEpoch: string;
}

export function buildPackage(o: { binary: string; outDir: string; version?: string }): PackageResult {
  if (!existsSync(o.binary)) fail(`${o.binary} is missing: run npm run build first`);
  const pkgJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  let changelog = readFileSync(join(PKG_DIR, "changelog"), "utf8");
  const top = /^(\S+) \(([^)]+)\)/.exec(changelog);
  if (!top || top[1] !== PACKAGE) fail("packaging/changelog does not start with a proxymap-bun entry");
  if (top[2] !== pkgJson.version)
    fail(`packaging/changelog's latest entry is ${top[2]} but package.json says ${pkgJson.version}: add a changelog entry`);
  const trailer = /^ -- (.+?)  (.+)$/m.exec(changelog);
  if (!trailer) fail("packaging/changelog: no trailer line");
  sourceDateEpoch = chooseEpoch(trailer[2]);

  const version = o.version ?? pkgJson.version;
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(version)) fail(`bad version ${JSON.stringify(version)}`);
  if (version !== top[2]) {
    // A build of another version (an upgrade test): say so in its changelog.
    changelog =
      `${PACKAGE} (${version}) unstable; urgency=medium\n\n  * Build of ${pkgJson.version} packaged as ${version}.\n\n` +
      ` -- ${trailer[1]}  ${rfc2822(Number(sourceDateEpoch))}\n\n` +
      changelog;
  }
  const arch = debArch();

  const work = mkdtempSync(join(tmpdir(), "proxymap-deb-"));
  try {
    const deb = join(work, "debian");
    const root = join(deb, "tmp");
    const doc = join(root, "usr/share/doc", PACKAGE);
    for (const d of ["DEBIAN", NATIVE_DIR.slice(1), "usr/share/man/man8", `usr/share/doc/${PACKAGE}`, "usr/share/lintian/overrides"])
      mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(deb, "control"), readFileSync(join(PKG_DIR, "control")));
    writeFileSync(join(deb, "changelog"), changelog);

    copyFileSync(o.binary, join(root, INSTALLED.slice(1)));
    // The native files, as the executable itself writes them (names carry their hashes).
    run([o.binary, "--install-native", join(root, NATIVE_DIR.slice(1))]);
    // postinst's reader of proxy_read_maps/proxy_write_maps.
    writeFileSync(join(root, TYPES_AWK.slice(1)), readFileSync(join(PKG_DIR, "proxied-types.awk")));
    const date = new Date(Number(sourceDateEpoch) * 1000).toISOString().slice(0, 10);
    const man = readFileSync(join(PKG_DIR, `${PACKAGE}.8`), "utf8").replace(
      /^\.TH .*$/m,
      `.TH PROXYMAP-BUN 8 "${date}" "${PACKAGE} ${version}" "System Manager's Manual"`,
    );
    gzipTo(man, join(root, `usr/share/man/man8/${PACKAGE}.8.gz`));
    writeFileSync(join(doc, "copyright"), readFileSync(join(PKG_DIR, "copyright")));
    gzipTo(changelog, join(doc, "changelog.gz")); // native package: changelog.gz, not changelog.Debian.gz
    writeFileSync(join(root, "usr/share/lintian/overrides", PACKAGE), readFileSync(join(PKG_DIR, "lintian-overrides")));
    for (const s of SCRIPTS) writeFileSync(join(root, "DEBIAN", s), readFileSync(join(PKG_DIR, s)));

    // Depends: the library versions the executable's and the addon's symbols need.
    const natives = readdirSync(join(root, NATIVE_DIR.slice(1))).map((n) => join(root, NATIVE_DIR.slice(1), n));
    run(["dpkg-shlibdeps", `-T${join(deb, "substvars")}`, join(root, INSTALLED.slice(1)), ...natives], { cwd: work });
    // DEBIAN/control from debian/control + changelog + substvars, with Installed-Size.
    run(["dpkg-gencontrol", `-p${PACKAGE}`, `-P${root}`, `-T${join(deb, "substvars")}`], { cwd: work });

    // Modes and md5sums, then one timestamp for everything.
    const files = walk(root);
    const sums: string[] = [];
    for (const rel of files) {
      const p = join(root, rel);
      const st = statSync(p);
      const exec = rel === INSTALLED.slice(1) || /^DEBIAN\/(preinst|postinst|prerm|postrm)$/.test(rel);
      chmodSync(p, st.isDirectory() || exec ? 0o755 : 0o644);
      if (st.isFile() && !rel.startsWith("DEBIAN/")) {
        const h = new Bun.CryptoHasher("md5");
        h.update(readFileSync(p));
        sums.push(`${h.digest("hex")}  ${rel}`);
      }
    }
    writeFileSync(join(root, "DEBIAN/md5sums"), sums.join("\n") + "\n");
    chmodSync(join(root, "DEBIAN/md5sums"), 0o644);
    chmodSync(root, 0o755);
    const t = Number(sourceDateEpoch);
    for (const rel of ["DEBIAN/md5sums", ...files].reverse()) utimesSync(join(root, rel), t, t);
    utimesSync(root, t, t);

    mkdirSync(o.outDir, { recursive: true });
    const name = `${PACKAGE}_${version}_${arch}.deb`;
    const tmpDeb = join(work, name);
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", root, tmpDeb]);
    const out = join(o.outDir, name);
    copyFileSync(tmpDeb, out + ".tmp");
    renameSync(out + ".tmp", out); // a reader never sees half a package
    const h = new Bun.CryptoHasher("sha256");
    h.update(readFileSync(out));
    return { deb: out, version, sha256: h.digest("hex"), sourceDateEpoch };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const t0 = performance.now();
  try {
    const r = buildPackage({
      binary: resolve(opt("--binary") ?? join(ROOT, "dist", "proxymap")),
      outDir: resolve(opt("--out") ?? join(ROOT, "dist")),
      version: process.env.PROXYMAP_DEB_VERSION || undefined,
    });
    const mib = (statSync(r.deb).size / 1048576).toFixed(1);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`package: wrote ${r.deb} (${mib} MiB, SOURCE_DATE_EPOCH=${r.sourceDateEpoch}) in ${secs}s`);
    console.log(`sha256 ${r.sha256}`);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(1);
  }
}
