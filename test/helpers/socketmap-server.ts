/**
 * socketmap-server.ts - a real socketmap server (Sendmail's socket map
 * protocol, as Postfix's socketmap_table(5) speaks it) for tests: it
 * listens on a UNIX socket or on loopback TCP, reads netstring requests
 * "NAME KEY" and answers each with a netstring reply. Written here without
 * code from src/ (the tests must not trust the codec they test).
 *
 * What a request gets is chosen by the server mode, then by the key:
 *   mode "stall"    never answers anything;
 *   mode "garbage"  answers every request with bytes that are no netstring;
 *   mode "close"    sends half a reply, then closes the connection;
 *   mode "normal":
 *     key "stall"          no answer (this request only);
 *     key "garbage"        "xyz" (not a netstring);
 *     key "close"          half a netstring, then close;
 *     key "reply=TEXT"     TEXT as the reply payload, %XX decoded ("reply=TEMP%20busy");
 *     key "raw=BYTES"      BYTES sent as they are, %XX decoded;
 *     key "delay=MS:KEY"   the answer for KEY after MS milliseconds;
 *     otherwise            "OK VALUE" from data[NAME][KEY], else "NOTFOUND ".
 * Option delayMs: every answer of mode "normal" leaves that much later (a
 * slow server; requests of one connection are still answered in order).
 * Byte strings throughout (latin1).
 */
import type { Socket } from "node:net";
import { listenForTest, TestServer } from "./test-server";

export type SocketmapMode = "normal" | "stall" | "garbage" | "close";

export interface SocketmapServerOptions {
  /** UNIX socket path; without it the server listens on 127.0.0.1 (port 0 = any). */
  path?: string;
  port?: number;
  mode?: SocketmapMode;
  /** data[name][key] = value */
  data?: Record<string, Record<string, string>>;
  /** Answer every request this many ms late (mode "normal"). */
  delayMs?: number;
}

/** %XX decoding (tests spell arbitrary bytes in keys this way). */
export function pctDecode(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function netstring(s: string): string {
  return `${s.length}:${s},`;
}

export class SocketmapServer extends TestServer {
  mode: SocketmapMode;
  data: Record<string, Record<string, string>>;
  delayMs: number;
  private constructor(
    /** The socketmap server part of a table name: "unix:/path" or "inet:127.0.0.1:PORT". */
    readonly address: string,
    opts: SocketmapServerOptions,
  ) {
    super();
    this.mode = opts.mode ?? "normal";
    this.data = opts.data ?? {};
    this.delayMs = opts.delayMs ?? 0;
  }

  static async start(opts: SocketmapServerOptions = {}): Promise<SocketmapServer> {
    let self: SocketmapServer | undefined;
    const [server, where] = await listenForTest(opts, (sock) => self?.serve(sock));
    self = new SocketmapServer("path" in where ? `unix:${where.path}` : `inet:127.0.0.1:${where.port}`, opts);
    self.server = server;
    return self;
  }

  /** A table name for this server: "socketmap:ADDRESS:NAME". */
  table(name: string): string {
    return `socketmap:${this.address}:${name}`;
  }

  private serve(sock: Socket): void {
    // Netstrings: LENGTH ":" PAYLOAD ","; a length that is not digits ends the connection.
    this.serveMessages(sock, (buf) => {
      const colon = buf.indexOf(":");
      if (colon < 0) return null;
      if (!/^[0-9]+$/.test(buf.slice(0, colon))) return "bad";
      const len = Number(buf.slice(0, colon));
      if (buf.length < colon + 1 + len + 1) return null;
      return [buf.slice(colon + 1, colon + 1 + len), buf.slice(colon + 2 + len)];
    });
  }

  protected answer(sock: Socket, req: string): void {
    const send = (s: string) => this.send(sock, s);
    if (this.mode === "stall") return;
    if (this.mode === "garbage") return send("xyz");
    if (this.mode === "close") {
      send("10:OK ab");
      sock.end();
      return;
    }
    const sp = req.indexOf(" ");
    const name = sp < 0 ? req : req.slice(0, sp);
    let key = sp < 0 ? "" : req.slice(sp + 1);
    let delay = this.delayMs;
    const m = /^delay=(\d+):(.*)$/s.exec(key);
    if (m) {
      delay = Number(m[1]);
      key = m[2];
    }
    let out: string | undefined;
    if (key === "stall") return;
    else if (key === "garbage") out = "xyz";
    else if (key === "close") {
      send("10:OK ab");
      sock.end();
      return;
    } else if (key.startsWith("reply=")) out = netstring(pctDecode(key.slice(6)));
    else if (key.startsWith("raw=")) out = pctDecode(key.slice(4));
    else {
      const v = this.data[name]?.[key];
      out = netstring(v === undefined ? "NOTFOUND " : `OK ${v}`);
    }
    if (delay > 0) setTimeout(() => send(out as string), delay);
    else send(out);
  }
}
