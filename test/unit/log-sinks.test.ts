/**
 * log-sinks.test.ts - where log lines go and how they look: printable(),
 * the postlogd datagram (to a datagram socket the test binds, as postlogd
 * would), syslog(3) lines as /dev/log receives them, and -V standard error
 * lines compared with the C proxymap's own (it must be installed: Debian's
 * postfix package).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { printable } from "../../src/log/printable";
import { postlogRecord, postlogSink, postlogStamp } from "../../src/log/postlogSink";
import { limitRecord } from "../../src/log/syslogSink";
import { configuredLogChoice, earlyLogChoice } from "../../src/log/setup";
import { FatalError, setLogSinks } from "../../src/log/msg";
import { closeFd, recvNow, unixDgramBind } from "../../src/sys/libc";
import { requireFile } from "../helpers/require";

const REPO = join(import.meta.dir, "..", "..");
const MAIN = join(REPO, "src", "main.ts");
import { C_PROXYMAP } from "../helpers/reference";
const tmp = mkdtempSync(join(tmpdir(), "log-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("printable", () => {
  test("ASCII passes, control and 8-bit bytes become '?'", () => {
    expect(printable("plain text", true)).toBe("plain text");
    expect(printable("a\tb\nc\x7f", true)).toBe("a?b?c?");
    expect(printable("caf\xc3\xa9", true)).toBe("caf\xc3\xa9"); // UTF-8 kept with smtputf8_enable
    expect(printable("caf\xc3\xa9", false)).toBe("caf??");
    expect(printable("\xff\xc3", true)).toBe("??"); // not UTF-8
  });
});

describe("record limits", () => {
  test("the text after the severity is cut at 2000 bytes", () => {
    const long = "x".repeat(2500);
    expect(limitRecord("warning", `warning: ${long}`)).toBe(`warning: ${"x".repeat(2000)}`);
    expect(limitRecord("info", long)).toBe("x".repeat(2000));
  });
});

describe("postlogd datagrams", () => {
  test("time stamp format is strftime %b %d %H:%M:%S", () => {
    expect(postlogStamp(new Date(2024, 0, 5, 7, 3, 9))).toBe("Jan 05 07:03:09 ");
    expect(postlogStamp(new Date(2024, 11, 25, 23, 59, 0))).toBe("Dec 25 23:59:00 ");
  });

  test("record: stamp, first host label, progname[pid], severity", () => {
    const o = { progname: "postfix/proxymap", hostname: "mail.example.com", path: "/x", utf8: true };
    const d = new Date(2024, 2, 1, 12, 0, 0);
    expect(postlogRecord(o, 42, "warning", "warning: request for unapproved table: \"a:b\"", d)).toBe(
      'Mar 01 12:00:00 mail postfix/proxymap[42]: warning: request for unapproved table: "a:b"',
    );
    expect(postlogRecord(o, 42, "info", "hello", d)).toBe("Mar 01 12:00:00 mail postfix/proxymap[42]: hello");
    expect(postlogRecord({ ...o, hostname: "" }, 1, "info", "x", d)).toBe("Mar 01 12:00:00 amnesiac postfix/proxymap[1]: x");
  });

  test("one datagram per line reaches a bound socket, non-blocking", () => {
    const path = join(tmp, "postlog");
    const fd = unixDgramBind(path);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      const sink = postlogSink({ progname: "postfix/proxymap", hostname: "h.example", path, utf8: true });
      expect(sink.connected).toBe(true);
      sink.write("warning", "warning: one");
      sink.write("info", "two\x01");
      const a = Buffer.from(recvNow(fd)!).toString("latin1");
      const b = Buffer.from(recvNow(fd)!).toString("latin1");
      expect(a).toMatch(new RegExp(`^[A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} h postfix/proxymap\\[${process.pid}\\]: warning: one$`));
      expect(b).toMatch(/ h postfix\/proxymap\[\d+\]: two\?$/);
      expect(recvNow(fd)).toBeUndefined();
    } finally {
      closeFd(fd);
    }
  });

  test("a burst longer than the kernel's datagram queue is delivered whole and in order as postlogd reads", async () => {
    const path = join(tmp, "postlog-burst");
    const fd = unixDgramBind(path);
    try {
      const sink = postlogSink({ progname: "p", hostname: "h", path, utf8: true });
      for (let i = 0; i < 60; i++) sink.write("warning", `warning: line ${i}`);
      const got: string[] = [];
      const end = Date.now() + 5000;
      while (got.length < 60 && Date.now() < end) {
        const d = recvNow(fd);
        if (d) got.push(Buffer.from(d).toString("latin1").replace(/^.*: warning: /, ""));
        else await Bun.sleep(2); // the sink retries while we are not reading
      }
      expect(got).toEqual(Array.from({ length: 60 }, (_, i) => `line ${i}`));
    } finally {
      closeFd(fd);
    }
  });

  test("postlogd not there yet: lines are dropped, later lines connect", () => {
    const path = join(tmp, "postlog-late");
    const sink = postlogSink({ progname: "p", hostname: "h", path, utf8: true });
    expect(sink.connected).toBe(false);
    sink.write("info", "lost");
    const fd = unixDgramBind(path);
    try {
      sink.write("info", "found");
      expect(Buffer.from(recvNow(fd)!).toString("latin1")).toEndWith("p[" + process.pid + "]: found");
    } finally {
      closeFd(fd);
    }
  });
});

describe("choosing the log channel", () => {
  const base = {
    procname: "proxymap",
    syslogName: "postfix",
    syslogFacility: "mail",
    maillogFile: "",
    maillogFilePrefixes: "/var, /dev/stdout",
    queueDirectory: "/var/spool/postfix",
    postlogServiceName: "postlog",
    myhostname: "h",
    utf8: true,
    mainCfPath: "/etc/postfix/main.cf",
  };
  test("syslog by default, with syslog_facility", () => {
    expect(configuredLogChoice({ ...base, syslogFacility: "local3" }, false, true).channel).toEqual({ kind: "syslog", facility: 19 << 3 });
    expect(configuredLogChoice({ ...base, syslogName: "postfix-out" }, false, true).tag).toBe("postfix-out/proxymap");
  });
  test("postlogd when maillog_file is set", () => {
    expect(configuredLogChoice({ ...base, maillogFile: "/var/log/postfix.log" }, false, true).channel).toEqual({
      kind: "postlog",
      path: "/var/spool/postfix/public/postlog",
      hostname: "h",
    });
  });
  test("Postfix's fatal errors", () => {
    setLogSinks([]);
    expect(() => configuredLogChoice({ ...base, syslogFacility: "bogus" }, false, true)).toThrow(
      new FatalError("file /etc/postfix/main.cf: parameter syslog_facility: unrecognized value: bogus"),
    );
    expect(() => configuredLogChoice({ ...base, maillogFile: "/tmp/x.log" }, false, true)).toThrow(
      new FatalError("maillog_file value '/tmp/x.log' does not match any prefix in maillog_file_prefixes"),
    );
  });
  test("before main.cf: MAIL_LOGTAG and POSTLOG_SERVICE from the environment", () => {
    expect(earlyLogChoice("proxymap", false, true, {}).tag).toBe("postfix/proxymap");
    expect(earlyLogChoice("proxymap", false, true, { MAIL_LOGTAG: "pf2" }).tag).toBe("pf2/proxymap");
    expect(earlyLogChoice("proxymap", false, true, { POSTLOG_SERVICE: "/q/public/postlog", POSTLOG_HOSTNAME: "hh" }).channel).toEqual({
      kind: "postlog",
      path: "/q/public/postlog",
      hostname: "hh",
    });
  });
});

/** A config dir whose main.cf is old enough to be read at once. */
function configDir(name: string, lines: string[]): string {
  const dir = join(tmp, name);
  require("node:fs").mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "main.cf"), lines.join("\n") + "\n");
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, "main.cf"), past, past);
  return dir;
}

function request(table: string, key: string): Buffer {
  return Buffer.from(`request\0lookup\0table\0${table}\0flags\x00524353\0key\0${key}\0\0`, "latin1");
}

/** Run a -S command; async, so the reference and ours (each pausing 1s on fatal) run side by side. */
async function runAsync(cmd: string[], args: string[], env: Record<string, string>, input: Uint8Array) {
  const p = Bun.spawn([...cmd, ...args], { env: { PATH: "/usr/bin:/bin", ...env }, stdin: input, stdout: "pipe", stderr: "pipe" });
  const bytes = async (s: ReadableStream<Uint8Array>) => Buffer.from(await new Response(s).arrayBuffer()).toString("latin1");
  const [stdout, stderr, code] = await Promise.all([bytes(p.stdout), bytes(p.stderr), p.exited]);
  return { code, stdout, stderr };
}

function runS(cmd: string[], args: string[], env: Record<string, string>, input: Uint8Array) {
  const r = Bun.spawnSync([...cmd, ...args], { env: { PATH: "/usr/bin:/bin", ...env }, stdin: input, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString("latin1"), stderr: r.stderr.toString("latin1") };
}

describe("-S -V lines match the C proxymap's", () => {
  const cf = configDir("oracle", ["mail_owner = postfix", "proxy_read_maps = proxy:inline:{a=1}"]);
  const env = { MAIL_CONFIG: cf };
  const cases: Array<[string, string[], Buffer]> = [
    ["unapproved table", ["-S", "-V"], request("inline:{b=2}", "b")],
    ["approved table", ["-S", "-V"], request("inline:{a=1}", "a")],
    ["stray argument", ["-S", "-V", "extra"], request("inline:{a=1}", "a")],
    ["bad service name", ["-S", "-V", "-n", "frob"], request("inline:{a=1}", "a")],
    ["bad option", ["-V", "-S", "-k"], request("inline:{a=1}", "a")],
    ["bad -o", ["-V", "-S", "-o", "x"], request("inline:{a=1}", "a")],
    ["8-bit key in a warning", ["-S", "-V"], request("inline:{\xe9=\x01}", "x")],
    ["bad -i", ["-S", "-V", "-i", "x"], request("inline:{a=1}", "a")],
    ["bad -m", ["-S", "-V", "-m", "0"], request("inline:{a=1}", "a")],
    ["bad syslog_facility", ["-S", "-V", "-o", "syslog_facility=bogus"], request("inline:{a=1}", "a")],
  ];
  for (const [name, args, input] of cases) {
    test(name, async () => {
      requireFile(C_PROXYMAP, "apt-get install postfix");
      const [ref, ours] = await Promise.all([runAsync([C_PROXYMAP], args, env, input), runAsync([process.execPath, MAIN], args, env, input)]);
      expect(ours.stderr).toBe(ref.stderr);
      expect(ours.stdout).toBe(ref.stdout);
      expect(ours.code).toBe(ref.code);
    });
  }
});

describe("syslog(3)", () => {
  test("lines reach /dev/log with facility, severity and ident postfix/proxymap[pid]", async () => {
    const cf = configDir("syslog", ["mail_owner = postfix", "syslog_facility = local2", "proxy_read_maps ="]);
    let devLog = "/dev/log";
    let wrap: string[] = [];
    let created = false;
    const rx = join(tmp, "devlog");
    const fd = unixDgramBind(rx);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      if (existsSync(devLog)) {
        // A syslog daemon owns /dev/log: run ours where /dev/log is our socket.
        requireFile("/usr/bin/unshare", "apt-get install util-linux");
        wrap = ["/usr/bin/unshare", "-m", "/bin/sh", "-c", `mount --bind ${rx} /dev/log && exec "$@"`, "sh"];
      } else {
        // No syslog daemon: bind our receiver at /dev/log for the test's duration.
        closeFd(fd);
        unlinkSync(rx);
        const fd2 = unixDgramBind(devLog);
        expect(fd2).toBeGreaterThanOrEqual(0);
        created = true;
        return await readWith(fd2, []);
      }
      return await readWith(fd, wrap);
    } finally {
      if (created) unlinkSync(devLog);
      closeFd(fd);
    }

    async function readWith(rfd: number, prefix: string[]) {
      try {
        const r = runS([...prefix, process.execPath, MAIN], ["-S"], { MAIL_CONFIG: cf }, request("inline:{z=1}", "z"));
        expect(r.stdout).toBe("status\x004\x00value\x00\x00\x00");
        const lines: string[] = [];
        for (let m = recvNow(rfd); m; m = recvNow(rfd)) lines.push(Buffer.from(m).toString("latin1"));
        const ours = lines.filter((l) => l.includes("unapproved"));
        expect(ours.length).toBe(1);
        // <PRI> = local2 (18<<3) | LOG_WARNING (4)
        expect(ours[0]).toMatch(/^<148>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d postfix\/proxymap\[\d+\]: warning: request for unapproved table: "inline:\{z=1\}"$/);
      } finally {
        if (rfd !== fd) closeFd(rfd);
      }
    }
  });
});
