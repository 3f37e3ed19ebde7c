/**
 * The saved `postconf -d` output (src/config/defaultsCache.ts): used while
 * its key matches, ignored when anyone but root could have written it, and
 * never used for another postconf or configuration directory. What the mail
 * owner can plant in data_directory in its place (a FIFO, a symbolic link,
 * a hard link, a device) is neither waited on nor read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPostfixDefaults } from "../../src/config/postfixDefaults";
import { defaultsKey, readDefaultsCache } from "../../src/config/defaultsCache";
import { requireCommand } from "../helpers/require";

const POSTCONF = "/usr/sbin/postconf";
const dataDir = mkdtempSync(join(tmpdir(), "pm-defcache-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function cacheFile(): string {
  const files = readdirSync(dataDir).filter((f) => f.startsWith("proxymap-defaults."));
  expect(files.length).toBe(1);
  return join(dataDir, files[0]);
}

describe("saved postconf -d output", () => {
  test("first start saves it; later starts read it instead of running postconf", () => {
    requireCommand(POSTCONF, "apt-get install postfix");
    const first = loadPostfixDefaults("/etc/postfix", undefined, [POSTCONF], dataDir);
    expect(first.source).toBe("postconf");
    const file = cacheFile();
    const text = readFileSync(file, "latin1");
    expect(text.split("\n", 1)[0]).toBe(defaultsKey(POSTCONF, "/etc/postfix")!);
    // Mark the saved copy: a read that returns the mark came from the file.
    writeFileSync(file, text.replace(/^mail_version = .*$/m, "mail_version = 9.9.9-saved"), { mode: 0o644 });
    const second = loadPostfixDefaults("/etc/postfix", undefined, [POSTCONF], dataDir);
    expect(second.values.get("mail_version")).toBe("9.9.9-saved");
    expect(second.values.get("proxy_read_maps")).toBe(first.values.get("proxy_read_maps"));
  });

  test("a copy others could have written is ignored and replaced", () => {
    const file = cacheFile();
    chmodSync(file, 0o666);
    const again = loadPostfixDefaults("/etc/postfix", undefined, [POSTCONF], dataDir);
    expect(again.values.get("mail_version")).not.toBe("9.9.9-saved");
  });

  test("a copy whose key does not match (another configuration directory) is not used", () => {
    const file = cacheFile();
    const text = readFileSync(file, "latin1");
    writeFileSync(file, text.replace(/^mail_version = .*$/m, "mail_version = 9.9.9-saved"), { mode: 0o644 });
    const other = loadPostfixDefaults("/etc/postfix-other", undefined, [POSTCONF], dataDir);
    expect(other.values.get("mail_version")).not.toBe("9.9.9-saved");
  });

  test("the key changes with the postconf program", () => {
    expect(defaultsKey(POSTCONF, "/etc/postfix")).not.toBe(defaultsKey("/usr/sbin/postmap", "/etc/postfix"));
    expect(defaultsKey("/nonexistent/postconf", "/etc/postfix")).toBeUndefined();
  });
});

describe("what the mail owner can plant in data_directory", () => {
  const KEY = "KEY";
  const CONFIG = "/etc/postfix-planted";
  /** Where the cache file for CONFIG would be. */
  function plantedPath(dir: string): string {
    const name = `proxymap-defaults.${Bun.hash(CONFIG).toString(16)}`;
    return join(dir, name);
  }
  const good = (dir: string) => {
    const p = join(dir, "elsewhere");
    writeFileSync(p, `${KEY}\nmail_version = 1.2.3\n`, { mode: 0o644 });
    return p;
  };

  test("a plain root-owned file is read (the control)", () => {
    const dir = mkdtempSync(join(dataDir, "plant-"));
    writeFileSync(plantedPath(dir), `${KEY}\nmail_version = 1.2.3\n`, { mode: 0o644 });
    expect(readDefaultsCache(dir, CONFIG, KEY)).toBe("mail_version = 1.2.3\n");
  });

  test("a FIFO: start-up does not hang in open(), nothing is read", async () => {
    const dir = mkdtempSync(join(dataDir, "plant-"));
    const fifo = plantedPath(dir);
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // In a child process: a blocking open() would hang this test runner itself.
    const mod = join(import.meta.dir, "..", "..", "src", "config", "defaultsCache.ts");
    const code = `const { readDefaultsCache } = await import(${JSON.stringify(mod)}); console.log(JSON.stringify(readDefaultsCache(${JSON.stringify(dir)}, ${JSON.stringify(CONFIG)}, "KEY") ?? null));`;
    const p = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), 5000);
    const out = await new Response(p.stdout).text();
    clearTimeout(timer);
    expect(await p.exited).toBe(0);
    expect(out.trim()).toBe("null");
  });

  test("a symbolic link to a good root-owned file is not followed", () => {
    const dir = mkdtempSync(join(dataDir, "plant-"));
    symlinkSync(good(dir), plantedPath(dir));
    expect(readDefaultsCache(dir, CONFIG, KEY)).toBeUndefined();
  });

  test("a hard link to a root-owned file is not read", () => {
    const dir = mkdtempSync(join(dataDir, "plant-"));
    linkSync(good(dir), plantedPath(dir));
    expect(readDefaultsCache(dir, CONFIG, KEY)).toBeUndefined();
  });

  test("a device node is not even opened", () => {
    const dir = mkdtempSync(join(dataDir, "plant-"));
    // /dev/zero's numbers: reading it would never end.
    expect(Bun.spawnSync(["mknod", plantedPath(dir), "c", "1", "5"]).exitCode).toBe(0);
    expect(readDefaultsCache(dir, CONFIG, KEY)).toBeUndefined();
  });
});
