/**
 * pgsql/conninfo.ts - libpq connection strings, as PQconnectdb() reads
 * them: the URI form ("postgresql://user:pw@host:port,host2/db?k=v&...")
 * and the keyword form ("host=/x dbname=y"), parsed into keyword values
 * with libpq's (15) error texts. pgsql_table(5) `hosts` entries in URI
 * form go through here (hosts.ts), so a bad one fails every connection
 * attempt with the words libpq would have used.
 *
 * Keywords are those libpq 15 knows; values of the ones a connection of
 * ours uses are read by hosts.ts, the rest are accepted and ignored (see
 * the README). "ssl=true" in a URI means sslmode=require, as in libpq.
 *
 * Pure; reads and logs nothing.
 */

/** libpq 15's connection option keywords (PQconninfoOptions). */
const KEYWORDS = new Set([
  "service", "user", "password", "passfile", "channel_binding", "connect_timeout", "dbname", "host", "hostaddr", "port",
  "client_encoding", "options", "application_name", "fallback_application_name", "keepalives", "keepalives_idle",
  "keepalives_interval", "keepalives_count", "tcp_user_timeout", "sslmode", "sslcompression", "sslcert", "sslkey",
  "sslpassword", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
  "ssl_max_protocol_version", "gssencmode", "krbsrvname", "gsslib", "target_session_attrs",
]);

/** Keyword values, or libpq's error text (ending in a newline). */
export type Conninfo = { values: Map<string, string> } | { error: string };

const URI_PREFIXES = ["postgresql://", "postgres://"];

/** True when libpq reads the string as a URI. */
export function isUri(s: string): boolean {
  return URI_PREFIXES.some((p) => s.startsWith(p));
}

/** PQconnectdb()'s reading of a connection string. */
export function parseConninfo(s: string): Conninfo {
  return isUri(s) ? parseUri(s) : parseKeywords(s);
}

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";
}

/** conninfo_parse(): keyword = value pairs, values optionally single-quoted with \ escapes. */
function parseKeywords(s: string): Conninfo {
  const values = new Map<string, string>();
  let i = 0;
  while (i < s.length) {
    while (isSpace(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    while (i < s.length && s[i] !== "=" && !isSpace(s[i])) i++;
    const name = s.slice(start, i);
    while (isSpace(s[i])) i++;
    if (s[i] !== "=") return { error: `missing "=" after "${name}" in connection info string\n` };
    i++;
    while (isSpace(s[i])) i++;
    let value = "";
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) return { error: "unterminated quoted string in connection info string\n" };
        if (s[i] === "\\" && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else if (s[i] === "'") {
          i++;
          break;
        } else value += s[i++];
      }
    } else {
      while (i < s.length && !isSpace(s[i])) {
        if (s[i] === "\\" && i + 1 < s.length) {
          value += s[i + 1];
          i += 2;
        } else value += s[i++];
      }
    }
    if (!KEYWORDS.has(name)) return { error: `invalid connection option "${name}"\n` };
    values.set(name, value);
  }
  return { values };
}

/** conninfo_uri_decode(): %XX escapes; undefined with libpq's text when invalid. */
function uriDecode(s: string): { text: string } | { error: string } {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "%") {
      out += s[i];
      continue;
    }
    const h = s.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(h)) return { error: `invalid percent-encoded token: "${s}"\n` };
    const v = parseInt(h, 16);
    if (v === 0) return { error: `forbidden value %00 in percent-encoded value: "${s}"\n` };
    out += String.fromCharCode(v);
    i += 2;
  }
  return { text: out };
}

/** conninfo_uri_parse_options(). */
function parseUri(uri: string): Conninfo {
  const values = new Map<string, string>();
  const prefix = URI_PREFIXES.find((p) => uri.startsWith(p))!;
  let rest = uri.slice(prefix.length);
  const put = (k: string, raw: string): string | undefined => {
    const d = uriDecode(raw);
    if ("error" in d) return d.error;
    values.set(k, d.text);
    return undefined;
  };

  // user[:password]@ ... (only when an '@' comes before the path or query)
  const at = rest.search(/[@/?]/);
  if (at >= 0 && rest[at] === "@") {
    const spec = rest.slice(0, at);
    const colon = spec.indexOf(":");
    const userPart = colon < 0 ? spec : spec.slice(0, colon);
    if (userPart !== "") {
      const e = put("user", userPart);
      if (e) return { error: e };
    }
    if (colon >= 0) {
      const e = put("password", spec.slice(colon + 1));
      if (e) return { error: e };
    }
    rest = rest.slice(at + 1);
  }

  // host[:port][,host[:port]]...
  const hosts: string[] = [];
  const ports: string[] = [];
  let pos = prefix.length + (uri.length - prefix.length - rest.length);
  for (;;) {
    let host = "";
    if (rest[0] === "[") {
      const close = rest.indexOf("]");
      if (close < 0) return { error: `end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"\n` };
      host = rest.slice(1, close);
      if (host === "") return { error: `IPv6 host address may not be empty in URI: "${uri}"\n` };
      rest = rest.slice(close + 1);
      pos += close + 1;
      if (rest !== "" && !":/?,".includes(rest[0])) return { error: `unexpected character "${rest[0]}" at position ${pos + 1} in URI (expected ":" or "/"): "${uri}"\n` };
    } else {
      const end = rest.search(/[:/?,]/);
      host = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? "" : rest.slice(end);
      pos += host.length;
    }
    let port = "";
    if (rest[0] === ":") {
      const end = rest.slice(1).search(/[/?,]/);
      port = end < 0 ? rest.slice(1) : rest.slice(1, 1 + end);
      rest = end < 0 ? "" : rest.slice(1 + end);
      pos += 1 + port.length;
    }
    const dh = uriDecode(host);
    if ("error" in dh) return { error: dh.error };
    const dp = uriDecode(port);
    if ("error" in dp) return { error: dp.error };
    hosts.push(dh.text);
    ports.push(dp.text);
    if (rest[0] !== ",") break;
    rest = rest.slice(1);
    pos++;
  }
  if (hosts.some((h) => h !== "")) values.set("host", hosts.join(","));
  if (ports.some((p) => p !== "")) values.set("port", ports.join(","));

  // /dbname
  if (rest[0] === "/") {
    const end = rest.indexOf("?");
    const db = end < 0 ? rest.slice(1) : rest.slice(1, end);
    if (db !== "") {
      const e = put("dbname", db);
      if (e) return { error: e };
    }
    rest = end < 0 ? "" : rest.slice(end);
  }

  // ?k=v&k=v
  if (rest[0] === "?") {
    for (const param of rest.slice(1).split("&")) {
      const eq = param.indexOf("=");
      if (eq < 0) return { error: `missing key/value separator "=" in URI query parameter: "${param}"\n` };
      if (param.indexOf("=", eq + 1) >= 0) return { error: `extra key/value separator "=" in URI query parameter: "${param.slice(0, eq)}"\n` };
      const k = uriDecode(param.slice(0, eq));
      if ("error" in k) return { error: k.error };
      const v = uriDecode(param.slice(eq + 1));
      if ("error" in v) return { error: v.error };
      let key = k.text;
      let value = v.text;
      if (key === "ssl" && value === "true") {
        key = "sslmode";
        value = "require";
      }
      if (!KEYWORDS.has(key)) return { error: `invalid URI query parameter: "${key}"\n` };
      values.set(key, value);
    }
  }
  return { values };
}
