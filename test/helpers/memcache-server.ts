/**
 * memcache-server.ts - a scripted server that speaks memcached's text
 * protocol badly on purpose, for the replies a real memcached never sends
 * (garbage, a VALUE for another key, a value cut short, a missing END, a
 * reply line over line_size_limit, a close in mid-reply). Everything else
 * goes to the real memcached (test/helpers/memcached.ts); this one only
 * covers what it cannot produce. Written without code from src/.
 *
 * Requests are `get KEY`, `delete KEY` (one line) and `set KEY F T N` with
 * N bytes of data; what a request gets is chosen by its key:
 *   "raw=BYTES"   BYTES as they are, %XX decoded, with "@K" replaced by the
 *                 whole key (a VALUE line must name the key asked for);
 *   "close"       the connection is closed;
 *   "stall"       no answer;
 *   otherwise     a small in-memory memcached: END / VALUE, STORED,
 *                 DELETED / NOT_FOUND.
 * Byte strings throughout (latin1).
 */
import type { Socket } from "node:net";
import { pctDecode } from "./socketmap-server";
import { listenForTest, TestServer, type ListenOptions } from "./test-server";

export class ScriptedMemcacheServer extends TestServer {
  readonly items = new Map<string, { flags: string; value: string }>();

  private constructor(
    /** The `memcache` setting naming this server: "inet:127.0.0.1:PORT" or "unix:PATH". */
    readonly address: string,
  ) {
    super();
  }

  static async start(opts: ListenOptions = {}): Promise<ScriptedMemcacheServer> {
    let self: ScriptedMemcacheServer | undefined;
    const [server, where] = await listenForTest(opts, (sock) => self?.serve(sock));
    self = new ScriptedMemcacheServer("path" in where ? `unix:${where.path}` : `inet:127.0.0.1:${where.port}`);
    self.server = server;
    return self;
  }

  private serve(sock: Socket): void {
    // One command line; a set also takes its data block and CRLF.
    this.serveMessages(sock, (buf) => {
      const nl = buf.indexOf("\r\n");
      if (nl < 0) return null;
      const line = buf.slice(0, nl);
      const set = /^set \S+ \S+ \S+ (\d+)$/.exec(line);
      if (!set) return [line, buf.slice(nl + 2)];
      const end = nl + 2 + Number(set[1]) + 2;
      if (buf.length < end) return null;
      return [buf.slice(0, end - 2), buf.slice(end)];
    });
  }

  protected answer(sock: Socket, message: string): void {
    const nl = message.indexOf("\r\n");
    const words = (nl < 0 ? message : message.slice(0, nl)).split(" ");
    const [cmd, key] = words;
    if (key === "stall") return;
    if (key === "close") {
      sock.destroy();
      return;
    }
    if (key?.startsWith("raw=")) return this.send(sock, pctDecode(key.slice(4)).replaceAll("@K", key));
    if (cmd === "get") {
      const it = this.items.get(key);
      return this.send(sock, it ? `VALUE ${key} ${it.flags} ${it.value.length}\r\n${it.value}\r\nEND\r\n` : "END\r\n");
    }
    if (cmd === "set") {
      this.items.set(key, { flags: words[2], value: message.slice(nl + 2) });
      return this.send(sock, "STORED\r\n");
    }
    if (cmd === "delete") return this.send(sock, this.items.delete(key) ? "DELETED\r\n" : "NOT_FOUND\r\n");
    this.send(sock, "ERROR\r\n");
  }
}
