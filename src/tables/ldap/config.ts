/**
 * ldap/config.ts - the settings of an LDAP table, read as Postfix 3.7's
 * dict_ldap_open() reads them (global/dict_ldap.c), in the same order and
 * with the same warnings, as Debian builds it: LDAP protocol version 3 by
 * default, and 3 again for a version it does not know.
 *
 * The fields (ldap_table(5)): server_host, server_port, version, scope,
 * search_base, timeout, query_filter, result_format (alias result_filter),
 * domain, terminal_result_attribute, leaf_result_attribute,
 * result_attribute, special_result_attribute, bind, bind_dn, bind_pw,
 * cache, cache_expiry, cache_size (ignored with the reference's warnings),
 * recursion_limit, expansion_limit, size_limit, dereference,
 * chase_referrals, sasl_mechs, sasl_realm, sasl_authz_id, sasl_minssf
 * (bind = sasl only), start_tls, tls_require_cert, tls_ca_cert_file,
 * tls_ca_cert_dir, tls_cert, tls_key, tls_random_file, tls_cipher_suite,
 * debuglevel. From a file (ldap:/path/file.cf) or as main.cf NAME_field
 * parameters (ldap:NAME), through dbCommon's CfgParser.
 *
 * server_host entries that are LDAP URLs are checked with url.ts (a bad
 * one is skipped with the reference's error line); host[:port] entries
 * become ldap://host:port. The result attributes form one list, terminal
 * ones first, then leaf-only, regular and special, as the lookup needs.
 *
 * Errors: where the reference exits (msg_fatal: bad number or boolean,
 * invalid template, unknown bind mode) the table is CONFIG
 * (TableError("config")); the process keeps serving everything else.
 * Logs: the reference's open-time warnings, and with -v its info lines.
 */
import { msg } from "../../log/msg";
import { TableError, type OpenContext } from "../table";
import type { CfgParser } from "../dbCommon/cfgParser";
import { DomainList } from "../dbCommon/domain";
import { TemplateContext } from "../dbCommon/expand";
import { ldapErrText } from "./errors";
import { isLdapUrl, parseLdapUrl, Scope } from "./url";

export const TYPE = "ldap";
const OPEN = "dict_ldap_open";

export const Bind = { NONE: 0, SIMPLE: 1, SASL: 2 } as const;

/** Mechanisms this proxymap can run itself (the reference asks Cyrus SASL). */
export const SASL_MECHANISMS = ["EXTERNAL", "PLAIN"] as const;

export interface SaslSettings {
  /** As configured (blank-separated); empty = whatever the server offers. */
  mechs: string[];
  realm: string;
  authzId: string;
  minSsf: number;
}

export interface TlsSettings {
  requireCert: boolean;
  caCertFile: string;
  caCertDir: string;
  cert: string;
  key: string;
  randomFile: string;
  cipherSuite: string;
}

export interface LdapConfig {
  /** The table name (file path or main.cf prefix), as log lines show it. */
  name: string;
  /** The server URL list, blank-separated (what the reference logs as "server"). */
  serverHost: string;
  urls: string[];
  /** The configured version (2 or 3); ours always speaks 3. */
  version: number;
  /** An ldaps:// URL is in the list. */
  ldapSsl: boolean;
  scope: number;
  searchBase: string;
  /** Seconds, for connect, bind and each search. */
  timeout: number;
  query: string;
  resultFormat: string;
  ctx: TemplateContext;
  /** The search base has %-expansions: a missing base is "not found", not an error. */
  dynamicBase: boolean;
  domain: DomainList | undefined;
  /** terminal, then leaf-only, then regular, then special attributes. */
  attrs: string[];
  numTerminal: number;
  numLeaf: number;
  /** terminal + leaf + regular. */
  numAttributes: number;
  bind: number;
  bindDn: string;
  bindPw: string;
  recursionLimit: number;
  expansionLimit: number;
  sizeLimit: number;
  dereference: number;
  chaseReferrals: boolean;
  sasl: SaslSettings | undefined;
  startTls: boolean;
  tls: TlsSettings;
  debuglevel: number;
  /** Tables whose keys are equal share one connection (the reference's dict_ldap_conn_find()). */
  connKey: string;
}

/** argv_split(): the words of s between separator characters. */
function words(s: string, seps = ", \t\r\n"): string[] {
  const out: string[] = [];
  let cur = "";
  for (const c of s) {
    if (seps.includes(c)) {
      if (cur) out.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  if (cur) out.push(cur);
  return out;
}

/** name_code() over the bind modes (case-insensitive), -1 when unknown. */
function bindMode(value: string): number {
  switch (value.toLowerCase()) {
    case "no":
    case "none":
      return Bind.NONE;
    case "yes":
    case "simple":
      return Bind.SIMPLE;
    case "sasl":
      return Bind.SASL;
    default:
      return -1;
  }
}

/** The server_host list as URLs (the reference's conversion of host[:port] entries). */
function serverUrls(name: string, hostList: string, port: number, state: { version: number; ssl: boolean }): string[] {
  const urls: string[] = [];
  for (const h of words(hostList)) {
    if (isLdapUrl(h)) {
      const u = parseLdapUrl(h);
      if (typeof u === "number") {
        msg.error(`${OPEN}: error parsing URL ${h}: ${u}: ${ldapErrText(u)}; skipping`);
        continue;
      }
      if (u.scheme !== "ldap" && state.version !== 3) {
        msg.warn(`${OPEN}: URL scheme ${u.scheme} requires protocol version 3`);
        state.version = 3;
      }
      if (u.scheme === "ldaps") state.ssl = true;
      urls.push(h);
    } else {
      urls.push(h.includes(":") ? `ldap://${h}` : `ldap://${h}:${port}`);
    }
  }
  void name;
  return urls;
}

/** dict_ldap_open()'s reading of the settings; `open` opens the domain list's type:table items. */
export function parseLdapConfig(p: CfgParser, open: OpenContext): LdapConfig {
  const name = p.name;
  if (msg.verbose) msg.info(`${OPEN}: Using LDAP source ${name}`);
  const hostList = p.str("server_host", "localhost", 1)!;
  const configuredPort = p.int("server_port", 389);
  let version = p.int("version", 3, 2);
  if (version !== 2 && version !== 3) {
    msg.warn(`${OPEN}: ${name} Unknown version ${version}, using 3.`);
    version = 3;
  }
  const state = { version, ssl: false };
  const urls = serverUrls(name, hostList, configuredPort, state);
  version = state.version;
  const serverHost = urls.join(" ");
  if (msg.verbose) msg.info(`${OPEN}: ${name} server_host URL is ${serverHost}`);

  const scopeText = p.str("scope", "sub", 1)!;
  let scope: number;
  switch (scopeText.toLowerCase()) {
    case "one":
      scope = Scope.ONE;
      break;
    case "base":
      scope = Scope.BASE;
      break;
    case "sub":
      scope = Scope.SUB;
      break;
    default:
      msg.warn(`${OPEN}: ${name}: Unrecognized value ${scopeText} specified for scope; using sub`);
      scope = Scope.SUB;
  }
  const searchBase = p.str("search_base", "")!;
  const timeout = p.int("timeout", 10);
  const query = p.str("query_filter", "(mailacceptinggeneralid=%s)")!;
  const resultFormat = p.str("result_format", null) ?? p.str("result_filter", "%s", 1)!;

  const ctx = new TemplateContext(TYPE, name);
  const dynamicBase = ctx.parse(searchBase, true);
  if (!ctx.parse(query, true)) msg.warn(`${OPEN}: ${name}: Fixed query_filter ${query} is probably useless`);
  ctx.parse(resultFormat, false);
  const domainValue = p.str("domain", "")!;
  const domain = domainValue ? DomainList.parse(name, domainValue, open) : undefined;

  const attrs = words(p.str("terminal_result_attribute", "")!);
  const numTerminal = attrs.length;
  attrs.push(...words(p.str("leaf_result_attribute", "")!));
  const numLeaf = attrs.length - numTerminal;
  attrs.push(...words(p.str("result_attribute", "maildrop")!));
  const numAttributes = attrs.length;
  attrs.push(...words(p.str("special_result_attribute", "")!));

  const bindText = p.str("bind", "yes", 1)!;
  const bind = bindMode(bindText);
  if (bind < 0) throw new TableError("config", `${name}: unsupported parameter value: bind = ${bindText}`);
  const bindDn = p.str("bind_dn", "")!;
  const bindPw = p.str("bind_pw", "")!;

  if (p.bool("cache", 0)) msg.warn(`${OPEN}: ${name} ignoring cache`);
  if (p.int("cache_expiry", -1) >= 0) msg.warn(`${OPEN}: ${name} ignoring cache_expiry`);
  if (p.int("cache_size", -1) >= 0) msg.warn(`${OPEN}: ${name} ignoring cache_size`);

  const recursionLimit = p.int("recursion_limit", 1000, 1);
  const expansionLimit = p.int("expansion_limit", 0);
  const sizeLimit = p.int("size_limit", expansionLimit);
  let dereference = p.int("dereference", 0);
  if (dereference < 0 || dereference > 3) {
    msg.warn(`${OPEN}: ${name} Unrecognized value ${dereference} specified for dereference; using 0`);
    dereference = 0;
  }
  const chaseReferrals = p.bool("chase_referrals", 0) !== 0;

  let sasl: SaslSettings | undefined;
  if (bind === Bind.SASL) {
    sasl = {
      mechs: words(p.str("sasl_mechs", "")!, " \t,"),
      realm: p.str("sasl_realm", "")!,
      authzId: p.str("sasl_authz_id", "")!,
      minSsf: p.int("sasl_minssf", 0, 0, 4096),
    };
  }
  const startTls = p.bool("start_tls", 0) !== 0;
  if (startTls && version < 3) {
    msg.warn(`${OPEN}: ${name} start_tls requires protocol version 3`);
    version = 3;
  }
  const tls: TlsSettings = {
    requireCert: p.bool("tls_require_cert", 0) !== 0,
    caCertFile: p.str("tls_ca_cert_file", "")!,
    caCertDir: p.str("tls_ca_cert_dir", "")!,
    cert: p.str("tls_cert", "")!,
    key: p.str("tls_key", "")!,
    randomFile: p.str("tls_random_file", "")!,
    cipherSuite: p.str("tls_cipher_suite", "")!,
  };
  const debuglevel = p.int("debuglevel", 0);

  const cfg: LdapConfig = {
    name,
    serverHost,
    urls,
    version,
    ldapSsl: state.ssl,
    scope,
    searchBase,
    timeout,
    query,
    resultFormat,
    ctx,
    dynamicBase,
    domain,
    attrs,
    numTerminal,
    numLeaf,
    numAttributes,
    bind,
    bindDn,
    bindPw,
    recursionLimit,
    expansionLimit,
    sizeLimit,
    dereference,
    chaseReferrals,
    sasl,
    startTls,
    tls,
    debuglevel,
    connKey: "",
  };
  cfg.connKey = connectionKey(cfg);
  return cfg;
}

/** dict_ldap_conn_find()'s key: the settings that make a connection what it is. */
function connectionKey(c: LdapConfig): string {
  const bound = c.bind !== Bind.NONE;
  const sasl = c.bind === Bind.SASL && c.sasl;
  const tlsOn = c.startTls || c.ldapSsl;
  return JSON.stringify([
    c.serverHost,
    c.bind,
    bound ? c.bindDn : "",
    bound ? c.bindPw : "",
    c.dereference,
    c.chaseReferrals,
    c.debuglevel,
    c.version,
    sasl ? c.sasl!.mechs.join(" ") : "",
    sasl ? c.sasl!.realm : "",
    sasl ? c.sasl!.authzId : "",
    sasl ? c.sasl!.minSsf : 0,
    c.ldapSsl,
    c.startTls,
    tlsOn ? c.tls.requireCert : false,
    tlsOn ? c.tls.caCertFile : "",
    tlsOn ? c.tls.caCertDir : "",
    tlsOn ? c.tls.cert : "",
    tlsOn ? c.tls.key : "",
    tlsOn ? c.tls.randomFile : "",
    tlsOn ? c.tls.cipherSuite : "",
  ]);
}
