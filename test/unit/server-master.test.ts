/**
 * server-master.test.ts - life under master(8), with the test playing
 * master: it binds the service's listening UNIX sockets and passes them on
 * fd 6, 7, ..., and passes one end of a socketpair on fd 5 as the status
 * channel, exactly as master's fork/exec does; then it checks accepting,
 * the greeting and replies, the 12-byte status records, and every way the
 * process ends (status channel end-of-file, max_idle, max_use, SIGTERM),
 * ipc_timeout on a stalled request, the fatal start-up errors, and, as root,
 * -u (mail_owner's uid/gid) and -c (chroot), and setsid() for proxywrite.
 *
 * The daemon runs from the sources (`bun src/main.ts`), so these tests need
 * no build; test/unit/build.test.ts runs the built executable under a real
 * Postfix master.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket, Subprocess } from "bun";
import { closeFd, unixListen, getpwnam } from "../../src/sys/libc";
import { decodeStatus } from "../../src/server/masterStatus";
import { WireClient } from "../helpers/wire";

const MAIN = join(import.meta.dir, "..", "..", "src", "main.ts");
const tmp = mkdtempSync(join(tmpdir(), "srv-master-"));
let seq = 0;
const live = new Set<Sim>();
afterEach(() => {
  for (const s of live) s.kill();
  live.clear();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Log lines arrive on a pipe, possibly after the reply: wait for the text, then assert it. */
async function expectLog(get: () => string, text: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!get().includes(text) && Date.now() < end) await Bun.sleep(10);
  expect(get()).toContain(text);
}

interface StatusRecord {
  pid: number;
  generation: number;
  avail: number;
}

class Sim {
  readonly status: StatusRecord[] = [];
  stderr = "";
  exitCode: number | null = null;
  signal: unknown = null;
  private statusSock: Socket<unknown> | undefined;
  private statusBuf = new Uint8Array(0);

  constructor(
    readonly proc: Subprocess<"ignore", "ignore", "pipe">,
    readonly dir: string,
    readonly paths: string[],
    private readonly listenFds: number[],
  ) {
    void (async () => {
      for await (const chunk of proc.stderr) this.stderr += Buffer.from(chunk).toString("latin1");
    })();
    void proc.exited.then((code) => {
      this.exitCode = code;
      this.signal = proc.signalCode;
    });
  }

  async openStatus(): Promise<void> {
    const fd = (this.proc.stdio as unknown as number[])[5];
    const self = this;
    this.statusSock = await Bun.connect({
      fd,
      socket: {
        data(_s: unknown, d: Uint8Array) {
          const b = new Uint8Array(self.statusBuf.length + d.length);
          b.set(self.statusBuf);
          b.set(d, self.statusBuf.length);
          let off = 0;
          for (; off + 12 <= b.length; off += 12) self.status.push(decodeStatus(b.subarray(off, off + 12)));
          self.statusBuf = b.slice(off);
        },
      },
    } as unknown as Parameters<typeof Bun.connect>[0]);
  }

  /** master goes away: its end of the status channel closes. */
  closeStatus(): void {
    this.statusSock?.end();
  }

  /** master closes its copies of the listening sockets. */
  closeListeners(): void {
    for (const fd of this.listenFds.splice(0)) closeFd(fd);
  }

  connect(i = 0, greeting = true): Promise<WireClient> {
    return WireClient.connect(this.paths[i], { greeting, timeoutMs: 5000 });
  }

  /** Wait for exit; the exit code, or undefined on time-out. */
  async waitExit(ms: number): Promise<number | undefined> {
    const r = await Promise.race([this.proc.exited, Bun.sleep(ms).then(() => undefined)]);
    return r === undefined ? undefined : r;
  }

  async waitStatus(n: number, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.status.length < n && Date.now() < end) await Bun.sleep(10);
  }

  kill(): void {
    this.closeListeners();
    try {
      this.proc.kill("SIGKILL");
    } catch {
      // gone
    }
    this.statusSock?.end();
  }
}

interface SimOptions {
  args?: string[];
  mainCf?: string[];
  sockets?: number;
  env?: Record<string, string>;
}

/** A config dir (main.cf dated back so it is read at once) and queue dir. */
function makeConfig(mainCf: string[]): string {
  const dir = join(tmp, `i${++seq}`);
  mkdirSync(join(dir, "queue"), { recursive: true });
  writeFileSync(
    join(dir, "main.cf"),
    [`queue_directory = ${dir}/queue`, "mail_owner = nobody", "proxy_read_maps = proxy:inline:{a=1}", ...mainCf].join("\n") + "\n",
  );
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, "main.cf"), past, past);
  return dir;
}

/** Start the daemon the way master does. */
async function startSim(o: SimOptions = {}): Promise<Sim> {
  const dir = makeConfig(o.mainCf ?? []);
  const n = o.sockets ?? 1;
  const paths: string[] = [];
  const fds: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = join(dir, `listen${i}`);
    const fd = unixListen(p);
    if (fd < 0) throw new Error(`cannot bind ${p}: errno ${-fd}`);
    paths.push(p);
    fds.push(fd);
  }
  const proc = Bun.spawn([process.execPath, MAIN, "-t", "unix", "-V", ...(n > 1 ? ["-s", String(n)] : []), ...(o.args ?? [])], {
    env: { PATH: "/usr/bin:/bin", MAIL_CONFIG: dir, GENERATION: "17", ...(o.env ?? {}) },
    stdio: ["ignore", "ignore", "pipe", "ignore", "ignore", "socket-fd", ...fds],
  } as unknown as Parameters<typeof Bun.spawn>[1]) as unknown as Subprocess<"ignore", "ignore", "pipe">;
  const sim = new Sim(proc, dir, paths, fds);
  live.add(sim);
  await sim.openStatus();
  return sim;
}

const lookup = (c: WireClient, table = "inline:{a=1}", key = "a") => c.lookup(table, key);

describe("accepting under master", () => {
  test("accepts on the inherited fd 6, greets, answers; exits 0 when the status channel reads end-of-file", async () => {
    const sim = await startSim();
    const c = await sim.connect();
    expect(c.greeting?.toString("latin1")).toBe("protocol\0proxymap_protocol\0\0");
    expect(await lookup(c)).toMatchObject({ status: "0", value: "1" });
    expect(await lookup(c, "inline:{b=2}", "b")).toMatchObject({ status: "4", value: "" });
    await expectLog(() => sim.stderr, 'warning: request for unapproved table: "inline:{b=2}"');
    sim.closeStatus();
    expect(await sim.waitExit(3000)).toBe(0);
    c.close();
  });

  test("-s 2 accepts on fd 6 and fd 7", async () => {
    const sim = await startSim({ sockets: 2 });
    const a = await sim.connect(0);
    const b = await sim.connect(1);
    expect((await lookup(a)).status).toBe("0");
    expect((await lookup(b)).status).toBe("0");
    a.close();
    b.close();
  });

  test("many clients at once, each answered", async () => {
    const sim = await startSim();
    const clients = await Promise.all(Array.from({ length: 50 }, () => sim.connect()));
    const replies = await Promise.all(clients.map((c) => lookup(c)));
    expect(replies.every((r) => r.status === "0" && r.value === "1")).toBe(true);
    for (const c of clients) c.close();
  });

  test("a client that half-closes after its request still gets the reply", async () => {
    const sim = await startSim();
    const c = await sim.connect();
    await c.send([
      ["request", "lookup"],
      ["table", "inline:{a=1}"],
      ["flags", "524353"],
      ["key", "a"],
    ]);
    c.sock.end();
    const r = await c.readReply(3000);
    expect(r.kind).toBe("reply");
    expect(await c.waitClosed(3000)).toBe(true);
  });
});

describe("exits", () => {
  test("max_idle: no client for max_idle seconds", async () => {
    const sim = await startSim({ args: ["-v", "-o", "max_idle=1"] });
    const t0 = Date.now();
    expect(await sim.waitExit(4000)).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    await expectLog(() => sim.stderr, "postfix/proxymap: idle timeout -- exiting");
  });

  test("max_idle counts from the last disconnect, not while a client is connected", async () => {
    const sim = await startSim({ args: ["-i", "1"] });
    const c = await sim.connect();
    await Bun.sleep(1500);
    expect(sim.exitCode).toBeNull();
    expect((await lookup(c)).status).toBe("0");
    c.close();
    expect(await sim.waitExit(3000)).toBe(0);
  });

  test("max_use: after max_use disconnects it stops accepting, reports taken, and exits when its last client is done", async () => {
    const sim = await startSim({ args: ["-o", "max_use=2"] });
    const a = await sim.connect();
    for (let i = 0; i < 2; i++) {
      const b = await sim.connect();
      expect((await lookup(b)).status).toBe("0");
      b.close();
    }
    await sim.waitStatus(1, 3000);
    expect(sim.status).toEqual([{ pid: sim.proc.pid, generation: 0o17, avail: 0 }]);
    // Still serving the client it has.
    expect((await lookup(a)).status).toBe("0");
    expect(sim.exitCode).toBeNull();
    a.close();
    expect(await sim.waitExit(3000)).toBe(0);
  });

  test("SIGTERM ends it", async () => {
    const sim = await startSim();
    const c = await sim.connect();
    sim.proc.kill("SIGTERM");
    await sim.waitExit(3000);
    expect(sim.signal).toBe("SIGTERM");
    c.close();
  });
});

describe("time limits", () => {
  test("ipc_timeout: a request left half-sent is cut off; other clients are answered meanwhile", async () => {
    const sim = await startSim({ args: ["-o", "ipc_timeout=1"] });
    const stalled = await sim.connect();
    await stalled.send(Buffer.from("request\0look", "latin1"));
    const other = await sim.connect();
    const t0 = Date.now();
    expect((await lookup(other)).status).toBe("0");
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await stalled.waitClosed(4000)).toBe(true);
    await expectLog(() => sim.stderr, "warning: timeout reading a request from proxymap socket: closing the connection");
    expect((await lookup(other)).status).toBe("0");
    other.close();
  });
});

describe("busy/idle reports", () => {
  test("saturated -> taken, then available again when load stops", async () => {
    // 1% of a core counts as saturated here, so any burst of requests trips it.
    const sim = await startSim({ args: ["-o", "proxymap_busy_cpu=1", "-o", "proxymap_busy_lag=0"] });
    const c = await sim.connect();
    const end = Date.now() + 600;
    while (Date.now() < end) await lookup(c);
    await sim.waitStatus(2, 3000);
    expect(sim.status.map((s) => s.avail)).toEqual([0, 1]);
    expect(sim.status.every((s) => s.pid === sim.proc.pid && s.generation === 0o17)).toBe(true);
    c.close();
  });
});

describe("fatal start-up errors", () => {
  const fatal = async (o: SimOptions, text: string) => {
    const sim = await startSim(o);
    expect(await sim.waitExit(5000)).toBe(1);
    await Bun.sleep(50);
    await expectLog(() => sim.stderr, `postfix/proxymap: fatal: ${text}\n`);
  };
  test("a stray argument", () => fatal({ args: ["extra"] }, "unexpected command-line argument: extra"));
  test("a service name other than proxymap/proxywrite", () =>
    fatal({ args: ["-n", "proxyfoo"] }, "service name must be one of proxymap or proxymap"));
  test("an unsupported transport", () => fatal({ args: ["-t", "fifo"] }, "unsupported transport type: fifo"));
  test("an unknown mail_owner", async () => {
    const sim = await startSim({ mainCf: ["mail_owner = no-such-user-here"] });
    expect(await sim.waitExit(5000)).toBe(1);
    await Bun.sleep(50);
    await expectLog(() => sim.stderr, `postfix/proxymap: fatal: file ${sim.dir}/main.cf: parameter mail_owner: unknown user name value: no-such-user-here\n`);
  });
  test("a bad max_idle", () => fatal({ args: ["-i", "x"] }, "parameter max_idle: bad time value or unit: x"));
});

describe("privileges (root only)", () => {
  const asRoot = () => {
    if (process.getuid?.() !== 0) throw new Error("privilege tests must run as root (CI runs as root)");
  };

  test("-u drops to mail_owner's uid, gid and groups; -c enters queue_directory", async () => {
    asRoot();
    const nobody = getpwnam("nobody");
    if (!nobody) throw new Error("no user nobody on this machine");
    const sim = await startSim({ args: ["-u", "-c"] });
    const c = await sim.connect();
    expect((await lookup(c)).status).toBe("0");
    const st = readFileSync(`/proc/${sim.proc.pid}/status`, "latin1");
    expect(/Uid:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(st)!.slice(1).map(Number)).toEqual([nobody.uid, nobody.uid, nobody.uid]);
    expect(/Gid:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(st)!.slice(1).map(Number)).toEqual([nobody.gid, nobody.gid, nobody.gid]);
    expect(/Groups:\s*([\d ]*)/.exec(st)![1].trim().split(/\s+/).filter(Boolean).map(Number)).not.toContain(0);
    expect(readlinkSync(`/proc/${sim.proc.pid}/root`)).toBe(join(sim.dir, "queue"));
    // Still answering from inside the jail, as the unprivileged user.
    expect(await lookup(c, "inline:{b=2}", "b")).toMatchObject({ status: "4", value: "" });
    c.close();
  });

  test("proxywrite detaches from master's signals (own session)", async () => {
    const sim = await startSim({ args: ["-n", "proxywrite"], mainCf: ["proxy_write_maps ="] });
    const c = await sim.connect();
    const stat = readFileSync(`/proc/${sim.proc.pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    expect(Number(fields[3])).toBe(sim.proc.pid); // session id
    c.close();
  });
});
