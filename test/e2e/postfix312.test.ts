/**
 * postfix312.test.ts (e2e) - real Postfix 3.12 clients answered by ours
 * under a 3.12 master: two private instances of the 3.12 oracle tree
 * (test/helpers/oracle312.ts), one running the 3.12 C proxymap, one running
 * dist/proxymap as proxymap and proxywrite. The tree's own `postmap -q KEY
 * proxy:TYPE:NAME` (one key, keys on stdin, `-s` walks) must get the same
 * exit code, output and errors from both, for every table type the tree is
 * built with.
 *
 * Then how ours knows it runs in a 3.12 system: the instance's main.cf names
 * command_directory (as postfix-install writes it), so ours runs the tree's
 * postconf and saves its output; without command_directory, ours still finds
 * the tree's postconf beside the master that runs it (not /usr/sbin's 3.7).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ORACLE312_TREE, requireOracle312 } from "../helpers/oracle312";
import { OUR_PROXYMAP, PostfixInstance, type RunResult } from "../helpers/postfix-instance";
import { requireOurBinary } from "../helpers/require";
import { SocketmapServer } from "../helpers/socketmap-server";
import { TcpTableServer } from "../helpers/tcp-server";
import { WireClient, show } from "../helpers/wire";
import { SERVER312_DATA, makeTables312, writeFiles312, type Tables312 } from "../diff/corpus312";

setDefaultTimeout(60_000);

let dir = "";
let tables: Tables312;
let c: PostfixInstance | undefined;
let ours: PostfixInstance | undefined;
let servers: { sock: SocketmapServer; tcp: TcpTableServer } | undefined;
const live: PostfixInstance[] = [];

function norm(inst: PostfixInstance, r: RunResult): RunResult {
  const f = (s: string) => s.replaceAll(inst.base, "BASE");
  return { code: r.code, stdout: f(r.stdout), stderr: f(r.stderr) };
}

/** The same postmap run against both instances (asynchronously: the socketmap and tcp servers live in this process). */
async function both(args: string[], input?: string): Promise<{ c: RunResult; o: RunResult }> {
  const [rc, ro] = await Promise.all([c!.runAsync("postmap", args, input), ours!.runAsync("postmap", args, input)]);
  return { c: norm(c!, rc), o: norm(ours!, ro) };
}

describe("e2e: Postfix 3.12 clients, answered by ours under a 3.12 master", () => {
  beforeAll(async () => {
    requireOracle312();
    requireOurBinary();
    dir = mkdtempSync(join(tmpdir(), "pfx-e2e312-"));
    chmodSync(dir, 0o755);
    const [sock, tcp] = await Promise.all([SocketmapServer.start({ data: { fast: SERVER312_DATA, slow: SERVER312_DATA }, path: join(dir, "sm.sock") }), TcpTableServer.start({ data: SERVER312_DATA })]);
    servers = { sock, tcp };
    chmodSync(join(dir, "sm.sock"), 0o666);
    tables = makeTables312(join(dir, "tables"), { sockFast: sock.table("fast"), sockSlow: sock.table("slow"), tcp: tcp.table });
    writeFiles312(tables);
    const mainCf = { proxy_read_maps: tables.readMaps, proxy_write_maps: tables.writeMaps };
    [c, ours] = await Promise.all([
      PostfixInstance.start({ impl: "c", postfix: ORACLE312_TREE, label: "e2e312-c", mainCf }),
      PostfixInstance.start({ impl: "ours", postfix: ORACLE312_TREE, label: "e2e312-ours", mainCf }),
    ]);
    live.push(c, ours);
    for (const db of tables.databases) expect(c.run("postmap", [db]).code).toBe(0);
  });

  afterAll(async () => {
    for (const i of live) i.stop();
    if (servers) await Promise.all([servers.sock.close(), servers.tcp.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("postmap -q KEY proxy:TYPE:NAME: the same answers from ours as from the 3.12 C proxymap, for every type", async () => {
    const n = tables.named;
    const queries: [string, string][] = [];
    for (const t of [n.lab, n.inline, n.static, n.fail, n.unix, n.hash, n.btree, n.lmdb, n.cidr, n.regexp, n.union, n.unionSlow, n.pipe, n.environ, n.sock, n.tcp, n.missing])
      for (const key of (tables.keys.get(t) ?? ["a"]).filter((k) => k !== "").slice(0, 6)) queries.push([key, `proxy:${t}`]);
    queries.push(["a", "proxy:static:not-approved"]);
    const differ: string[] = [];
    let answered = 0;
    for (const [key, table] of queries) {
      const r = await both(["-q", key, table]);
      if (r.c.code === 0) answered++;
      if (JSON.stringify(r.c) !== JSON.stringify(r.o)) differ.push(`postmap -q ${show(key)} ${table}\n  C:    ${JSON.stringify(r.c)}\n  ours: ${JSON.stringify(r.o)}`);
    }
    console.log(`postmap -q: ${queries.length - differ.length}/${queries.length} runs the same (${answered} found a value)`);
    expect(answered).toBeGreaterThan(40);
    expect(differ).toEqual([]);
  });

  test("postmap -f -q (folded keys) and postmap -q - (keys on stdin, one connection)", async () => {
    const n = tables.named;
    for (const t of [n.lab, n.hash, n.union]) {
      const f = await both(["-f", "-q", "Carol@Example.COM", `proxy:${t}`]);
      expect(f.o).toEqual(f.c);
      const s = await both(["-q", "-", `proxy:${t}`], "alice\nCarol@Example.COM\nnope\nk013\nBob\n");
      expect(s.o).toEqual(s.c);
      expect(s.c.code).toBe(0);
    }
  });

  test("postmap -s proxy:TYPE:NAME walks the same entries", async () => {
    for (const t of [tables.named.lab, tables.named.hash, tables.named.btree, tables.named.lmdb]) {
      const r = await both(["-s", `proxy:${t}`]);
      const sorted = (x: RunResult) => ({ ...x, stdout: x.stdout.split("\n").sort().join("\n") });
      expect(sorted(r.o)).toEqual(sorted(r.c));
      expect(r.c.stdout).toContain("alice");
    }
  });

  test("the proxymap that answered is ours, and it read the 3.12 tree's defaults", async () => {
    const pids = await ours!.waitServicePids("proxymap");
    expect(pids.length).toBeGreaterThan(0);
    expect(readlinkSync(`/proc/${pids[0]}/exe`)).toBe(OUR_PROXYMAP);
    const saved = readdirSync(join(ours!.base, "data")).filter((f) => f.startsWith("proxymap-defaults."));
    expect(saved.length).toBe(1);
    const text = readFileSync(join(ours!.base, "data", saved[0]), "latin1");
    expect(text.split("\n")[0]).toContain(join(ORACLE312_TREE, "bin", "postconf"));
    expect(text).toContain("\nmail_version = 3.12-20260821\n");
  });

  test("without command_directory in main.cf, ours finds the tree's postconf beside the master that runs it", async () => {
    const inst = await PostfixInstance.start({ impl: "ours", postfix: ORACLE312_TREE, label: "e2e312-nocmd", mainCf: { command_directory: null, proxy_read_maps: "proxy:static:x" } });
    live.push(inst);
    expect(readFileSync(join(inst.configDir, "main.cf"), "latin1")).not.toContain("command_directory");
    const cl = await WireClient.connect(inst.socket("proxymap"));
    // A 3.10-shaped lookup: a 3.12 proxymap reads it as malformed.
    const r = await cl.exchange([["request", "lookup"], ["table", "static:x"], ["flags", "0"], ["key", "k"]]);
    cl.close();
    expect(r).toBe("status|3|flags|0|value|||");
    const saved = readdirSync(join(inst.base, "data")).filter((f) => f.startsWith("proxymap-defaults."));
    expect(readFileSync(join(inst.base, "data", saved[0]), "latin1").split("\n")[0]).toContain(join(ORACLE312_TREE, "bin", "postconf"));
  });
});
