/**
 * hosts.ts - mysql_table(5) `hosts` entries and where each one connects
 * (Postfix dict_mysql.c host_init(), plus the client library's rules for
 * filling in what an entry leaves open).
 *
 * An entry is "unix:/path", "inet:host[:port]" or "host[:port]" (inet is
 * the default). The port is whatever follows the LAST ':' (for unix entries
 * too, as in the reference), a number or a /etc/services name. "localhost"
 * (even as inet:localhost) means the server's default UNIX socket, the
 * MySQL way; use 127.0.0.1 for TCP to the local host. An empty host list
 * means "localhost".
 *
 * What the client library adds (Connector/C): a missing host, port or
 * socket comes from the option files (host, port, socket); protocol=1 there
 * forces TCP; the default socket is $MYSQL_UNIX_PORT or
 * /run/mysqld/mysqld.sock, the default port 3306.
 *
 * Errors: a bad port is the reference's fatal "bad port number: N" /
 * "unknown service: NAME/tcp", thrown as TableError("config").
 * Reads: /etc/services for port names. Logs: nothing.
 */
import { readFileSync } from "node:fs";
import { TableError } from "../table";
import type { ClientOptions } from "./optionFile";

export interface HostEntry {
  /** The entry as written in `hosts` (the reference's messages use it). */
  readonly label: string;
  readonly kind: "unix" | "inet";
  /** Path or host name; undefined for localhost. */
  readonly name: string | undefined;
  /** 0 = not given. */
  readonly port: number;
}

/** Where a connection goes, in mysql2's terms. */
export type Target = { socketPath: string } | { host: string; port: number };

export const DEFAULT_SOCKET = "/run/mysqld/mysqld.sock";
export const DEFAULT_PORT = 3306;

let services: Map<string, number> | undefined;

function serviceTcpPort(name: string): number | undefined {
  if (!services) {
    services = new Map();
    try {
      for (const line of readFileSync("/etc/services", "latin1").split("\n")) {
        const words = line.replace(/#.*/, "").trim().split(/\s+/);
        const m = /^(\d+)\/tcp$/.exec(words[1] ?? "");
        if (!m) continue;
        for (const w of [words[0], ...words.slice(2)]) if (w && !services.has(w)) services.set(w, Number(m[1]));
      }
    } catch {
      // no /etc/services: only numeric ports work, as with an empty file
    }
  }
  return services.get(name);
}

/** find_inet_port(): a port number or a TCP service name. */
function findPort(service: string): number {
  if (/^\d+$/.test(service) && Number(service) !== 0) {
    const port = Number(service);
    if (port > 65535) throw new TableError("config", `bad port number: ${service}`);
    return port;
  }
  const port = serviceTcpPort(service);
  if (port === undefined) throw new TableError("config", `unknown service: ${service}/tcp`);
  return port;
}

/** host_init(): one `hosts` entry. */
export function parseHost(entry: string): HostEntry {
  let rest = entry;
  let kind: "unix" | "inet" = "inet";
  if (rest.startsWith("unix:")) {
    rest = rest.slice(5);
    kind = "unix";
  } else if (rest.startsWith("inet:")) {
    rest = rest.slice(5);
  }
  let port = 0;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0) {
    port = findPort(rest.slice(colon + 1));
    rest = rest.slice(0, colon);
  }
  if (rest.toLowerCase() === "localhost") return { label: entry, kind: "unix", name: undefined, port };
  return { label: entry, kind, name: rest, port };
}

/** The `hosts` value split into entries (comma and blank separated). */
export function parseHosts(value: string): HostEntry[] {
  const words = value.split(/[, \t\r\n]+/).filter((w) => w !== "");
  if (words.length === 0) words.push("localhost");
  return words.map(parseHost);
}

/** Where an entry connects, with the option files' defaults filled in. */
export function resolveTarget(h: HostEntry, o: ClientOptions): Target {
  const host = (h.kind === "inet" ? h.name : undefined) || o.host;
  const socket = (h.kind === "unix" ? h.name : undefined) ?? o.socket;
  const port = h.port || o.port || DEFAULT_PORT;
  if ((!host || host === "localhost") && o.protocol !== 1) {
    return { socketPath: socket ?? process.env.MYSQL_UNIX_PORT ?? DEFAULT_SOCKET };
  }
  return { host: host || "localhost", port };
}
