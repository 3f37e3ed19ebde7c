/**
 * debug (3.11+): debug:TYPE:NAME is TYPE:NAME with every operation logged
 * as Postfix 3.12's dict_debug.c logs it. It is a wrapper, not a table of
 * its own, so instead of the shared suite it is checked for what it adds:
 * the answers and flags of the table inside, the log lines, the inner
 * table's own failures, and its absence for up-to-3.10 requests.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { setLogSinks } from "../../src/log/msg";
import { DictFlag, Status } from "../../src/protocol/constants";
import { closeAllDicts, dictDel, dictGet, dictPut, dictSeq, openDict } from "../../src/tables/dict";

let logs: string[] = [];
beforeAll(() => setLogSinks([{ write: (_level, text) => logs.push(text) }]));
afterAll(() => setLogSinks([]));
afterEach(async () => {
  await closeAllDicts();
  logs = [];
});

describe("debug conformance", () => {
  test("answers and flags are the inner table's, each operation logged", async () => {
    const d = await openDict("debug:inline:{alpha=1, {beta = two words}}", false, DictFlag.LOCK, "instance");
    expect(d.flags).toBe(DictFlag.LOCK | DictFlag.FIXED);
    expect(await dictGet(d, "ALPHA", DictFlag.LOCK | DictFlag.FOLD_FIX)).toEqual({ status: Status.OK, value: "1", flags: DictFlag.LOCK | DictFlag.FOLD_FIX });
    expect(await dictGet(d, "gamma", 0)).toMatchObject({ status: Status.NOKEY });
    const first = await dictSeq(d, 0, 0);
    expect(first.status).toBe(Status.OK);
    expect(["alpha=1", "beta=two words"]).toContain(`${first.key}=${first.value}`);
    expect(logs).toEqual([
      'inline:{alpha=1, {beta = two words}} lookup: "ALPHA" = "1"',
      'inline:{alpha=1, {beta = two words}} lookup: "gamma" = "not_found"',
      `inline:{alpha=1, {beta = two words}} sequence: "${first.key}" = "${first.value}"`,
    ]);
  });

  test("the inner table's failures are its own (a read-only table on the write service)", async () => {
    const d = await openDict("debug:inline:{a=1}", true, 0, "instance");
    expect((await dictPut(d, "k", "v", 0)).status).toBe(Status.RETRY);
    expect((await dictDel(d, "k", 0)).status).toBe(Status.RETRY);
    const why = "inline:{a=1} is unavailable. inline:{a=1} map requires O_RDONLY access mode";
    expect(logs).toEqual([
      "error: inline:{a=1} map requires O_RDONLY access mode",
      `warning: ${why}`,
      'inline:{a=1} update: "k" = "v": error',
      `warning: ${why}`,
      'inline:{a=1} delete: "k": error',
    ]);
  });

  test("unknown to up-to-3.10 requests, as there", async () => {
    const d = await openDict("debug:inline:{a=1}", false, 0);
    expect(await dictGet(d, "a", 0)).toMatchObject({ status: Status.RETRY });
    expect(logs).toEqual(["error: unsupported dictionary type: debug", "warning: debug:inline:{a=1} is unavailable. unsupported dictionary type: debug"]);
  });
});
