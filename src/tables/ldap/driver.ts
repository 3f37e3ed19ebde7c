/**
 * ldap/driver.ts - the "ldap" table type: lookups in an LDAP directory as
 * ldap_table(5) describes them (Postfix 3.7 global/dict_ldap.c, as Debian
 * builds it), through our own LDAPv3 client on ldapts's BER codec.
 *
 * Settings: ldap/config.ts (every ldap_table(5) field, from a file
 * "ldap:/path/file.cf" or main.cf parameters NAME_field for "ldap:NAME").
 * A lookup: ldap/lookup.ts (the reference's search, recursion through
 * special attributes, leaf and terminal attributes, limits and statuses).
 * Connections: ldap/session.ts (shared by tables with equal connection
 * settings, many searches in flight on one connection; StartTLS, ldaps,
 * ldapi; simple binds and SASL EXTERNAL and PLAIN, ldap/sasl.ts).
 *
 * Here: opening a table (read-only, as the reference: a write open is the
 * reference's surrogate), and the first steps of each lookup: a key that is
 * not valid UTF-8 is not found unless the UTF-8 layer is active, FOLD_FIX
 * folds it (ASCII lower case), the `domain` list decides whether the
 * server is asked at all.
 *
 * Deliberate differences, each logged when it matters: version = 2 binds
 * as LDAPv3 (this client speaks only v3; logged once per table); SASL
 * mechanisms other than EXTERNAL and PLAIN are CONFIG; tls_cipher_suite
 * takes OpenSSL cipher lists (a GnuTLS priority string is ignored with a
 * notice); debuglevel has no effect (no libldap debug output); a failed
 * search does not close the shared connection.
 *
 * Reads the table's settings and TLS files. Logs what config.ts, session.ts
 * and lookup.ts log, and with -v the reference's lookup lines.
 */
import { msg } from "../../log/msg";
import { DictFlag } from "../../protocol/constants";
import { TableError, type OpenArgs, type OpenContext, type Table } from "../table";
import { lowercaseAscii, validUtf8 } from "../utf8";
import { CfgParser } from "../dbCommon/cfgParser";
import { parseLdapConfig, type LdapConfig } from "./config";
import { unsupportedSasl } from "./sasl";
import { acquireShare, releaseShare, type Share } from "./session";
import { searchKey } from "./lookup";

// Local, not config.ts's: the registry may load this module while config.ts is still loading.
const TYPE = "ldap";
const LOOKUP = "dict_ldap_lookup";

class LdapTable implements Table {
  readonly flags: number;
  private closed = false;

  constructor(
    readonly cfg: LdapConfig,
    private readonly share: Share,
    flags: number,
  ) {
    this.flags = flags | DictFlag.FIXED;
  }

  lookup(key: string, flags: number): Promise<string | undefined> | undefined {
    const cfg = this.cfg;
    if (msg.verbose) msg.info(`${LOOKUP}: In ${LOOKUP}`);
    if ((flags & DictFlag.UTF8_ACTIVE) === 0 && !validUtf8(key)) {
      if (msg.verbose) msg.info(`${LOOKUP}: ${cfg.name}: Skipping lookup of non-UTF-8 key '${key}'`);
      return undefined;
    }
    const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
    if (cfg.domain) {
      const r = cfg.domain.check(name);
      if (r instanceof Promise) return r.then((v) => this.afterDomain(v, name));
      return this.afterDomain(r, name);
    }
    return searchKey(cfg, this.share, name);
  }

  private afterDomain(r: string, name: string): Promise<string | undefined> | undefined {
    if (r === "nomatch") {
      if (msg.verbose) msg.info(`${LOOKUP}: ${this.cfg.name}: Skipping lookup of key '${name}': domain mismatch`);
      return undefined;
    }
    if (r !== "match") throw new TableError(r === "config" ? "config" : "retry", "");
    return searchKey(this.cfg, this.share, name);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cfg.domain?.close();
    releaseShare(this.share);
  }
}

export async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const parser = await CfgParser.open(args.name);
  const cfg = parseLdapConfig(parser, ctx);
  const refused = unsupportedSasl(cfg);
  if (refused) throw new TableError("config", refused);
  if (cfg.version === 2) msg.info(`${TYPE}:${cfg.name}: version = 2: this proxymap speaks LDAP version 3 only; it binds and searches as version 3`);
  return new LdapTable(cfg, acquireShare(cfg.connKey), args.flags);
}
