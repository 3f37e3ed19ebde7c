/**
 * build.ts - build dist/proxymap: one executable from `Bun.build({ compile })`
 * that runs with no Bun, no Node and no node_modules on the machine.
 *
 * What it does:
 *   1. makes sure lmdb's native addon is the format-1 build of our own
 *      (scripts/build-lmdb-v1.sh; skipped when its stamp is current);
 *   2. bundles src/main.ts, minified, with bytecode (faster start-up), into a
 *      standalone executable made from the bun binary in node_modules, which
 *      reads no .env, bunfig.toml, tsconfig.json or package.json at run time
 *      (under master its working directory is the queue directory: nothing
 *      there may change its behaviour);
 *   3. a plugin embeds the native addon: lmdb finds its addon at run time
 *      through node-gyp-build-optional-packages, a directory search the
 *      bundler cannot follow, so a plain --compile leaves it out. The plugin
 *      embeds the .node file, stripped, as a plain file (an import `with { type: "file" }`
 *      in src/sys/embeddedFiles.ts, which it rewrites; the name carries a
 *      hash of the bytes) and answers lmdb's import of that loader with a
 *      module that loads a trustworthy copy of it from the package's or a
 *      private directory (src/sys/embeddedAddon.ts). A .node file that is
 *      require()d instead would be written by Bun to $TMPDIR at every start
 *      and loaded from there: as root, in /tmp, and not at all where /tmp is
 *      noexec. (It is loaded before chroot: the lmdb type's prepare().)
 *      msgpackr's optional native accelerator (msgpackr-extract, found the same
 *      way) is replaced by a module that reports it missing: msgpackr then
 *      uses its JavaScript decoder, and lmdb here stores raw bytes anyway.
 *   3b. code splitting, the recorded bytecode order and a start-up JIT
 *      policy (see buildExecutable), for start-up time and memory;
 *   4. the worker threads' entry point (src/tables/offload/worker.ts: the
 *      blocking calls of NSS, sqlite, regexp and pcre run there) is a second
 *      entry point of the same executable: Bun bundles each entry point
 *      separately and stores it under the path it has below src/, where
 *      offload/pool.ts asks for it (new Worker() of a file that is not an
 *      entry point would look for it on disk);
 *   5. with --check, runs the result from an empty directory with an empty
 *      environment: `proxymap --self-test` and `proxymap --demo`.
 *
 * Usage: bun build.ts [--no-bytecode] [--outfile PATH] [--check]
 * Reads: src/, node_modules/. Writes: dist/proxymap. Logs: progress on stdout.
 */
import type { BunPlugin } from "bun";
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, readFileSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";

const ROOT = import.meta.dir;
const LMDB_DIR = join(ROOT, "node_modules", "lmdb");
export const LMDB_ADDON = join(LMDB_DIR, "build", "Release", "lmdb.node");
/** The worker threads' entry point (see the header, 4). */
const WORKER_ENTRY = join(ROOT, "src", "tables", "offload", "worker.ts");

const EMBEDDED_FILES = join(ROOT, "src", "sys", "embeddedFiles.ts");
/** The recorded start-up profile (scripts/record-bytecode-order.ts). */
const BYTECODE_ORDER = join(ROOT, "scripts", "bytecode-order", "daemon.order");
/** The JIT policy until the first request (server/skeleton.ts resets it to 1). */
const STARTUP_JIT_POLICY = 1000;
const EMBEDDED_ADDON = join(ROOT, "src", "sys", "embeddedAddon.ts");

/**
 * The addon as embedded: a copy with its symbol tables stripped (strip
 * --strip-unneeded, no .comment or .note: deterministic), as dh_strip leaves shared objects; the
 * unstripped build stays in node_modules for runs from the sources.
 */
export function strippedAddon(addon = LMDB_ADDON): string {
  const dir = join(ROOT, "node_modules", ".cache", "proxymap-bun");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${basename(addon, ".node")}.stripped.node`);
  const r = Bun.spawnSync(["strip", "--strip-unneeded", "--remove-section=.comment", "--remove-section=.note", "-o", out, addon], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    console.error(`build: strip failed (${r.stderr.toString().trim()}); apt-get install binutils`);
    process.exit(1);
  }
  return out;
}

/** The first 16 hex digits of the file's SHA-256: its installed name (lmdb-HASH.node). */
export function addonHash(path: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(readFileSync(path));
  return h.digest("hex").slice(0, 16);
}

/** The Bun.build plugin that embeds lmdb's addon (see the header). */
export function nativeAddonPlugin(addon = LMDB_ADDON): BunPlugin {
  const lmdbPrefix = LMDB_DIR + sep;
  const hash = addonHash(addon);
  return {
    name: "proxymap-native-addons",
    setup(build) {
      build.onResolve({ filter: /^node-gyp-build-optional-packages$/ }, (args) => {
        if (!resolve(args.importer).startsWith(lmdbPrefix)) return undefined;
        return { path: "lmdb-addon", namespace: "proxymap-native" };
      });
      build.onResolve({ filter: /^msgpackr-extract$/ }, () => ({ path: "msgpackr-extract", namespace: "proxymap-native" }));
      // The list of embedded files: the addon as a plain file, with its hash.
      build.onLoad({ filter: /[\\/]src[\\/]sys[\\/]embeddedFiles\.ts$/ }, (args) => {
        if (resolve(args.path) !== EMBEDDED_FILES) return undefined;
        return {
          contents:
            `import lmdbFile from ${JSON.stringify(addon)} with { type: "file" };\n` +
            `export const EMBEDDED = [{ name: "lmdb", embedded: lmdbFile, hash: ${JSON.stringify(hash)} }];\n`,
          loader: "ts",
        };
      });
      build.onLoad({ filter: /.*/, namespace: "proxymap-native" }, (args) => {
        if (args.path === "lmdb-addon")
          return {
            // lmdb calls loadNAPI(dir); the answer is always our format-1 addon, from a trusted copy.
            contents:
              `import { loadEmbeddedAddon } from ${JSON.stringify(EMBEDDED_ADDON)};\n` +
              `export default function loadLmdbAddon() { return loadEmbeddedAddon("lmdb"); }\n`,
            loader: "js",
          };
        return {
          contents: `throw new Error("msgpackr-extract is not embedded in this executable");`,
          loader: "js",
        };
      });
    },
  };
}

/** Run scripts/build-lmdb-v1.sh (it skips the work when the addon is current). */
function ensureLmdbAddon(): void {
  const r = Bun.spawnSync(["sh", join(ROOT, "scripts", "build-lmdb-v1.sh")], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0 || !existsSync(LMDB_ADDON)) {
    console.error(`build: lmdb's format-1 addon is missing (${LMDB_ADDON}); see scripts/build-lmdb-v1.sh`);
    process.exit(1);
  }
}

export interface BuildOptions {
  outfile: string;
  bytecode: boolean;
}

export async function buildExecutable(o: BuildOptions): Promise<void> {
  mkdirSync(dirname(o.outfile), { recursive: true });
  const result = await Bun.build({
    entrypoints: [join(ROOT, "src", "main.ts"), WORKER_ENTRY],
    target: "bun",
    format: "esm",
    // Code splitting: a module reached only by a dynamic import() (the
    // drivers that table types load in prepare(): src/util/lazyModule.ts)
    // becomes a chunk of its own inside the executable, evaluated, with the
    // Node built-ins only it imports, when first imported. Without it every
    // built-in module of every driver is loaded at each start.
    splitting: true,
    minify: true,
    bytecode: o.bytecode,
    sourcemap: "none",
    plugins: [nativeAddonPlugin(strippedAddon())],
    compile: {
      outfile: o.outfile,
      autoloadDotenv: false,
      autoloadBunfig: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
      // Start-up (measured with bench/startup.ts, README "Performance"):
      // the bytecode a start uses first in the file (a recorded profile,
      // scripts/record-bytecode-order.ts), and JavaScriptCore's tier-up
      // thresholds raised 1000-fold until the first request is handled
      // (server/skeleton.ts: becameInteractive), so that run-once start-up
      // code is interpreted rather than compiled. Together about 15% off the
      // time to the first reply and 5 MB off the memory after it.
      bytecodeOrder: o.bytecode && existsSync(BYTECODE_ORDER) ? BYTECODE_ORDER : null,
      jitPolicy: STARTUP_JIT_POLICY,
    },
  } as Parameters<typeof Bun.build>[0]);
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    throw new Error("build failed");
  }
  for (const log of result.logs) console.warn(String(log));
}

/**
 * Run the executable from an empty directory with an empty environment. The
 * directory is beside the output, not in /tmp: the executable refuses to
 * load its native parts from below a world-writable directory.
 */
function check(outfile: string): boolean {
  const dir = mkdtempSync(join(dirname(outfile), ".check-"));
  try {
    const bin = join(dir, "proxymap");
    copyFileSync(outfile, bin);
    Bun.spawnSync(["chmod", "755", bin]);
    let ok = true;
    for (const args of [["--self-test"], ["--demo"]]) {
      const t0 = performance.now();
      const r = Bun.spawnSync([bin, ...args], { cwd: dir, env: {}, stdout: "pipe", stderr: "pipe" });
      const ms = (performance.now() - t0).toFixed(0);
      console.log(`$ env -i ${bin} ${args.join(" ")}   (exit ${r.exitCode}, ${ms} ms)`);
      process.stdout.write(r.stdout.toString());
      if (r.exitCode !== 0) {
        process.stdout.write(r.stderr.toString());
        ok = false;
      }
    }
    return ok;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--outfile");
  const outfile = resolve(at >= 0 ? args[at + 1] : join(ROOT, "dist", "proxymap"));
  const bytecode = !args.includes("--no-bytecode");
  ensureLmdbAddon();
  const t0 = performance.now();
  await buildExecutable({ outfile, bytecode });
  const size = (statSync(outfile).size / 1048576).toFixed(1);
  console.log(`build: wrote ${outfile} (${size} MiB, bytecode ${bytecode ? "on" : "off"}) in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  if (args.includes("--check") && !check(outfile)) process.exit(1);
}
