/**
 * The saved `postconf -d` output (src/config/defaultsCache.ts): used while
 * its key matches, ignored when anyone but root could have written it, and
 * never used for another postconf or configuration directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadPostfixDefaults } from "../../src/config/postfixDefaults";
import { defaultsKey } from "../../src/config/defaultsCache";
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
