/**
 * The approved-table set (src/service/approval.ts): Postfix 3.7's
 * authorize_proxied_maps() rules, and the 3.12 additions (/file/name
 * entries, smtpd_restriction_classes) that apply only when the installed
 * Postfix is 3.12 or later. The comparison with the real C proxymap (3.7)
 * is in approval-oracle.test.ts.
 *
 * The 3.12 expectations were checked once by hand against a proxymap built
 * from the Postfix mirror (postfix-3.12-20260821, `make makefiles` without
 * optional maps; only src/proxymap needs building): same allow-list, same
 * "bad syntax in ... content", "open ...", "read ...: Is a directory"
 * warnings, restriction classes for the read service only. That build is
 * not installed here, so it is not an automatic test.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Status } from "../../src/protocol/constants";
import { approvedTables, canonicalTableName, checkTable, type ApprovalOptions } from "../../src/service/approval";
import { capture } from "./fixtures/config/capture";

const V37: ApprovalOptions = { writer: false, generation: [3, 7, 11] };
const V312: ApprovalOptions = { writer: false, generation: [3, 12, 0] };

function approve(list: string, opts: ApprovalOptions = V37): string[] {
  return [...approvedTables(list, opts)].sort();
}

describe("Postfix 3.7 rules", () => {
  test.each([
    ["proxy:hash:/etc/aliases", ["hash:/etc/aliases"]],
    ["proxy:proxy:inline:{u=1}", ["inline:{u=1}"]],
    ["proxy:hash:/a, proxy:btree:/b\tproxy:lmdb:/c\nproxy:cdb:/d\rproxy:x:y", ["btree:/b", "cdb:/d", "hash:/a", "lmdb:/c", "x:y"]],
    ["hash:/etc/aliases", []],
    ["check_client_access proxy:hash:/x reject", ["hash:/x"]],
    ["proxy:inline:{ u=1, v=2 }", ["inline:{ u=1, v=2 }"]],
    ["unionmap:{proxy:inline:{u=1},proxy:inline:{u=2}}", ["inline:{u=1}", "inline:{u=2}"]],
    ["pipemap:{proxy:inline:{a=b}, hash:/x}", ["inline:{a=b}"]],
    ["unionmap:{unionmap:{proxy:a:b}} pipemap:{{proxy:c:d}}", ["a:b", "c:d"]],
    ["proxy:unionmap:{proxy:inline:{u=1},proxy:inline:{u=2}}", ["unionmap:{proxy:inline:{u=1},proxy:inline:{u=2}}"]],
    ["{proxy:hash:/x} {proxy:ldap:/y attr=1}", ["hash:/x", "ldap:/y"]],
    ["{ proxy:hash:/x }", ["hash:/x"]],
    ["{hash:/x proxy:hash:/y}", []], // only the first word inside {} counts
    ["proxy:nocolon proxy: proxy:proxy:", []],
    ["unionmap:proxy:a:b", []], // nested type without {}
    ["Proxy:hash:/x PROXY:hash:/y", []],
    ["proxy:hash:/x proxy:hash:/x", ["hash:/x"]],
    ["proxy:/file/name:x", ["/file/name:x"]],
    ["", []],
    [" , ,, ", []],
  ])("%j", (list, expected) => {
    expect(approve(list)).toEqual(expected);
  });

  test("{} syntax errors warn with the parameter's name and skip the word", () => {
    const c = capture(() => approve("{proxy:a:b}x proxy:c:d {proxy:e:f"));
    expect(c.result).toEqual(["c:d"]);
    expect(c.lines).toEqual([
      `warning: bad proxy_read_maps parameter value: syntax error after '}' in "{proxy:a:b}x"`,
      `warning: bad proxy_read_maps parameter value: missing '}' in "{proxy:e:f"`,
    ]);
  });

  test("nested syntax errors and the write service's parameter name", () => {
    const c = capture(() => approve("unionmap:{proxy:a:b}junk", { writer: true, generation: [3, 7, 11] }));
    expect(c.result).toEqual([]);
    expect(c.lines).toEqual([`warning: bad proxy_write_maps parameter value: syntax error after '}' in "{proxy:a:b}junk"`]);
  });

  test("a /file/name approves nothing before 3.12", () => {
    const dir = fileDir();
    writeFileSync(join(dir, "list"), "proxy:hash:/from/file\n");
    expect(approve(`${dir}/list`)).toEqual([]);
  });
});

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
function fileDir(): string {
  const d = mkdtempSync(join(tmpdir(), "approval-"));
  made.push(d);
  return d;
}

describe("Postfix 3.12 rules (installed generation >= 3.12)", () => {
  test("/file/name entries are read: logical lines, comments, nested files", () => {
    const dir = fileDir();
    writeFileSync(join(dir, "inner"), "proxy:cdb:/inner\n");
    writeFileSync(
      join(dir, "outer"),
      `# comment proxy:hash:/no\nproxy:hash:/a  check_sender_access\n  proxy:btree:/continued\n${dir}/inner\n{proxy:lmdb:/grouped}\n`,
    );
    expect(approve(`proxy:x:y ${dir}/outer`, V312)).toEqual(["btree:/continued", "cdb:/inner", "hash:/a", "lmdb:/grouped", "x:y"]);
  });

  test("file problems are warnings", () => {
    const dir = fileDir();
    const c = capture(() => approve(`${dir}/missing ${dir}`, V312));
    expect(c.result).toEqual([]);
    expect(c.lines).toEqual([`warning: open ${dir}/missing: No such file or directory`, `warning: read ${dir}: Is a directory`]);
  });

  test("a file that names itself is read once", () => {
    const dir = fileDir();
    writeFileSync(join(dir, "self"), `proxy:a:b ${dir}/self\n`);
    expect(approve(`${dir}/self`, V312)).toEqual(["a:b"]);
  });

  test("syntax warnings name where the text came from", () => {
    const dir = fileDir();
    writeFileSync(join(dir, "bad"), "{proxy:a:b\n");
    const c = capture(() => approve(`{x}y ${dir}/bad`, V312));
    expect(c.lines).toEqual([
      `warning: bad syntax in proxy_read_maps content: syntax error after '}' in "{x}y"`,
      `warning: bad syntax in ${dir}/bad content: missing '}' in "{proxy:a:b"`,
    ]);
  });

  test("words must start with a letter or digit and contain ':' before proxy: is stripped", () => {
    expect(approve("[proxy:a:b] proxy:nocolon", V312)).toEqual(["nocolon"]);
    expect(approve("[proxy:a:b] proxy:nocolon", V37)).toEqual([]);
  });

  test("restriction classes are searched by the read service only", () => {
    const rc = {
      value: "class1, class2 undefined_class",
      lookup: (n: string) => ({ class1: "check_sender_access proxy:hash:/c1", class2: "unionmap:{proxy:cdb:/c2}" })[n],
    };
    expect(approve("proxy:a:b", { ...V312, restrictionClasses: rc })).toEqual(["a:b", "cdb:/c2", "hash:/c1"]);
    expect(approve("proxy:a:b", { ...V312, writer: true, restrictionClasses: rc })).toEqual(["a:b"]);
    expect(approve("proxy:a:b", { ...V37, restrictionClasses: rc })).toEqual(["a:b"]);
  });
});

describe("checking a request's table", () => {
  const approved = new Set(["inline:{u=1}", "hash:/etc/aliases"]);

  test("proxy: prefixes of the request are stripped", () => {
    expect(canonicalTableName("proxy:proxy:hash:/x")).toBe("hash:/x");
  });

  test("approved, denied (with both warnings), and malformed", () => {
    expect(checkTable(approved, "proxy:inline:{u=1}", false)).toEqual({ status: Status.OK, name: "inline:{u=1}" });
    const c = capture(() => checkTable(approved, "inline:{ u=1 }", false));
    expect(c.result).toEqual({ status: Status.DENY, name: "inline:{ u=1 }" });
    expect(c.lines).toEqual([
      'warning: request for unapproved table: "inline:{ u=1 }"',
      "warning: to approve this table for read-only access, list proxy:inline:{ u=1 } in main.cf:proxy_read_maps",
    ]);
    const w = capture(() => checkTable(approved, "btree:/x", true));
    expect(w.lines[1]).toBe("warning: to approve this table for read-write access, list proxy:btree:/x in main.cf:proxy_write_maps");
    expect(checkTable(approved, "proxy:nocolon", false).status).toBe(Status.BAD);
  });
});
