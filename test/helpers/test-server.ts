/**
 * test-server.ts - what the tests' own table servers (socketmap-server.ts,
 * tcp-server.ts) share: listening on a UNIX socket or on a loopback TCP
 * port, counting and tracking client connections, dropping them, closing.
 * Each subclass reads its own protocol in serve() and answers.
 */
import { createServer, type Server, type Socket } from "node:net";
import { existsSync, unlinkSync } from "node:fs";

export interface ListenOptions {
  /** A UNIX socket path (a stale file there is replaced); else loopback TCP. */
  path?: string;
  /** The TCP port (default: any free one). */
  port?: number;
}

/** Where a server listens: the socket path, or the TCP port on 127.0.0.1. */
export type Listening = { path: string } | { port: number };

/** Listen as asked; every accepted connection goes to onConnection. */
export async function listenForTest(opts: ListenOptions, onConnection: (sock: Socket) => void): Promise<[Server, Listening]> {
  const server = createServer(onConnection);
  if (opts.path !== undefined && existsSync(opts.path)) unlinkSync(opts.path);
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    if (opts.path !== undefined) server.listen(opts.path, () => res());
    else server.listen(opts.port ?? 0, "127.0.0.1", () => res());
  });
  if (opts.path !== undefined) return [server, { path: opts.path }];
  const addr = server.address();
  return [server, { port: typeof addr === "object" && addr ? addr.port : 0 }];
}

/**
 * A protocol's framing: the first whole message in `buf` and what follows
 * it; null when more bytes are needed; "bad" when the bytes cannot start a
 * message (the connection is then dropped).
 */
export type Framing = (buf: string) => [message: string, rest: string] | null | "bad";

export abstract class TestServer {
  /** Every request message received, in order. */
  readonly requests: string[] = [];
  /** Connections accepted so far. */
  accepted = 0;
  /** Connections open now. */
  readonly open = new Set<Socket>();
  protected server: Server | undefined;

  /** Count and track a new connection; errors of a client are its own business. */
  protected track(sock: Socket): void {
    this.accepted++;
    this.open.add(sock);
    sock.on("close", () => this.open.delete(sock));
    sock.on("error", () => {});
  }

  /** Answer one request message on its connection. */
  protected abstract answer(sock: Socket, message: string): void;

  /** Serve a new connection: cut its bytes into messages, record and answer each. */
  protected serveMessages(sock: Socket, framing: Framing): void {
    this.track(sock);
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (;;) {
        const cut = framing(buf);
        if (cut === null) return;
        if (cut === "bad") {
          sock.destroy();
          return;
        }
        buf = cut[1];
        this.requests.push(cut[0]);
        this.answer(sock, cut[0]);
      }
    });
  }

  /** Bytes (a byte string) to a client still connected. */
  protected send(sock: Socket, s: string): void {
    if (!sock.destroyed) sock.write(Buffer.from(s, "latin1"));
  }

  /** Close every client connection (the server keeps listening). */
  dropClients(): void {
    for (const s of this.open) s.destroy();
  }

  async close(): Promise<void> {
    this.dropClients();
    const server = this.server;
    if (server) await new Promise<void>((res) => server.close(() => res()));
  }
}
