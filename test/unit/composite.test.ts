/**
 * composite.test.ts - unionmap and pipemap beyond the golden cases
 * (test/golden/unionmap, test/golden/pipemap, run against the C proxymap by
 * tables.oracle.test.ts):
 *  - approval, compared with the C proxymap through the whole service
 *    (stand-alone -S mode, one lookup per process, the same main.cf):
 *    proxy:unionmap:{...} approves the composite as one name and none of
 *    its members; unionmap:{proxy:a, proxy:b} approves the members and not
 *    the composite; a member is never checked when the composite is used;
 *  - members shared between composites keep the flags of their first
 *    opener, as in the reference (dict_register());
 *  - a member whose file changes on disk is re-opened (the dict layer's
 *    rule for file tables applies to members too);
 *  - network members: a composite's lookup is a Promise, several are in
 *    flight at once, and a member waiting on a stalled server delays only
 *    the composites that contain it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { C_PROXYMAP } from "../helpers/reference";
import { requireCommand } from "../helpers/require";
import { SocketmapServer } from "../helpers/socketmap-server";
import { closeAllDicts, dictGet, openDict } from "../../src/tables/dict";
import { DictFlag, Status } from "../../src/protocol/constants";
import { setLogSinks } from "../../src/log/msg";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const tmp = mkdtempSync(join(tmpdir(), "composite-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function configDir(mainCf: string): string {
  const dir = join(tmp, `cf${++n}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "main.cf"), Buffer.from(`compatibility_level = 3.6\n${mainCf}\n`, "latin1"));
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, "main.cf"), past, past);
  return dir;
}

/** One lookup through a whole proxymap in -S mode: reply bytes (NUL as |) and warning lines. */
async function standalone(cmd: string[], dir: string, table: string, key: string): Promise<{ reply: string; log: string[] }> {
  const req = Buffer.from(`request\0lookup\0table\0${table}\0flags\0${DictFlag.UTF8_REQUEST}\0key\0${key}\0\0`, "latin1");
  const proc = Bun.spawn([...cmd, "-S", "-V"], { env: { MAIL_CONFIG: dir, PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, stdin: req, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).arrayBuffer(), proc.exited]);
  const log = Buffer.from(err)
    .toString("latin1")
    .split("\n")
    .filter((l) => /(warning|error|fatal): /.test(l))
    .map((l) => l.replace(/^.*?((warning|error|fatal): )/, "$1"));
  return { reply: Buffer.from(out).toString("latin1").replaceAll("\0", "|"), log };
}

describe("approval of composites, against the C proxymap", () => {
  const U = "unionmap:{inline:{a=1}, inline:{a=2}}";
  const UP = "unionmap:{proxy:inline:{a=1}, proxy:inline:{a=2}}";
  const P = "pipemap:{proxy:inline:{a=b}, proxy:inline:{b=c}}";
  const settings: Array<{ what: string; maps: string; requests: Array<[string, string]> }> = [
    {
      what: "proxy:unionmap:{...} approves the composite as one name",
      maps: `proxy:${U}`,
      requests: [[U, "a"], ["inline:{a=1}", "a"], [`unionmap:{inline:{a=1},inline:{a=2}}`, "a"]],
    },
    {
      what: "unionmap:{proxy:...} approves the members, not the composite",
      maps: UP,
      requests: [[UP, "a"], ["inline:{a=1}", "a"], ["inline:{a=2}", "a"]],
    },
    {
      what: "proxy:pipemap and its members",
      maps: `proxy:${P} ${P}`,
      requests: [[P, "a"], ["inline:{a=b}", "a"], ["inline:{b=c}", "b"]],
    },
    {
      what: "members are not checked when the composite is approved",
      maps: `proxy:unionmap:{static:x, proxy:inline:{a=b}}`,
      requests: [["unionmap:{static:x, proxy:inline:{a=b}}", "a"], ["static:x", "a"]],
    },
  ];
  for (const s of settings) {
    test(s.what, async () => {
      const dir = configDir(`proxy_read_maps = ${s.maps}`);
      for (const [table, key] of s.requests) {
        const [c, ours] = await Promise.all([standalone([C_PROXYMAP], dir, table, key), standalone([process.execPath, MAIN], dir, table, key)]);
        expect(ours).toEqual(c);
      }
    }, 30_000);
  }
});

describe("composites in our dict layer", () => {
  const logs: string[] = [];
  afterAll(async () => {
    await closeAllDicts();
    setLogSinks([{ write: (_s, l) => process.stderr.write(`proxymap: ${l}\n`) }]);
  });

  test("a member shared by two composites keeps its first opener's flags", async () => {
    setLogSinks([{ write: (_s, l) => logs.push(l) }]);
    const file = join(tmp, "shared");
    writeFileSync(file, "Key upper\n");
    const past = new Date(Date.now() - 60_000);
    utimesSync(file, past, past); // not a "hot" file: no settle pause
    const m = `texthash:${file}`;
    // First opened with FOLD_FIX: the member stores and looks up folded keys.
    const u1 = await openDict(`unionmap:{${m}}`, false, DictFlag.FOLD_FIX);
    expect(await dictGet(u1, "KEY", 0), logs.join("\n")).toMatchObject({ status: Status.OK, value: "upper" });
    // A pipemap opened without FOLD_FIX shares the member: still folding.
    const p = await openDict(`pipemap:{${m}}`, false, 0);
    expect(await dictGet(p, "KEY", 0)).toMatchObject({ status: Status.OK, value: "upper" });
    await closeAllDicts();
    // Once every composite is closed the member is forgotten; a new opener sets the flags.
    const u2 = await openDict(`unionmap:{${m}}`, false, 0);
    expect(await dictGet(u2, "KEY", 0)).toMatchObject({ status: Status.NOKEY, value: "" });
    expect(await dictGet(u2, "Key", 0)).toMatchObject({ status: Status.OK, value: "upper" });
    await closeAllDicts();
  });

  test("a member whose file changes is re-opened on a later lookup of the composite", async () => {
    const postmap = requireCommand("postmap", "apt-get install postfix");
    const file = join(tmp, "changing");
    writeFileSync(file, "k old\n");
    expect(Bun.spawnSync([postmap, `hash:${file}`]).exitCode).toBe(0);
    utimesSync(`${file}.db`, new Date(2020, 0, 1), new Date(2020, 0, 1));
    const u = await openDict(`unionmap:{hash:${file}, static:s}`, false, 0);
    expect(await dictGet(u, "k", 0)).toMatchObject({ status: Status.OK, value: "old,s" });
    writeFileSync(file, "k new\n");
    expect(Bun.spawnSync([postmap, `hash:${file}`]).exitCode).toBe(0);
    utimesSync(`${file}.db`, new Date(2021, 0, 1), new Date(2021, 0, 1));
    await Bun.sleep(1100); // the dict layer probes a file at most once a second
    expect(await dictGet(u, "k", 0)).toMatchObject({ status: Status.OK, value: "new,s" });
    await closeAllDicts();
  });

  test("network members: lookups in flight together; a stalled member delays only its composites", async () => {
    const fast = await SocketmapServer.start({ path: join(tmp, "fast.sock"), data: { m: { k: "fast" } } });
    const slow = await SocketmapServer.start({ path: join(tmp, "slow.sock"), data: { m: { k: "slow" } } });
    const stalled = await SocketmapServer.start({ path: join(tmp, "stall.sock"), mode: "stall" });
    try {
      const union = await openDict(`unionmap:{${fast.table("m")}, ${slow.table("m")}}`, false, 0);
      const pipe = await openDict(`pipemap:{${fast.table("m")}, inline:{fast=piped}}`, false, 0);
      const stuck = await openDict(`unionmap:{${fast.table("m")}, ${stalled.table("m")}}`, false, 0);
      let stuckDone = false;
      void Promise.resolve(dictGet(stuck, "k", 0)).then(() => (stuckDone = true));
      const t0 = Date.now();
      const rs = await Promise.all(Array.from({ length: 6 }, () => dictGet(union, "delay=200:k", 0)));
      expect(rs.every((r) => r.status === Status.OK && r.value === "fast,slow")).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1000); // serial: 6 x 2 x 200 ms
      expect(await dictGet(pipe, "k", 0)).toMatchObject({ status: Status.OK, value: "piped" });
      expect(stuckDone).toBe(false);
    } finally {
      await closeAllDicts();
      await Promise.all([fast.close(), slow.close(), stalled.close()]);
    }
  });
});
