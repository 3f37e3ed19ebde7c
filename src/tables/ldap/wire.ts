/**
 * ldap/wire.ts - the byte transport under an LDAP connection: a socket to
 * write requests to and read replies from, two ways.
 *
 *  - nodeWire(): a node:net / node:tls socket. Used for ldaps:// and for
 *    connections that will do StartTLS, so certificates are checked by
 *    node:tls (chain, host name, CA files) and a plain socket can be upgraded
 *    in place.
 *  - bunWire(): Bun's native socket (Bun.connect), for plain TCP and ldapi://
 *    connections. A search is one small write and one small read; measured
 *    here, Bun's native socket spends about a third less CPU on that round
 *    trip than node:net, which is most of a lookup's cost under load. Its
 *    write() may take only part of a buffer: the rest waits here, in order,
 *    for the socket's drain event.
 *
 * Both report received bytes and the end of the connection (peer close,
 * error, reset) to the connection through WireEvents. Logs nothing.
 */
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

export interface WireEvents {
  data(d: Buffer): void;
  /** The connection is gone (closed by either side, or failed). Called at most once. */
  closed(): void;
}

export interface Wire {
  write(b: Buffer): void;
  /** Write the last bytes, then close. */
  end(b: Buffer): void;
  destroy(): void;
  /** The node socket underneath, when there is one (StartTLS upgrades it). */
  readonly node?: Socket | TLSSocket;
}

/** A Wire over a connected node:net or node:tls socket. */
export function nodeWire(sock: Socket | TLSSocket, ev: WireEvents): Wire {
  let gone = false;
  const closed = () => {
    if (gone) return;
    gone = true;
    ev.closed();
  };
  (sock as Socket).setNoDelay?.(true);
  sock.on("data", (d: Buffer) => ev.data(d));
  sock.on("error", closed);
  sock.on("close", closed);
  sock.on("end", closed);
  return {
    node: sock,
    write: (b) => {
      if (!sock.destroyed) sock.write(b);
    },
    end: (b) => sock.end(b),
    destroy: () => sock.destroy(),
  };
}

type BunSocket = Awaited<ReturnType<typeof Bun.connect>>;

/**
 * A Wire over Bun's native socket: TCP (host, port) or a UNIX-domain socket
 * (path). Resolves when connected, or to the Error that stopped it
 * (including the time limit).
 */
export function bunWire(target: { host: string; port: number } | { path: string }, timeoutMs: number, ev: WireEvents): Promise<Wire | Error> {
  let gone = false;
  let socket: BunSocket | undefined;
  let backlog: Buffer[] = [];
  const closed = () => {
    if (gone) return;
    gone = true;
    backlog = [];
    ev.closed();
  };
  /** Write what the socket takes; keep the rest, in order. */
  const push = () => {
    while (socket && backlog.length > 0) {
      const b = backlog[0];
      const n = socket.write(b);
      if (n < b.length) {
        backlog[0] = b.subarray(Math.max(0, n));
        return;
      }
      backlog.shift();
    }
  };
  const handlers = {
    data: (_s: BunSocket, d: Buffer) => ev.data(d),
    drain: () => push(),
    close: () => closed(),
    end: () => closed(),
    error: () => closed(),
  };
  const where = "path" in target ? { unix: target.path } : { hostname: target.host, port: target.port };
  const connecting = Bun.connect({ ...where, socket: handlers } as Parameters<typeof Bun.connect>[0]);
  return new Promise((resolve) => {
    let settled = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            if (settled) return;
            settled = true;
            connecting.then((s) => s.end(), () => undefined);
            resolve(new Error("connect timed out"));
          }, timeoutMs)
        : undefined;
    connecting.then(
      (s) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        socket = s;
        resolve({
          write: (b) => {
            if (gone) return;
            backlog.push(b);
            if (backlog.length === 1) push();
          },
          end: (b) => {
            if (!gone) s.write(b);
            s.end();
          },
          destroy: () => {
            gone = true;
            s.end();
          },
        });
      },
      (e: unknown) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
