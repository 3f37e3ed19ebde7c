/**
 * test.ts - the project's test command (`npm test`): every test file, in
 * two phases, so that the whole suite fits CI's time on a 2-core machine.
 *
 * 1. Most files run two at a time (`bun test --parallel=2`: each file in a
 *    worker process of its own). They are isolated from each other: private
 *    Postfix instances, databases, servers and ports of their own.
 * 2. The files listed in SERIAL run one after the other, alone, because
 *    they use something machine-wide or measure time against a bound that a
 *    second busy test on a 2-core machine could break: /dev/log (syslog),
 *    the system's proxymap path (the Debian package test), sub-50 ms
 *    latency while obstacles hold (stalls), memory bounds, and the LDAP
 *    differential (many searches against one slapd with the reference's
 *    time-outs).
 *
 *   bun scripts/test.ts                 everything, as above
 *   bun scripts/test.ts FILE...         just these files, one after the other
 *
 * Exit status: non-zero when either phase fails. Output is bun test's own.
 */
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const TIMEOUT = ["--timeout", "120000"];

/** Files that must not share the machine with another test file (see above). */
const SERIAL = [
  "test/unit/log-sinks.test.ts",
  "test/e2e/package.test.ts",
  "test/e2e/stalls.test.ts",
  "test/e2e/limits.test.ts",
  "test/unit/memory-bounds.test.ts",
  "test/diff/ldap.test.ts",
];

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith(".test.ts")) out.push(relative(ROOT, path));
  }
  return out;
}

async function bunTest(args: string[]): Promise<number> {
  const p = Bun.spawn([process.execPath, "test", ...TIMEOUT, ...args], { cwd: ROOT, stdio: ["inherit", "inherit", "inherit"] });
  return await p.exited;
}

const requested = process.argv.slice(2);
if (requested.length > 0) {
  process.exit(await bunTest(requested));
}

const all = testFiles(join(ROOT, "test"));
const missing = SERIAL.filter((f) => !all.includes(f));
if (missing.length > 0) {
  console.error(`scripts/test.ts: SERIAL names files that do not exist: ${missing.join(", ")}`);
  process.exit(2);
}
const parallel = all.filter((f) => !SERIAL.includes(f));
console.log(`test: ${parallel.length} files two at a time, then ${SERIAL.length} alone`);
const first = await bunTest(["--parallel=2", ...parallel.map((f) => `./${f}`)]);
const second = await bunTest(SERIAL.map((f) => `./${f}`));
process.exit(first !== 0 ? first : second);
