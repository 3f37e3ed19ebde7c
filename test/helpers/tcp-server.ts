/**
 * tcp-server.ts - a real tcp_table(5) server for tests: it listens on
 * loopback TCP (or a UNIX socket, for tests of the connection code), reads
 * "get KEY\n" lines with %XX-quoted keys and answers one line each:
 * "200 VALUE" (quoted), "500 REASON" (not found) or "400 REASON" (try
 * again). Written without code from src/.
 *
 * Server mode first, then the key (after %XX decoding):
 *   mode "stall"    never answers; "garbage": "xyz\n" to everything;
 *   mode "close"    sends half a line, then closes;
 *   mode "normal":
 *     key "stall" / "garbage" / "close"   as the modes, for this request;
 *     key "eof"            closes without a byte of reply;
 *     key "reply=TEXT"     TEXT + "\n" sent as it is (TEXT was %XX decoded once);
 *     key "raw=BYTES"      BYTES sent as they are (no newline added);
 *     key "delay=MS:KEY"   the answer for KEY after MS milliseconds;
 *     otherwise            "200 " + quoted data[KEY], else "500 not found".
 */
import type { Socket } from "node:net";
import { pctDecode } from "./socketmap-server";
import { listenForTest, TestServer } from "./test-server";

export type TcpMode = "normal" | "stall" | "garbage" | "close";

export interface TcpServerOptions {
  path?: string;
  port?: number;
  mode?: TcpMode;
  data?: Record<string, string>;
}

/** tcp_table's quoting: '%', whitespace and non-printable bytes as %XX. */
export function pctQuote(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c === 0x25 || c <= 0x20 || c >= 0x7f ? "%" + c.toString(16).toUpperCase().padStart(2, "0") : s[i];
  }
  return out;
}

export class TcpTableServer extends TestServer {
  mode: TcpMode;
  data: Record<string, string>;

  private constructor(
    /** "127.0.0.1:PORT" (the tcp: table name) or the socket path. */
    readonly address: string,
    opts: TcpServerOptions,
  ) {
    super();
    this.mode = opts.mode ?? "normal";
    this.data = opts.data ?? {};
  }

  static async start(opts: TcpServerOptions = {}): Promise<TcpTableServer> {
    let self: TcpTableServer | undefined;
    const [server, where] = await listenForTest(opts, (sock) => self?.serve(sock));
    self = new TcpTableServer("path" in where ? where.path : `127.0.0.1:${where.port}`, opts);
    self.server = server;
    return self;
  }

  get table(): string {
    return `tcp:${this.address}`;
  }

  private serve(sock: Socket): void {
    // One request per line.
    this.serveMessages(sock, (buf) => {
      const nl = buf.indexOf("\n");
      return nl < 0 ? null : [buf.slice(0, nl), buf.slice(nl + 1)];
    });
  }

  protected answer(sock: Socket, line: string): void {
    const send = (s: string) => this.send(sock, s);
    if (this.mode === "stall") return;
    if (this.mode === "garbage") return send("xyz\n");
    if (this.mode === "close") {
      send("200 parti");
      sock.end();
      return;
    }
    let key = line.startsWith("get ") ? pctDecode(line.slice(4)) : "";
    let delay = 0;
    const m = /^delay=(\d+):(.*)$/s.exec(key);
    if (m) {
      delay = Number(m[1]);
      key = m[2];
    }
    let out: string;
    if (key === "stall") return;
    if (key === "garbage") out = "xyz\n";
    else if (key === "close") {
      send("200 parti");
      sock.end();
      return;
    } else if (key === "eof") {
      sock.end();
      return;
    } else if (key.startsWith("reply=")) out = key.slice(6) + "\n";
    else if (key.startsWith("raw=")) out = key.slice(4);
    else {
      const v = this.data[key];
      out = v === undefined ? "500 not found\n" : `200 ${pctQuote(v)}\n`;
    }
    if (delay > 0) setTimeout(() => send(out), delay);
    else send(out);
  }
}
