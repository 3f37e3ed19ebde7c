/**
 * master.test.ts - a real Postfix master(8) runs our dist/proxymap as both
 * the proxymap and the proxywrite service, and real Postfix clients
 * (postmap) talk to it.
 *
 * Every client command runs against two private instances, one whose
 * proxymap is the system's C binary and one whose proxymap is ours, with the
 * same main.cf approvals and the same table files: exit code, stdout and
 * stderr must be equal. Then what only ours can show: the log lines of a
 * refusal, the processes master started (our executable, as mail_owner,
 * one per service), and the life cycle under master (max_idle, max_use,
 * master going away), each also run against the C binary as a control.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OUR_PROXYMAP, PostfixInstance, type ProxymapImpl, type RunResult } from "../helpers/postfix-instance";
import { requireOurBinary, requirePostfix } from "../helpers/require";
import { attrsToObject, WireClient } from "../helpers/wire";

setDefaultTimeout(60_000);

let dir = "";
let ref: PostfixInstance | undefined;
let ours: PostfixInstance | undefined;
const live: PostfixInstance[] = [];

function tables() {
  const th = `texthash:${dir}/aliases`;
  return {
    th,
    read: [`proxy:${th}`, "proxy:inline:{a=1,b=2}", "proxy:static:demo", "proxy:unix:passwd.byname", "proxy:unix:group.byname", "proxy:fail:down"].join(" "),
    write: [`proxy:${th}`, "proxy:inline:{a=1,b=2}"].join(", "),
  };
}

/** A postmap run with the instance's own paths replaced, so two instances compare. */
function norm(inst: PostfixInstance, r: RunResult): RunResult {
  const f = (s: string) => s.replaceAll(inst.base, "BASE");
  return { code: r.code, stdout: f(r.stdout), stderr: f(r.stderr) };
}

function both(args: string[], input?: string): { c: RunResult; o: RunResult } {
  return { c: norm(ref!, ref!.run("postmap", args, input)), o: norm(ours!, ours!.run("postmap", args, input)) };
}

describe("e2e: a real master runs dist/proxymap", () => {
  beforeAll(async () => {
    requirePostfix();
    requireOurBinary();
    dir = mkdtempSync(join(tmpdir(), "pfx-e2e-tables-"));
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, "aliases"),
      Buffer.from("# aliases\nalice   alice@example.com\nBob     bob@example.com\npostmaster root\ncarol   a, b,\n  c\nm\xc3\xbcller  umlaut\n", "latin1"),
      { mode: 0o644 },
    );
    const t = tables();
    const mainCf = { proxy_read_maps: t.read, proxy_write_maps: t.write };
    [ref, ours] = await Promise.all([
      PostfixInstance.start({ impl: "c", label: "e2e-c", mainCf }),
      PostfixInstance.start({ impl: "ours", label: "e2e-ours", mainCf }),
    ]);
  });

  afterAll(() => {
    ref?.stop();
    ours?.stop();
    for (const i of live) i.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("postmap -q answers equal the C proxymap's for texthash, inline, static, unix and fail", () => {
    const t = tables();
    const queries: [string, string][] = [
      ["alice", `proxy:${t.th}`], ["ALICE", `proxy:${t.th}`], ["bob", `proxy:${t.th}`], ["Bob", `proxy:${t.th}`],
      ["postmaster", `proxy:${t.th}`], ["carol", `proxy:${t.th}`], ["müller", `proxy:${t.th}`], ["MÜLLER", `proxy:${t.th}`],
      ["nobody-here", `proxy:${t.th}`],
      ["a", "proxy:inline:{a=1,b=2}"], ["B", "proxy:inline:{a=1,b=2}"], ["c", "proxy:inline:{a=1,b=2}"],
      ["anything", "proxy:static:demo"],
      ["root", "proxy:unix:passwd.byname"], ["postfix", "proxy:unix:passwd.byname"], ["nobody", "proxy:unix:passwd.byname"],
      ["ROOT", "proxy:unix:passwd.byname"], ["no-such-user-xyz", "proxy:unix:passwd.byname"],
      ["root", "proxy:unix:group.byname"], ["postdrop", "proxy:unix:group.byname"],
      ["x", "proxy:fail:down"],
    ];
    const diffs: string[] = [];
    for (const [key, table] of queries) {
      // Arguments are passed as UTF-8 (as a shell would pass them).
      const { c, o } = both(["-q", key, table]);
      if (JSON.stringify(c) !== JSON.stringify(o)) diffs.push(`postmap -q ${key} ${table}\n  C:    ${JSON.stringify(c)}\n  ours: ${JSON.stringify(o)}`);
    }
    expect(diffs.join("\n")).toBe("");
    // And the answers are real ones.
    expect(ours!.postmapQuery("root", "proxy:unix:passwd.byname").stdout).toMatch(/^root:x:0:0:/);
    expect(ours!.postmapQuery("alice", `proxy:${t.th}`).stdout).toBe("alice@example.com\n");
  });

  test("postmap -q - (many keys over one connection) equals the reference", () => {
    const t = tables();
    for (const table of [`proxy:${t.th}`, "proxy:unix:passwd.byname", "proxy:inline:{a=1,b=2}"]) {
      const { c, o } = both(["-q", "-", table], "alice\nbob\nroot\na\nb\nnobody\nzzz\npostmaster\n");
      expect(o).toEqual(c);
    }
  });

  test("an unapproved table: postmap fails as with the reference, and ours logs the two warnings", async () => {
    const mark = ours!.logMark();
    const { c, o } = both(["-q", "x", "proxy:static:nope"]);
    expect(o).toEqual(c);
    expect(o.code).not.toBe(0);
    const log = await ours!.waitForLog(/to approve this table/, 5000, mark);
    expect(log).toMatch(/postfix\/proxymap\[\d+\]: warning: request for unapproved table: "static:nope"\n/);
    expect(log).toMatch(/postfix\/proxymap\[\d+\]: warning: to approve this table for read-only access, list proxy:static:nope in main\.cf:proxy_read_maps\n/);
  });

  test("proxywrite: postmap -d answers as the reference; unapproved write tables are refused with the read-write wording", async () => {
    const t = tables();
    for (const args of [["-d", "alice", `proxy:${t.th}`], ["-d", "a", "proxy:inline:{a=1,b=2}"], ["-d", "x", "proxy:static:demo"]]) {
      const { c, o } = both(args);
      expect(o).toEqual(c);
    }
    const mark = ours!.logMark();
    both(["-d", "x", "proxy:unix:passwd.byname"]);
    const log = await ours!.waitForLog(/to approve this table/, 5000, mark);
    expect(log).toMatch(/warning: request for unapproved table: "unix:passwd.byname"\n/);
    expect(log).toMatch(/warning: to approve this table for read-write access, list proxy:unix:passwd.byname in main\.cf:proxy_write_maps\n/);
  });

  test("master runs our executable for both services, each as mail_owner", async () => {
    const t = tables();
    ours!.postmapQuery("alice", `proxy:${t.th}`);
    ours!.run("postmap", ["-d", "zz", `proxy:${t.th}`]);
    const [pm, pw] = await Promise.all([ours!.waitServicePids("proxymap"), ours!.waitServicePids("proxywrite")]);
    expect(pm.length).toBeGreaterThan(0);
    expect(pw.length).toBeGreaterThan(0);
    const pf = PostfixInstance.postfixUser();
    const ourExe = realpathSync(OUR_PROXYMAP);
    for (const pid of [...pm, ...pw]) {
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe(ourExe);
      expect(PostfixInstance.uids(pid)).toEqual([pf.uid, pf.uid, pf.uid]);
      expect(PostfixInstance.gids(pid)).toEqual([pf.gid, pf.gid, pf.gid]);
    }
    // Supplementary groups as the reference sets them (initgroups of mail_owner).
    ref!.postmapQuery("alice", `proxy:${t.th}`);
    const cpid = (await ref!.waitServicePids("proxymap"))[0];
    const groups = (pid: number) => /Groups:\s*([^\n]*)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))![1].trim();
    expect(groups(pm[0])).toBe(groups(cpid));
  });
});

/** Life cycle under master, for one implementation (the C binary is the control). */
function lifecycle(impl: ProxymapImpl, name: string) {
  describe(`e2e life cycle under master: ${name}`, () => {
    let inst: PostfixInstance;
    beforeAll(async () => {
      requirePostfix();
      if (impl === "ours") requireOurBinary();
      inst = await PostfixInstance.start({
        impl,
        label: `life-${name}`,
        mainCf: { proxy_read_maps: "proxy:static:one proxy:unix:passwd.byname" },
        proxymapArgs: ["-o", "max_idle=2", "-o", "max_use=3"],
      });
      live.push(inst);
    });
    afterAll(() => inst?.stop());

    test("exits after max_idle seconds without clients, and master starts a new process on demand", async () => {
      expect(inst.postmapQuery("k", "proxy:static:one").stdout).toBe("one\n");
      const [pid] = await inst.waitServicePids("proxymap");
      expect(pid).toBeGreaterThan(0);
      const t0 = Date.now();
      while (PostfixInstance.isAlive(pid) && Date.now() - t0 < 6000) await Bun.sleep(50);
      const idle = Date.now() - t0;
      expect(PostfixInstance.isAlive(pid)).toBe(false);
      expect(idle).toBeGreaterThan(1000);
      expect(inst.postmapQuery("k", "proxy:static:one").stdout).toBe("one\n");
      const [pid2] = await inst.waitServicePids("proxymap");
      expect(pid2).not.toBe(pid);
      // A clean exit: master logs nothing about it.
      await Bun.sleep(200);
      expect(inst.log()).not.toMatch(/proxymap pid \d+ (exit status|killed by signal)/);
    });

    test("exits after max_use connections: the 4th client gets a new process", async () => {
      // Start from a fresh process: wait for the current one to go idle and exit.
      for (const p of inst.servicePids("proxymap")) while (PostfixInstance.isAlive(p)) await Bun.sleep(50);
      const pids: number[] = [];
      for (let i = 0; i < 4; i++) {
        // Find the serving process while the connection is open, then close it.
        const cl = await WireClient.connect(inst.socket("proxymap"));
        const r = await cl.request([["request", "lookup"], ["table", "unix:passwd.byname"], ["flags", "524353"], ["key", "root"]]);
        expect(r.kind === "reply" && attrsToObject(r.attrs)).toEqual({ status: "0", value: "root:x:0:0:root:/root:/bin/bash" });
        const now = inst.servicePids("proxymap");
        expect(now.length).toBe(1);
        pids.push(now[0]);
        cl.close();
        // Let the server see the close before the next client comes (a connection that
        // overlaps the last close is served too, by the reference as well).
        await Bun.sleep(100);
        if (i === 2) {
          const t0 = Date.now();
          while (PostfixInstance.isAlive(pids[0]) && Date.now() - t0 < 3000) await Bun.sleep(20);
          expect(PostfixInstance.isAlive(pids[0])).toBe(false);
        }
      }
      expect(new Set(pids.slice(0, 3)).size).toBe(1);
      expect(pids[3]).not.toBe(pids[0]);
      await Bun.sleep(200);
      expect(inst.log()).not.toMatch(/proxymap pid \d+ (exit status|killed by signal)/);
    });

    test("both services exit when master goes away (status channel end-of-file)", async () => {
      inst.postmapQuery("k", "proxy:static:one");
      inst.run("postmap", ["-d", "k", "proxy:static:one"]);
      const procs = [...(await inst.waitServicePids("proxymap")), ...(await inst.waitServicePids("proxywrite"))];
      expect(procs.length).toBeGreaterThanOrEqual(2);
      // SIGKILL: master cannot signal its children; proxywrite is not even in its process group.
      process.kill(inst.masterPid, "SIGKILL");
      const t0 = Date.now();
      while (procs.some((p) => PostfixInstance.isAlive(p)) && Date.now() - t0 < 5000) await Bun.sleep(50);
      expect(procs.filter((p) => PostfixInstance.isAlive(p))).toEqual([]);
    });
  });
}

lifecycle("c", "C proxymap (control)");
lifecycle("ours", "dist/proxymap");
