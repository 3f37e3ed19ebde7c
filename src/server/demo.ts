/**
 * demo.ts - the --demo mode: a proxymap that runs anywhere, Postfix
 * installed or not.
 *
 * It writes a throw-away configuration directory (main.cf approving an
 * inline: table, a texthash: file it writes too, and static:), starts the
 * daemon on a UNIX socket in that directory (the --listen mode), connects
 * to it as a Postfix client would, prints a few lookups (found, not found,
 * an unapproved table, which the server refuses and logs), then removes the
 * directory and exits 0 (1 if a reply was not the expected one).
 *
 * Reads: nothing outside its temporary directory. Writes: the report on
 * standard output; the daemon's log lines go to standard error.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { msg } from "../log/msg";
import { runDaemon } from "./daemon";
import { parseDaemonArgs } from "./options";
import { decodeLists, encodeList, endOfList } from "./attrList";

const STATUS_NAMES = ["OK", "NOKEY", "RETRY", "BAD", "DENY", "CONFIG"];
/** The flags a Postfix 3.7 postmap -q sends: UTF8_REQUEST|LOCK|DUP_WARN. */
const LOOKUP_FLAGS = "524353";

/** A tiny client: one request, one reply list, greeting skipped. */
class DemoClient {
  private buf = new Uint8Array(0);
  private wake: (() => void) | undefined;
  private sock!: Awaited<ReturnType<typeof Bun.connect>>;

  static async connect(path: string): Promise<DemoClient> {
    const c = new DemoClient();
    c.sock = await Bun.connect({
      unix: path,
      socket: {
        data: (_s, d) => {
          const next = new Uint8Array(c.buf.length + d.length);
          next.set(c.buf);
          next.set(d, c.buf.length);
          c.buf = next;
          c.wake?.();
        },
      },
    });
    return c;
  }

  /** The next reply list, skipping a protocol greeting. */
  async next(): Promise<Array<[string, string]>> {
    for (;;) {
      const end = endOfList(this.buf);
      if (end >= 0) {
        const list = decodeLists(this.buf.subarray(0, end)).lists[0];
        this.buf = this.buf.subarray(end);
        if (list[0]?.[0] === "protocol") continue;
        return list;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve, reject) => {
        this.wake = resolve;
        timer = setTimeout(() => reject(new Error("no reply within 2s")), 2000);
      }).finally(() => clearTimeout(timer));
    }
  }

  async lookup(table: string, key: string): Promise<Array<[string, string]>> {
    this.sock.write(encodeList([["request", "lookup"], ["table", table], ["flags", LOOKUP_FLAGS], ["key", key]]));
    return this.next();
  }

  close(): void {
    this.sock.end();
  }
}

export async function runDemo(procname: string, out: (line: string) => void = (l) => process.stdout.write(l + "\n")): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "proxymap-demo-"));
  try {
    const aliases = join(dir, "aliases");
    writeFileSync(aliases, "# a texthash table, as postmap reads it\npostmaster  root@example.com\nabuse       root@example.com\n");
    const inline = "inline:{alice=alice@example.com, bob=bob@example.com}";
    writeFileSync(
      join(dir, "main.cf"),
      [
        "# proxymap --demo: a throw-away configuration",
        `queue_directory = ${dir}`,
        `proxy_read_maps = proxy:${inline} proxy:texthash:${aliases} proxy:static:OK`,
        "",
      ].join("\n"),
    );
    // Postfix re-reads a main.cf or texthash file changed in the last second
    // or two (it may be half-written); these are complete, so date them back
    // and skip the wait.
    const past = new Date(Date.now() - 60_000);
    for (const f of ["main.cf", "aliases"]) utimesSync(join(dir, f), past, past);
    const socket = join(dir, "proxymap.sock");
    // The demo serves as whoever runs it, root included (said explicitly:
    // --listen refuses to serve as root otherwise); its socket and tables
    // live in a private temporary directory and it ends after a few lookups.
    const asRoot = process.getuid?.() === 0 ? ["--user", "root"] : [];
    const parsed = parseDaemonArgs(["--listen", socket, ...asRoot], { MAIL_CONFIG: dir }, procname);
    if (!parsed.ok) return msg.fatal(parsed.error);
    const started = await runDaemon(parsed.options, procname);

    out(`proxymap demo: configuration in ${dir}, listening on ${socket}`);
    out(`proxy_read_maps = ${started.config.get("proxy_read_maps")}`);
    const client = await DemoClient.connect(socket);
    const cases: Array<[string, string, number]> = [
      [inline, "alice", 0],
      [inline, "carol", 1],
      [`texthash:${aliases}`, "postmaster", 0],
      ["static:OK", "anything", 0],
      ["hash:/etc/aliases", "root", 4],
    ];
    let wrong = 0;
    for (const [table, key, expect] of cases) {
      const reply = await client.lookup(table, key);
      const status = Number(reply.find(([n]) => n === "status")?.[1] ?? -1);
      const value = reply.find(([n]) => n === "value")?.[1] ?? "";
      if (status !== expect) wrong++;
      out(`lookup ${table} ${JSON.stringify(key)} -> ${STATUS_NAMES[status] ?? status}${status === 0 ? ` ${JSON.stringify(value)}` : ""}`);
    }
    client.close();
    out(wrong ? `proxymap demo: ${wrong} unexpected replies` : "proxymap demo: ok");
    return wrong ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
