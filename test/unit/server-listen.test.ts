/**
 * server-listen.test.ts - the --listen mode (no master): its own socket,
 * mode 0600 and owned by the serving user, no serving as root unless a user
 * is named (-u or --user), a stale socket file replaced, log lines on standard error, no
 * idle or use limit unless -i/-m are given; -S (one request on stdin, no
 * greeting); and what the skeleton does when the service reports a file
 * table changed on disk (by default nothing: the dict layer re-opens it;
 * with proxymap_table_change_restart = yes it exits like the reference).
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { WireClient } from "../helpers/wire";
import { MAIN, startListening, writeListenConfig } from "../helpers/listen";
import { PostfixInstance } from "../helpers/postfix-instance";
import { MultiServer } from "../../src/server/skeleton";
import { unixListen } from "../../src/sys/libc";
import { setLogSinks } from "../../src/log/msg";
import type { ProxymapService } from "../../src/service/proxymap";

const tmp = mkdtempSync(join(tmpdir(), "srv-listen-"));
let seq = 0;
const procs = new Set<Subprocess>();
afterEach(() => {
  for (const p of procs) p.kill("SIGKILL");
  procs.clear();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Log lines arrive on a pipe, possibly after the reply: wait for the text, then assert it. */
async function expectLog(get: () => string, text: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!get().includes(text) && Date.now() < end) await Bun.sleep(10);
  expect(get()).toContain(text);
}


function setup(mainCf: string[]): { dir: string; sock: string } {
  const dir = join(tmp, `l${++seq}`);
  writeListenConfig(dir, ["max_idle = 1", ...mainCf]);
  return { dir, sock: join(dir, "proxymap.sock") };
}

async function listen(dir: string, sock: string, args: string[] = []) {
  const l = await startListening(dir, sock, args);
  procs.add(l.proc);
  return { p: l.proc, out: l };
}

const lookup = (c: WireClient, table: string, key: string) => c.lookup(table, key);

describe("--listen", () => {
  test("serves on its own socket (mode 0600, owned by the user it serves as), replaces a stale socket, logs to stderr, no idle exit", async () => {
    const { dir, sock } = setup(["proxy_read_maps = proxy:inline:{a=1}", "mail_owner = postfix"]);
    // A stale socket file from an earlier run.
    const old = Bun.listen({ unix: sock, socket: { data() {} } });
    old.stop(true);
    const { p, out } = await listen(dir, sock, ["-u"]);
    const st = statSync(sock);
    expect(st.mode & 0o777).toBe(0o600);
    const postfix = PostfixInstance.postfixUser();
    expect([st.uid, st.gid]).toEqual([postfix.uid, postfix.gid]);
    expect(PostfixInstance.uids(p.pid)).toEqual([postfix.uid, postfix.uid, postfix.uid]);
    const c = await WireClient.connect(sock);
    expect(await lookup(c, "inline:{a=1}", "a")).toMatchObject({ status: "0", value: "1" });
    expect(await lookup(c, "inline:{x=1}", "x")).toMatchObject({ status: "4", value: "" });
    await expectLog(() => out.stderr, 'postfix/proxymap: warning: request for unapproved table: "inline:{x=1}"');
    c.close();
    await Bun.sleep(1500); // max_idle = 1 in main.cf does not apply without -i
    expect(p.exitCode).toBeNull();
  });

  test("-i applies the idle limit, -n proxywrite serves the write service", async () => {
    const { dir, sock } = setup([]);
    const { p, out } = await listen(dir, sock, ["--user", "root", "-n", "proxywrite", "-i", "1"]);
    const c = await WireClient.connect(sock);
    expect((await lookup(c, "inline:{a=1}", "a")).status).toBe("4");
    await expectLog(() => out.stderr, "to approve this table for read-write access, list proxy:inline:{a=1} in main.cf:proxy_write_maps");
    c.close();
    expect(await Promise.race([p.exited, Bun.sleep(4000).then(() => "still running")])).toBe(0);
  });
});

describe("--listen as root", () => {
  test("without -u or --user: refuses to serve, with a message that says what to give", async () => {
    const { dir, sock } = setup(["proxy_read_maps = proxy:inline:{a=1}", "mail_owner = postfix"]);
    const p = Bun.spawn([process.execPath, MAIN, "--listen", sock], {
      env: { PATH: "/usr/bin:/bin", MAIL_CONFIG: dir },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    procs.add(p);
    const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => "still running")]);
    const err = await new Response(p.stderr).text();
    expect(code).toBe(1);
    expect(err).toContain(`fatal: refusing to serve --listen ${sock} as root: give -u (serve as mail_owner, postfix) or --user NAME`);
    expect(() => statSync(sock)).toThrow();
  });

  test("--user NAME serves as NAME", async () => {
    const { dir, sock } = setup(["proxy_read_maps = proxy:inline:{a=1}"]);
    const { p } = await listen(dir, sock, ["--user", "nobody"]);
    const nobody = Number(Bun.spawnSync(["id", "-u", "nobody"]).stdout.toString().trim());
    expect(PostfixInstance.uids(p.pid)).toEqual([nobody, nobody, nobody]);
    expect(statSync(sock).uid).toBe(nobody);
    const c = await WireClient.connect(sock);
    expect(await lookup(c, "inline:{a=1}", "a")).toEqual({ status: "0", value: "1" });
    c.close();
  });
});

describe("-S", () => {
  test("one request on stdin, reply on stdout, no greeting; later requests ignored", () => {
    const { dir } = setup(["proxy_read_maps = proxy:inline:{a=1}", "mail_owner = nobody"]);
    const req = Buffer.from("request\0lookup\0table\0inline:{a=1}\0flags\x00524353\0key\0a\0\0", "latin1");
    const r = Bun.spawnSync([process.execPath, MAIN, "-S"], {
      env: { PATH: "/usr/bin:/bin", MAIL_CONFIG: dir },
      stdin: Buffer.concat([req, req]),
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.stdout.toString("latin1")).toBe("status\x000\x00value\x001\x00\x00");
    expect(r.exitCode).toBe(0);
  });
});

describe("a file table changed on disk (read service)", () => {
  // The skeleton only asks the service which table changed (dict layer:
  // changedTables()); a small service object of the test's own reports one.
  function changingService(changed: { name?: string }): ProxymapService {
    return {
      writer: false,
      settings: {} as ProxymapService["settings"],
      connect(io) {
        io.write(Buffer.from("protocol\0proxymap_protocol\0\0", "latin1"));
        return { feed() {}, end() {}, resume() {}, partial: false, pending: 0, close() {} };
      },
      changedTable: () => changed.name,
      inFlight: 0,
    };
  }
  const params = {
    maxIdle: 100,
    maxUse: 100,
    ipcTimeout: 3600,
    daemonTimeout: 18000,
    busyLagMs: 50,
    busyCpuPercent: 90,
    busyRequests: 0,
    tableChangeRestart: false,
    clientLimit: 100,
  };

  async function serve(restart: boolean) {
    const { sock } = setup([]);
    const changed: { name?: string } = {};
    const exits: number[] = [];
    const logged: string[] = [];
    setLogSinks([{ write: (_s, line) => logged.push(line) }]);
    const server = new MultiServer({
      service: changingService(changed),
      params: { ...params, tableChangeRestart: restart },
      serviceName: "proxymap",
      idleExit: false,
      useExit: false,
      exit: (code) => exits.push(code),
    });
    server.listenFd(unixListen(sock));
    await server.start();
    return { sock, changed, exits, logged, server };
  }

  test("by default the process goes on (the dict layer re-opens the table)", async () => {
    const t = await serve(false);
    const a = await WireClient.connect(t.sock);
    t.changed.name = "cdb:/etc/postfix/x";
    const b = await WireClient.connect(t.sock);
    expect(t.exits).toEqual([]);
    expect(b.greeting).toBeDefined();
    a.close();
    b.close();
    t.server.shutdown();
  });

  test("proxymap_table_change_restart = yes: exits when the next client arrives, like the reference", async () => {
    const t = await serve(true);
    const a = await WireClient.connect(t.sock);
    t.changed.name = "cdb:/etc/postfix/x";
    await WireClient.connect(t.sock, { greeting: false, timeoutMs: 1000 }).catch(() => undefined);
    const end = Date.now() + 2000;
    while (!t.exits.length && Date.now() < end) await Bun.sleep(10);
    expect(t.exits).toEqual([0]);
    expect(t.logged).toContain("table cdb:/etc/postfix/x has changed -- restarting");
    a.close();
    t.server.shutdown();
  });
});
