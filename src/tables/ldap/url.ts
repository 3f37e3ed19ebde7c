/**
 * ldap/url.ts - LDAP URLs as the reference's client library reads them
 * (OpenLDAP 2.5 libldap url.c: ldap_is_ldap_url(), ldap_url_parse() and
 * their helpers). The reference hands every special-attribute value and
 * every server_host entry to these functions, so which values count as URLs,
 * which parse, with which error code, and what base, scope, filter and
 * attributes come out must match them, quirks included:
 *
 *  - "<...>" and "URL:" prefixes are accepted; schemes ldap, pldap, ldaps,
 *    pldaps, ldapi, in any case;
 *  - %XX escapes are undone per part; a '%' not followed by two hex digits
 *    empties the whole part, and %00 ends it (C strings);
 *  - the historic defaults of ldap_url_parse(): scope base, port 389 (636
 *    for "ldaps"), an empty host is no host, an empty DN is "";
 *  - attributes and extensions are split at commas, empty items dropped;
 *  - errors are the LDAP_URL_ERR_* numbers (which the reference then prints
 *    through ldap_err2string() as if they were LDAP result codes).
 *
 * Strings are byte strings (latin1). Pure; reads and logs nothing.
 */

export const UrlErr = {
  PARAM: 2,
  BADSCHEME: 3,
  BADENCLOSURE: 4,
  BADURL: 5,
  BADHOST: 6,
  BADATTRS: 7,
  BADSCOPE: 8,
  BADFILTER: 9,
  BADEXTS: 10,
} as const;

export const Scope = { BASE: 0, ONE: 1, SUB: 2, SUBORDINATE: 3 } as const;

/** The flags of ldap_url_parse_ext() that the reference's calls use. */
export const UrlFlags = {
  NOEMPTY_HOST: 0x01,
  DEF_PORT: 0x02,
  NOEMPTY_DN: 0x04,
  NODEF_SCOPE: 0x08,
  /** ldap_url_parse(). */
  HISTORIC: 0x01 | 0x02 | 0x08,
} as const;

export interface LdapUrl {
  /** Lower case: "ldap", "pldap", "ldaps", "pldaps" or "ldapi". */
  scheme: string;
  /** Host name, IPv6 address without brackets, or (ldapi) the socket path; null when empty. */
  host: string | null;
  /** 0 when none was given and no default applies (ldapi). */
  port: number;
  dn: string | null;
  attrs: string[] | null;
  /** Scope (Scope.*), or -1 when none was given and no default applies. */
  scope: number;
  filter: string | null;
  exts: string[] | null;
}

const PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ["ldap://", "ldap"],
  ["pldap://", "pldap"],
  ["ldaps://", "ldaps"],
  ["pldaps://", "pldaps"],
  ["ldapi://", "ldapi"],
];

/** The text up to its first NUL, as C sees it. */
function cstr(s: string): string {
  const nul = s.indexOf("\0");
  return nul < 0 ? s : s.slice(0, nul);
}

/** skip_url_prefix(): the rest after the scheme, or undefined when not an LDAP URL. */
function skipPrefix(url: string): { rest: string; enclosed: boolean; scheme: string } | undefined {
  let p = 0;
  const enclosed = url[0] === "<";
  if (enclosed) p++;
  if (url.slice(p, p + 4).toLowerCase() === "url:") p += 4;
  for (const [prefix, scheme] of PREFIXES) {
    if (url.slice(p, p + prefix.length).toLowerCase() === prefix) return { rest: url.slice(p + prefix.length), enclosed, scheme };
  }
  return undefined;
}

/** ldap_is_ldap_url(). */
export function isLdapUrl(url: string): boolean {
  return skipPrefix(cstr(url)) !== undefined;
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9A-Fa-f]$/.test(c);
}

/**
 * ldap_pvt_hex_unescape() done in place, as C leaves the buffer: the
 * unescaped text, then NUL. On a bad escape the first byte becomes NUL and
 * the rest of the buffer keeps what the loop left there (the unescaped part
 * so far, then the original bytes): a reader starting one byte in, as
 * libldap does for "[v6]" hosts, sees that.
 */
function hexUnescapeInPlace(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "%") {
      out += s[i];
      continue;
    }
    if (!isHex(s[i + 1]) || !isHex(s[i + 2])) return "\0" + (out + s.slice(out.length)).slice(1);
    out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
    i += 2;
  }
  return out + "\0";
}

/** ldap_pvt_hex_unescape(): %XX undone; a bad escape empties the string; NUL ends it. */
export function hexUnescape(s: string): string {
  return cstr(hexUnescapeInPlace(s));
}

/** ldap_str2charray(s, ","): the non-empty items between commas. */
function splitCommas(s: string): string[] {
  return s.split(",").filter((x) => x !== "");
}

/** ldap_pvt_str2scope(). */
export function parseScope(s: string): number {
  switch (s.toLowerCase()) {
    case "one":
    case "onelevel":
      return Scope.ONE;
    case "base":
      return Scope.BASE;
    case "sub":
    case "subtree":
      return Scope.SUB;
    case "subord":
    case "subordinate":
    case "children":
      return Scope.SUBORDINATE;
    default:
      return -1;
  }
}

/** strtol(s, &end, 10) that must consume all of s, as an int; undefined otherwise. */
function strtolWhole(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n | 0;
}

/**
 * ldap_url_parse_ext(): the parts of an LDAP URL, or an LDAP_URL_ERR_*
 * number. Default flags: those of ldap_url_parse().
 */
export function parseLdapUrl(input: string, flags: number = UrlFlags.HISTORIC): LdapUrl | number {
  const pre = skipPrefix(cstr(input));
  if (!pre) return UrlErr.BADSCHEME;
  let url = pre.rest;
  if (pre.enclosed) {
    if (!url.endsWith(">")) return UrlErr.BADENCLOSURE;
    url = url.slice(0, -1);
  }
  const ipc = pre.scheme === "ldapi";
  const out: LdapUrl = { scheme: pre.scheme, host: null, port: 0, dn: null, attrs: null, scope: flags & UrlFlags.NODEF_SCOPE ? Scope.BASE : -1, filter: null, exts: null };

  // Host part: up to the first '/', else (Novell kludge) up to the first '?'.
  let hostport: string;
  let path: string | null = null;
  let kludge: string | null = null;
  const slash = url.indexOf("/");
  if (slash >= 0) {
    hostport = url.slice(0, slash);
    path = url.slice(slash + 1);
  } else {
    const q = url.indexOf("?");
    if (q >= 0) {
      hostport = url.slice(0, q);
      kludge = url.slice(q + 1);
    } else {
      hostport = url;
    }
  }
  let v6 = false;
  if (!ipc) {
    let portText: string | null = null;
    if (hostport.startsWith("[")) {
      const close = hostport.indexOf("]");
      if (close < 0) return UrlErr.BADURL;
      const after = hostport.slice(close + 1);
      const colon = after.indexOf(":");
      if (colon > 0) return UrlErr.BADURL;
      if (colon === 0) portText = after.slice(1);
      hostport = hostport.slice(0, close);
      v6 = true;
    } else {
      const colon = hostport.indexOf(":");
      if (colon >= 0) {
        portText = hostport.slice(colon + 1);
        hostport = hostport.slice(0, colon);
      }
    }
    // A port (even an empty kludge target) takes the place of the kludge's '?'.
    if (portText !== null) {
      const text = hexUnescape(portText);
      if (text === "") return UrlErr.BADURL;
      const port = strtolWhole(text);
      if (port === undefined) return UrlErr.BADURL;
      out.port = port;
    }
    kludge = null;
    if (flags & UrlFlags.DEF_PORT && out.port === 0) out.port = out.scheme === "ldaps" ? 636 : 389;
  }
  const host = cstr(hexUnescapeInPlace(hostport).slice(v6 ? 1 : 0));
  out.host = flags & UrlFlags.NOEMPTY_HOST && host === "" ? null : host;

  if (path === null && kludge !== null && kludge.startsWith("?")) {
    const dn = kludge.slice(1);
    if (dn !== "") out.dn = hexUnescape(dn);
    else if (!(flags & UrlFlags.NOEMPTY_DN)) out.dn = "";
  }
  if (path === null) return out;

  const parts = path.split("?");
  if (parts.length > 5) return UrlErr.BADURL;
  const [dn, attrs, scope, filter, exts] = parts;
  if (dn !== "") out.dn = hexUnescape(dn);
  else if (!(flags & UrlFlags.NOEMPTY_DN)) out.dn = "";
  if (attrs === undefined) return out;
  if (attrs !== "") out.attrs = splitCommas(hexUnescape(attrs));
  if (scope === undefined) return out;
  if (scope !== "") {
    out.scope = parseScope(hexUnescape(scope));
    if (out.scope === -1) return UrlErr.BADSCOPE;
  }
  if (filter === undefined) return out;
  if (filter !== "") {
    const f = hexUnescape(filter);
    if (f === "") return UrlErr.BADFILTER;
    out.filter = f;
  }
  if (exts === undefined) return out;
  const list = splitCommas(exts).map(hexUnescape);
  if (list.length === 0) return UrlErr.BADEXTS;
  out.exts = list;
  return out;
}
