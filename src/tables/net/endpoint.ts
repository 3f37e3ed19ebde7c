/**
 * endpoint.ts - the server addresses that network tables name, parsed the
 * way Postfix does:
 *  - socketmap's "unix:PATHNAME", "local:PATHNAME" (the same on Linux) and
 *    "inet:HOST:PORT" (auto_clnt_create(): transport before the first ':');
 *  - the HOST:PORT forms of host_port() used by tcp and inet: "[host]:port",
 *    "host:port", ":port" and a bare "port" (host "localhost").
 * A service is a port number or a name from /etc/services.
 *
 * Pure; errors are returned as the reference's texts.
 */
import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import type { Endpoint } from "./connection";

/** Port numbers of /etc/services names (tcp), read once. */
let services: Map<string, number> | undefined;

/**
 * The port of a service name as getaddrinfo() would find it in
 * /etc/services, or -1 when it is unknown (connecting then fails with the
 * resolver's "Servname not supported for ai_socktype", connection.ts).
 */
export function servicePort(name: string): number {
  if (services === undefined) {
    services = new Map();
    let text = "";
    try {
      text = readFileSync("/etc/services", "latin1");
    } catch {
      // No services database: every name is unknown.
    }
    for (const line of text.split("\n")) {
      const words = line.replace(/#.*/, "").trim().split(/\s+/);
      const m = /^(\d+)\/tcp$/.exec(words[1] ?? "");
      if (!m) continue;
      for (const w of [words[0], ...words.slice(2)]) if (w && !services.has(w)) services.set(w, Number(m[1]));
    }
  }
  return services.get(name) ?? -1;
}

/** valid_hostname() (without wildcards) or valid_hostaddr(): what host_port() accepts. */
export function validHost(host: string): boolean {
  if (isIPv4(host) || isIPv6(host)) return true;
  if (host.length === 0 || host.length > 255) return false;
  let labelLen = 0;
  let nonNumeric = false;
  for (let i = 0; i < host.length; i++) {
    const ch = host[i];
    const next = host[i + 1];
    if (/[A-Za-z0-9_]/.test(ch)) {
      if (++labelLen > 63) return false;
      if (!/[0-9]/.test(ch)) nonNumeric = true;
    } else if (ch === ".") {
      if (labelLen === 0 || next === undefined) return false;
      labelLen = 0;
    } else if (ch === "-") {
      nonNumeric = true;
      if (++labelLen === 1 || next === undefined || next === ".") return false;
    } else {
      return false;
    }
  }
  return nonNumeric;
}

/** host_port() with default host "localhost" and no default service. */
export function parseHostPort(spec: string): Endpoint | { err: string } {
  let host: string;
  let port: string;
  if (spec[0] === "[") {
    const close = spec.indexOf("]");
    if (close < 0) return { err: 'missing "]"' };
    host = spec.slice(1, close);
    const ipv6 = host.toLowerCase().startsWith("ipv6:");
    if (ipv6) host = host.slice(5);
    const rest = spec.slice(close + 1);
    if (rest !== "" && rest[0] !== ":") return { err: 'garbage after "]"' };
    if (ipv6 && !isIPv6(host)) return { err: "malformed IPv6 address" };
    port = rest.slice(1);
  } else {
    const colon = spec.lastIndexOf(":");
    if (colon >= 0) {
      host = spec.slice(0, colon) || "localhost";
      port = spec.slice(colon + 1);
    } else {
      host = "localhost";
      port = spec;
    }
  }
  if (host === "") return { err: "missing host information" };
  if (port === "") return { err: "missing service information" };
  if (host !== "localhost" && !validHost(host)) return { err: "valid hostname or network address required" };
  if (/^[0-9]/.test(port) && !/^[0-9]+$/.test(port)) return { err: "garbage after numerical service" };
  const n = /^[0-9]+$/.test(port) ? Number(port) : servicePort(port);
  return { kind: "inet", host, port: n > 65535 ? -1 : n };
}

/** auto_clnt's "transport:endpoint" (unix, local, inet). */
export function parseService(service: string): Endpoint | { err: string } {
  const colon = service.indexOf(":");
  const transport = colon < 0 ? service : service.slice(0, colon);
  const rest = colon < 0 ? "" : service.slice(colon + 1);
  if (colon < 0 || transport === "" || rest === "") return { err: `need service transport:endpoint instead of "${service}"` };
  if (transport === "unix" || transport === "local") return { kind: "unix", path: rest };
  if (transport === "inet") {
    const hp = parseHostPort(rest);
    return "err" in hp ? { err: `${rest}: ${hp.err}` } : hp;
  }
  return { err: `invalid transport name: ${transport} in service: ${service}` };
}

/** "host:port" / "path" for messages. */
export function endpointText(ep: Endpoint): string {
  return ep.kind === "unix" ? ep.path : `${ep.host}:${ep.port}`;
}
