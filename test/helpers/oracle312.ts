/**
 * oracle312.ts - where the Postfix 3.12 oracle tree lives, and the failure
 * that says how to build it.
 *
 * The tree is upstream Postfix 3.12-20260821 built by
 * ../shared/oracles/build.sh (CI's .ci/run builds it once per machine into
 * /var/cache/proxymap-oracle): bin/ (postconf, postmap, ...), libexec/
 * (master, proxymap, postlogd, ...), conf/. Not installed anywhere: a test
 * runs it as a private instance (postfix-instance.ts, option `postfix`).
 *
 * POSTFIX312_TREE overrides the path (a tree built elsewhere). Reads the file
 * system only; logs nothing.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./require";

export const ORACLE312_NAME = "postfix-3.12-20260821";
export const ORACLE_CACHE = "/var/cache/proxymap-oracle";

/** The 3.12 tree's path (it may not exist: see requireOracle312). */
export const ORACLE312_TREE = process.env.POSTFIX312_TREE || join(ORACLE_CACHE, ORACLE312_NAME);

/** The build script beside the checkout (../shared in CI, ../../shared in a /work/wt worktree). */
function buildScript(): string {
  for (const up of ["..", join("..", "..")]) {
    const p = join(REPO_ROOT, up, "shared", "oracles", "build.sh");
    if (existsSync(p)) return p;
  }
  return join(REPO_ROOT, "..", "shared", "oracles", "build.sh");
}

/** The command that builds the tree where the tests look for it. */
export function oracle312BuildCommand(): string {
  return `apt-get install build-essential m4 libdb-dev liblmdb-dev libicu-dev && bash ${buildScript()} ${ORACLE_CACHE}`;
}

/** The tree's path; throws with the build command when it is not built. */
export function requireOracle312(): string {
  for (const f of ["libexec/master", "libexec/proxymap", "libexec/postlogd", "bin/postconf", "bin/postmap"]) {
    if (!existsSync(join(ORACLE312_TREE, f)))
      throw new Error(`the Postfix 3.12 oracle is not built (${join(ORACLE312_TREE, f)} is missing): ${oracle312BuildCommand()}`);
  }
  return ORACLE312_TREE;
}
