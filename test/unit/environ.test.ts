/**
 * environ.test.ts - the environ table beyond the golden cases
 * (test/golden/environ, compared with the C proxymap):
 *  - lookups see this process's environment, FOLD_FIX lower-cases the
 *    name, values come back as the bytes of their UTF-8 text;
 *  - update (write service) sets a variable for later lookups; a name the
 *    C library refuses answers CONFIG with setenv's text (the reference
 *    exits: deliberate difference);
 *  - the environment a whole proxymap process has: for the same starting
 *    environment, ours (-S mode) answers every name as the C proxymap does,
 *    so nothing of Bun's own leaks into lookups. Under master both inherit
 *    master's cleaned environment (import_environment) the same way.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { C_PROXYMAP } from "../helpers/reference";
import { closeAllDicts, dictGet, dictPut, openDict } from "../../src/tables/dict";
import { DictFlag, Status } from "../../src/protocol/constants";
import { setLogSinks } from "../../src/log/msg";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const tmp = mkdtempSync(join(tmpdir(), "environ-test-"));
afterAll(async () => {
  await closeAllDicts();
  setLogSinks([{ write: (_s, l) => process.stderr.write(`proxymap: ${l}\n`) }]);
  rmSync(tmp, { recursive: true, force: true });
});

describe("environ in our dict layer", () => {
  test("lookup, FOLD_FIX, UTF-8 values", async () => {
    process.env.PM_ENV_TEST = "caf\u00e9";
    process.env.pm_env_lower = "lower";
    const d = await openDict("environ:x", false, 0);
    expect(d.flags & DictFlag.FIXED).toBe(DictFlag.FIXED);
    expect(await dictGet(d, "PM_ENV_TEST", 0)).toMatchObject({ status: Status.OK, value: "caf\xc3\xa9" });
    expect(await dictGet(d, "PM_ENV_LOWER", DictFlag.FOLD_FIX)).toMatchObject({ status: Status.OK, value: "lower" });
    expect(await dictGet(d, "PM_ENV_LOWER", 0)).toMatchObject({ status: Status.NOKEY, value: "" });
  });

  test("update on the write service; a refused name answers CONFIG", async () => {
    const logs: string[] = [];
    setLogSinks([{ write: (_s, l) => logs.push(l) }]);
    const d = await openDict("environ:w", true, 0);
    expect((await dictPut(d, "PM_ENV_SET", "v\xc3\xa9", 0)).status).toBe(Status.OK);
    expect(process.env.PM_ENV_SET).toBe("v\u00e9");
    expect(await dictGet(d, "PM_ENV_SET", 0)).toMatchObject({ status: Status.OK, value: "v\xc3\xa9" });
    expect((await dictPut(d, "A=B", "x", 0)).status).toBe(Status.CONFIG);
    expect(logs).toEqual(["warning: setenv: Invalid argument"]);
  });
});

describe("the environment of a whole process, against the C proxymap", () => {
  test("the same names answer the same values", async () => {
    const dir = mkdtempSync(join(tmp, "cf"));
    writeFileSync(join(dir, "main.cf"), "compatibility_level = 3.6\nproxy_read_maps = proxy:environ:e\n");
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, "main.cf"), past, past);
    const env = { MAIL_CONFIG: dir, PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TZ: "UTC", LANG: "C", PM_ENV_X: "x" };
    const names = ["MAIL_CONFIG", "PATH", "TZ", "LANG", "PM_ENV_X", "HOME", "PWD", "LOGNAME", "MAIL_LOGTAG", "GENERATION", "BUN_INSTALL", "NODE_OPTIONS", "_",
      // Properties of every JavaScript object are not variables.
      "constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "__defineGetter__"];
    const run = async (cmd: string[], name: string, extra: string[] = []) => {
      const req = Buffer.from(`request\0lookup\0table\0environ:e\0flags\0${DictFlag.UTF8_REQUEST}\0key\0${name}\0\0`, "latin1");
      const p = Bun.spawn([...cmd, "-S", "-V", ...extra], { env, stdin: req, stdout: "pipe", stderr: "ignore" });
      const out = await new Response(p.stdout).arrayBuffer();
      await p.exited;
      return Buffer.from(out).toString("latin1").replaceAll("\0", "|");
    };
    for (const name of names) {
      const [c, ours] = await Promise.all([run([C_PROXYMAP], name), run([process.execPath, MAIN], name)]);
      expect(`${name}: ${ours}`).toBe(`${name}: ${c}`);
    }
    // Both export MAIL_LOGTAG = $syslog_name, also when -o sets it.
    const extra = ["-o", "syslog_name=postfix-env"];
    const [c, ours] = await Promise.all([run([C_PROXYMAP], "MAIL_LOGTAG", extra), run([process.execPath, MAIN], "MAIL_LOGTAG", extra)]);
    expect(c).toContain("postfix-env");
    expect(ours).toBe(c);
  }, 60_000);
});
