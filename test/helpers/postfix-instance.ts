/**
 * postfix-instance.ts - a PRIVATE Postfix instance for tests.
 *
 * Creates, in a temp directory, everything a real master(8) needs to run
 * the proxymap and proxywrite services (and postlogd, so that every daemon's
 * log lines land in a file the tests can read), without touching the
 * system's Postfix:
 *
 *   BASE/etc       config_directory: main.cf, master.cf (only our services)
 *   BASE/queue     queue_directory: private/ (service sockets), public/, pid/
 *   BASE/data      data_directory (master.lock)
 *   BASE/libexec   daemon_directory: links to /usr/lib/postfix/sbin/*, with
 *                  `proxymap` pointing at the C binary or at ours
 *   BASE/tables    table files the test writes
 *   BASE/maillog   maillog_file (written by postlogd, or by master itself)
 *
 * master is started with `master -w -c BASE/etc -e LIFETIME`: -w returns once
 * the daemon is initialised (so the sockets exist), -e makes an orphaned
 * master exit by itself should a test runner die before its teardown. stop()
 * sends SIGTERM to master, then SIGKILL to any process whose environment
 * carries MAIL_CONFIG=BASE/etc (only this instance's processes can), and
 * removes BASE. Several instances run side by side.
 *
 * Option `postfix: TREE` runs another Postfix build instead of Debian's: a
 * tree with bin/ and libexec/ as ../shared/oracles/build.sh makes it
 * (oracle312.ts). master, postlogd and every other daemon then come from
 * TREE/libexec, impl "c" is TREE/libexec/proxymap, run() starts TREE/bin's
 * tools, and main.cf names the tree's directories as postfix-install writes
 * them into an installed main.cf (command_directory = TREE/bin): so our
 * proxymap, run by that master, asks that Postfix for its version and
 * defaults, as it does in a real installation of it.
 *
 * Developer use:  bun test/helpers/postfix-instance.ts [--impl c|ours|PATH] [--postfix TREE|312] [--keep]
 * prints the directories and socket paths; without --keep it runs until ^C.
 *
 * It logs nothing itself; start() throws with master's own output on failure.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ORACLE312_TREE, requireOracle312 } from "./oracle312";
import { REPO_ROOT, requireOurBinary, requirePostfix } from "./require";

export { C_PROXYMAP, POSTFIX_SBIN } from "./reference";
import { C_PROXYMAP, POSTFIX_SBIN } from "./reference";
export const OUR_PROXYMAP = join(REPO_ROOT, "dist", "proxymap");

export type ProxymapImpl = "c" | "ours" | { path: string };

export interface InstanceOptions {
  /** Which proxymap binary master runs for both services ("c": the C proxymap of the Postfix that runs it). */
  impl: ProxymapImpl;
  /**
   * A Postfix build tree (bin/, libexec/) to run instead of the system's
   * Postfix, e.g. ORACLE312_TREE; its absence fails start() with the build command.
   */
  postfix?: string;
  /** A word in the temp dir's name, to tell instances apart. */
  label?: string;
  /** Extra or overriding main.cf parameters (values written as given; null leaves a default one out). */
  mainCf?: Record<string, string | null>;
  /** Extra arguments for the proxymap service's command (e.g. ["-o", "max_idle=2"]). */
  proxymapArgs?: string[];
  /** Extra arguments for the proxywrite service's command. */
  proxywriteArgs?: string[];
  /** master.cf maxproc column for proxymap ("-" = default_process_limit). */
  proxymapMaxproc?: string;
  /** master.cf chroot column for both services (default n): they chroot to queue_directory. */
  chroot?: boolean;
  /** Extra master.cf lines. */
  masterCfExtra?: string[];
  /** Files to write under BASE/tables before start (relative names). */
  files?: Record<string, string | Uint8Array>;
  /** Seconds after which master exits by itself (safety net). Default 1800. */
  lifetimeSec?: number;
  /** Keep BASE after stop() (debugging). */
  keep?: boolean;
  /**
   * A command that runs master (its last arguments), e.g. `unshare -m ...`
   * to give the instance a mount namespace of its own; it must exec master.
   */
  masterWrap?: string[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const live = new Set<PostfixInstance>();
let exitHookInstalled = false;

function userIds(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "latin1").split("\n").find((l) => l.startsWith(name + ":"));
  if (!line) throw new Error(`no user ${name} in /etc/passwd: apt-get install postfix creates it`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function groupId(name: string): number {
  const line = readFileSync("/etc/group", "latin1").split("\n").find((l) => l.startsWith(name + ":"));
  if (!line) throw new Error(`no group ${name} in /etc/group: apt-get install postfix creates it`);
  return Number(line.split(":")[2]);
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 3 (after the parenthesised name) is the state; a zombie is gone for our purpose.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export interface ProcInfo {
  pid: number;
  argv: string[];
}

export class PostfixInstance {
  readonly base: string;
  readonly configDir: string;
  readonly queueDir: string;
  readonly dataDir: string;
  readonly daemonDir: string;
  readonly tablesDir: string;
  readonly maillog: string;
  readonly proxymapPath: string;
  /** Where the Postfix daemons come from (daemon_directory's links point there). */
  readonly sbinDir: string;
  /** Where the Postfix commands come from (postmap, postconf), or undefined: the system's, by PATH. */
  readonly commandDir: string | undefined;
  private stopped = false;

  private constructor(readonly opts: InstanceOptions) {
    const label = (opts.label ?? (typeof opts.impl === "string" ? opts.impl : "custom")).replace(/[^A-Za-z0-9_-]/g, "_");
    this.base = mkdtempSync(join(tmpdir(), `pfx-${label}-`));
    this.configDir = join(this.base, "etc");
    this.queueDir = join(this.base, "queue");
    this.dataDir = join(this.base, "data");
    this.daemonDir = join(this.base, "libexec");
    this.tablesDir = join(this.base, "tables");
    this.maillog = join(this.base, "maillog");
    this.sbinDir = opts.postfix ? join(opts.postfix, "libexec") : POSTFIX_SBIN;
    this.commandDir = opts.postfix ? join(opts.postfix, "bin") : undefined;
    const cProxymap = opts.postfix ? join(this.sbinDir, "proxymap") : C_PROXYMAP;
    this.proxymapPath = opts.impl === "c" ? cProxymap : opts.impl === "ours" ? requireOurBinary() : opts.impl.path;
  }

  /** Create the instance and start its master; resolves when the sockets exist. */
  static async start(opts: InstanceOptions): Promise<PostfixInstance> {
    requirePostfix();
    if (opts.postfix) requireOracleTree(opts.postfix);
    const inst = new PostfixInstance(opts);
    live.add(inst);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const i of live) i.stop();
      });
    }
    try {
      inst.layout();
      await inst.startMaster();
    } catch (e) {
      const log = inst.log();
      inst.stop();
      throw new Error(`${(e as Error).message}${log ? `\n--- maillog ---\n${log}` : ""}`);
    }
    return inst;
  }

  /** main.cf parameters this instance is created with (before opts.mainCf). */
  defaultMainCf(): Record<string, string> {
    return {
      compatibility_level: "3.6",
      queue_directory: this.queueDir,
      data_directory: this.dataDir,
      daemon_directory: this.daemonDir,
      mail_owner: "postfix",
      setgid_group: "postdrop",
      myhostname: "localhost.localdomain",
      mydomain: "localdomain",
      mydestination: "",
      inet_interfaces: "loopback-only",
      inet_protocols: "ipv4",
      maillog_file: this.maillog,
      maillog_file_prefixes: this.base,
      // A crashed service is restarted after this long (default 60s would stall tests).
      service_throttle_time: "1s",
      alias_maps: "",
      alias_database: "",
      proxy_read_maps: "",
      proxy_write_maps: "",
      // As postfix-install writes them into an installed main.cf (its compiled-in
      // defaults are /usr/sbin and /usr/libexec/postfix, not where the tree is).
      ...(this.commandDir ? { command_directory: this.commandDir, meta_directory: join(this.opts.postfix!, "meta"), shlib_directory: "no" } : {}),
    };
  }

  private layout(): void {
    const { uid: pfUid } = userIds("postfix");
    const postdrop = groupId("postdrop");
    chmodSync(this.base, 0o755);
    for (const d of [this.configDir, this.queueDir, this.dataDir, this.daemonDir, this.tablesDir]) mkdirSync(d, { mode: 0o755 });
    // Ownership and modes as Postfix's postfix-files sets them.
    const priv = join(this.queueDir, "private");
    const pub = join(this.queueDir, "public");
    const pid = join(this.queueDir, "pid");
    mkdirSync(priv);
    mkdirSync(pub);
    mkdirSync(pid);
    chownSync(priv, pfUid, 0);
    chmodSync(priv, 0o700);
    chownSync(pub, pfUid, postdrop);
    chmodSync(pub, 0o710);
    chmodSync(pid, 0o755);
    chownSync(this.dataDir, pfUid, 0);
    chmodSync(this.dataDir, 0o700);

    for (const f of readdirSync(this.sbinDir)) {
      if (f === "proxymap") continue;
      symlinkSync(join(this.sbinDir, f), join(this.daemonDir, f));
    }
    symlinkSync(this.proxymapPath, join(this.daemonDir, "proxymap"));

    const params = { ...this.defaultMainCf(), ...(this.opts.mainCf ?? {}) };
    writeFileSync(join(this.configDir, "main.cf"), Object.entries(params).filter(([, v]) => v !== null).map(([k, v]) => `${k} = ${v}\n`).join(""), { mode: 0o644 });
    const pmArgs = (this.opts.proxymapArgs ?? []).join(" ");
    const pwArgs = (this.opts.proxywriteArgs ?? []).join(" ");
    const jail = this.opts.chroot ? "y" : "n";
    const masterCf = [
      "# service type  private unpriv  chroot  wakeup  maxproc command + args",
      `proxymap   unix  -       -       ${jail}       -       ${this.opts.proxymapMaxproc ?? "-"}       proxymap ${pmArgs}`,
      `proxywrite unix  -       -       ${jail}       -       1       proxymap ${pwArgs}`,
      "postlog    unix-dgram n  -       n       -       1       postlogd",
      ...(this.opts.masterCfExtra ?? []),
    ];
    writeFileSync(join(this.configDir, "master.cf"), masterCf.join("\n") + "\n", { mode: 0o644 });
    for (const [rel, content] of Object.entries(this.opts.files ?? {})) this.writeTable(rel, content);
  }

  /** Write a file under BASE/tables (readable by mail_owner); returns its path. */
  writeTable(rel: string, content: string | Uint8Array): string {
    const p = this.table(rel);
    mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
    writeFileSync(p, typeof content === "string" ? Buffer.from(content, "latin1") : content, { mode: 0o644 });
    return p;
  }

  /** Absolute path of a file under BASE/tables. */
  table(rel: string): string {
    return join(this.tablesDir, rel);
  }

  private async startMaster(): Promise<void> {
    const lifetime = String(this.opts.lifetimeSec ?? 1800);
    // No core files: a daemon that panics (the reference does, PROTOCOL.md section 7)
    // then closes its connections at once instead of after a slow dump.
    const cmd = [...(this.opts.masterWrap ?? []), "/bin/sh", "-c", 'ulimit -c 0; exec "$@"', "sh", join(this.sbinDir, "master"), "-w", "-c", this.configDir, "-e", lifetime];
    const r = Bun.spawnSync(cmd, {
      cwd: "/",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", MAIL_CONFIG: this.configDir },
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) {
      throw new Error(`master -c ${this.configDir} failed (exit ${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
    }
    const deadline = Date.now() + 10_000;
    while (!existsSync(this.socket("proxymap")) || !existsSync(this.socket("proxywrite"))) {
      if (Date.now() > deadline) throw new Error(`master started but ${this.socket("proxymap")} did not appear`);
      await Bun.sleep(20);
    }
  }

  /** Path of a service's socket: private/proxymap or private/proxywrite. */
  socket(service: "proxymap" | "proxywrite" | string): string {
    return join(this.queueDir, "private", service);
  }

  /** PID of this instance's master (from queue/pid/master.pid), or 0. */
  get masterPid(): number {
    try {
      return Number(readFileSync(join(this.queueDir, "pid", "master.pid"), "latin1").trim()) || 0;
    } catch {
      return 0;
    }
  }

  /** Every live process of this instance (found by MAIL_CONFIG in its environment), master included. */
  processes(): ProcInfo[] {
    const needle = Buffer.from(`\0MAIL_CONFIG=${this.configDir}\0`, "latin1");
    const out: ProcInfo[] = [];
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      const pid = Number(d);
      try {
        const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${d}/environ`), Buffer.from([0])]);
        if (env.indexOf(needle) < 0) continue;
        if (!alive(pid)) continue;
        const argv = readFileSync(`/proc/${d}/cmdline`, "latin1").split("\0").filter((s, i, a) => s !== "" || i < a.length - 1);
        out.push({ pid, argv });
      } catch {
        // The process went away while we looked.
      }
    }
    return out;
  }

  /** PIDs of the processes serving one service (proxymap or proxywrite). */
  servicePids(service: "proxymap" | "proxywrite"): number[] {
    return this.processes()
      .filter((p) => {
        if (!p.argv[0] || !p.argv[0].endsWith("proxymap")) return false;
        const n = p.argv.indexOf("-n");
        const name = n >= 0 ? p.argv[n + 1] : "proxymap";
        return name === service;
      })
      .map((p) => p.pid);
  }

  /** Wait until the service has at least one process; returns the PIDs. */
  async waitServicePids(service: "proxymap" | "proxywrite", timeoutMs = 5000): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.servicePids(service);
      if (p.length || Date.now() > deadline) return p;
      await Bun.sleep(20);
    }
  }

  /** The maillog so far ("" before the first line). */
  log(): string {
    try {
      return readFileSync(this.maillog, "latin1");
    } catch {
      return "";
    }
  }

  /** A mark to read only later log lines with logSince(). */
  logMark(): number {
    try {
      return statSync(this.maillog).size;
    } catch {
      return 0;
    }
  }

  logSince(mark: number): string {
    return this.log().slice(mark);
  }

  /** Poll the maillog (from mark) until re matches; returns the text read, or throws after timeoutMs. */
  async waitForLog(re: RegExp, timeoutMs = 5000, mark = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = this.logSince(mark);
      if (re.test(t)) return t;
      if (Date.now() > deadline) throw new Error(`log of ${this.base} did not match ${re} within ${timeoutMs} ms:\n${t.slice(-3000)}`);
      await Bun.sleep(25);
    }
  }

  /**
   * Run a Postfix command-line tool with -c CONFIG (postmap, postalias,
   * postconf; the tree's own with option `postfix`); killed after timeoutMs
   * (then code is -1 and stderr says so).
   * Blocks the event loop: use runAsync() while the test serves sockets.
   */
  run(tool: string, args: string[], input?: string | Uint8Array, timeoutMs = 20_000): RunResult {
    const r = Bun.spawnSync([this.tool(tool), "-c", this.configDir, ...args], toolSpawnOptions(input, timeoutMs));
    const killed = r.exitCode === null ? `[${tool} killed after ${timeoutMs} ms]` : "";
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString("latin1"), stderr: r.stderr.toString("latin1") + killed };
  }

  /** run(), without blocking the event loop. */
  async runAsync(tool: string, args: string[], input?: string | Uint8Array, timeoutMs = 20_000): Promise<RunResult> {
    const p = Bun.spawn([this.tool(tool), "-c", this.configDir, ...args], toolSpawnOptions(input, timeoutMs));
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const killed = p.signalCode ? `[${tool} killed after ${timeoutMs} ms]` : "";
    return { code: p.signalCode ? -1 : code, stdout, stderr: stderr + killed };
  }

  /** A command of this instance's Postfix: TREE/bin/NAME with option `postfix`, else NAME (found by PATH). */
  tool(name: string): string {
    return this.commandDir && !name.includes("/") ? join(this.commandDir, name) : name;
  }

  /** `postmap -c CONFIG -q KEY TABLE`. */
  postmapQuery(key: string, table: string): RunResult {
    return this.run("postmap", ["-q", key, table]);
  }

  /** Ask master to re-read its configuration (SIGHUP). */
  reload(): void {
    const pid = this.masterPid;
    if (pid) process.kill(pid, "SIGHUP");
  }

  /** Stop master and every process of the instance; remove BASE. Synchronous and idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    const pid = this.masterPid;
    if (pid && alive(pid)) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // Already gone.
      }
      const deadline = Date.now() + 5000;
      while (alive(pid) && Date.now() < deadline) Bun.sleepSync(20);
    }
    // Strays: proxywrite detaches from master's process group; anything left is ours by MAIL_CONFIG.
    for (let round = 0; round < 50; round++) {
      const procs = this.processes();
      if (!procs.length) break;
      for (const p of procs) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      Bun.sleepSync(20);
    }
    if (!this.opts.keep) rmSync(this.base, { recursive: true, force: true });
  }

  /** Resident set size of a process in KiB (VmRSS), or 0. */
  static rssKiB(pid: number): number {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** Real, effective, saved uids of a process (from /proc/PID/status). */
  static uids(pid: number): number[] {
    const m = /Uid:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  }

  static gids(pid: number): number[] {
    const m = /Gid:\s+(\d+)\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  }

  static isAlive(pid: number): boolean {
    return alive(pid);
  }

  static postfixUser(): { uid: number; gid: number } {
    return userIds("postfix");
  }
}

// Developer entry point: `bun test/helpers/postfix-instance.ts [--impl c|ours|PATH] [--postfix TREE|312] [--keep]`.
if (import.meta.main) {
  const args = process.argv.slice(2);
  const implArg = args.includes("--impl") ? args[args.indexOf("--impl") + 1] : "c";
  const impl: ProxymapImpl = implArg === "c" || implArg === "ours" ? implArg : { path: implArg };
  const treeArg = args.includes("--postfix") ? args[args.indexOf("--postfix") + 1] : undefined;
  const keep = args.includes("--keep");
  const inst = await PostfixInstance.start({
    impl,
    postfix: treeArg === "312" ? ORACLE312_TREE : treeArg,
    keep,
    lifetimeSec: keep ? 3600 : 86400,
    mainCf: { proxy_read_maps: "proxy:unix:passwd.byname proxy:static:demo" },
  });
  console.log(`base:        ${inst.base}
config:      ${inst.configDir}
proxymap:    ${inst.socket("proxymap")}
proxywrite:  ${inst.socket("proxywrite")}
maillog:     ${inst.maillog}
master pid:  ${inst.masterPid}
try:         ${inst.tool("postmap")} -c ${inst.configDir} -q root proxy:unix:passwd.byname`);
  if (keep) {
    console.log(`stop with:   kill ${inst.masterPid}; rm -rf ${inst.base}   (master exits by itself after 1 hour)`);
    live.delete(inst);
    process.exit(0);
  }
  console.log("running; ^C stops it");
  process.on("SIGINT", () => {
    inst.stop();
    process.exit(0);
  });
  await new Promise(() => {});
}

/** A Postfix tree: ORACLE312_TREE must be built (its build command otherwise); any other must exist. */
function requireOracleTree(tree: string): void {
  if (tree === ORACLE312_TREE) requireOracle312();
  else if (!existsSync(join(tree, "libexec", "master"))) throw new Error(`${tree}/libexec/master is missing: not a built Postfix tree`);
}

/** How run() and runAsync() start a Postfix tool: C locale, a plain PATH, killed at timeoutMs. */
function toolSpawnOptions(input: string | Uint8Array | undefined, timeoutMs: number) {
  return {
    cwd: "/",
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" },
    stdin: input === undefined ? ("ignore" as const) : typeof input === "string" ? Buffer.from(input, "latin1") : input,
    stdout: "pipe" as const,
    stderr: "pipe" as const,
    timeout: timeoutMs,
    killSignal: "SIGKILL" as const,
  };
}
