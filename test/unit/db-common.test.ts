/**
 * The parts of Postfix's cfg_parser and db_common that the sqlite and mysql
 * drivers share (src/tables/dbCommon): both parse and match alike, as the
 * reference does with one cfg_parser and one match_list for every table type.
 */
import { TEST_CTX } from "../helpers/driver-caller";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CfgParser } from "../../src/tables/dbCommon/cfgParser";
import { DomainList } from "../../src/tables/dbCommon/domain";
import { setUtf8Enabled } from "../../src/tables/utf8";
import { logged } from "../helpers/logs";
import { writeCoolFile } from "../helpers/files";

const dir = mkdtempSync(join(tmpdir(), "dbcommon-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  setUtf8Enabled(false);
});

const coolFile = (name: string, text: string) => writeCoolFile(join(dir, name), text);

describe("configuration files", () => {
  test("a line ends at its first NUL byte", () => {
    const cfg = CfgParser.open(coolFile("nul.cf", "query = SELECT 1\0 garbage\n")) as CfgParser;
    expect(cfg.str("query", null)).toBe("SELECT 1");
  });

  test("a directory is a configuration error, a missing file a temporary one", () => {
    expect(() => CfgParser.open(dir)).toThrow(expect.objectContaining({ kind: "config", message: expect.stringMatching(/^read .*: Is a directory$/) }));
    expect(() => CfgParser.open(join(dir, "absent.cf"))).toThrow(expect.objectContaining({ kind: "retry" }));
  });

  test("a file modified within the last second is read after it has cooled down", async () => {
    const p = join(dir, "hot.cf");
    writeFileSync(p, "query = SELECT 2\n");
    const r = CfgParser.open(p);
    expect(r).toBeInstanceOf(Promise);
    expect((await r).str("query", null)).toBe("SELECT 2");
  });
});

describe("domain lists (match_list)", () => {
  test("literals and the key's domain are case-folded, UTF-8 aware when smtputf8 is on", () => {
    setUtf8Enabled(true);
    const d = DomainList.parse("t.cf", "Example.COM, \xc3\x84rger.example", TEST_CTX);
    expect(d.check("user@EXAMPLE.com")).toBe("match");
    expect(d.check("user@\xc3\xa4rger.EXAMPLE")).toBe("match");
    expect(d.check("user@other.example")).toBe("nomatch");
    expect(d.check("@example.com")).toBe("nomatch");
  });

  test('a "#" word ends the list; the warning shows it and the rest as "%s %s"', async () => {
    const r = await logged(() => DomainList.parse("t.cf", "a.example #comment", TEST_CTX));
    expect(r.logs).toEqual(["warning: t.cf: comment at end of line is not supported: #comment "]);
    expect(r.value.check("u@a.example")).toBe("match");
  });
});
