/**
 * ldap/lookup.ts - one LDAP table lookup, step by step as the reference's
 * dict_ldap_lookup() and dict_ldap_get_values() do it (Postfix 3.7
 * global/dict_ldap.c), with the same results, warnings and statuses.
 *
 * dict_ldap_lookup():
 *   non-UTF-8 key (unless the UTF-8 layer is active): not found;
 *   FOLD_FIX: the key in lower case (ASCII);
 *   `domain` list: a key outside it is not found, without a server;
 *   the connection (made if need be; failure: RETRY);
 *   search_base and query_filter expanded with the key (RFC 2253 and
 *   2254 quoting); a key that cannot fill them is not found (the empty
 *   key with "empty query string -- ignored", after the connection);
 *   the search: SERVER_DOWN -> a new connection and one retry; success ->
 *   the values; "no such object" -> not found when the base depends on the
 *   key, else RETRY; anything else -> RETRY.
 *
 * dict_ldap_get_values(), for each entry of a result, in the server's
 * order: more than size_limit entries -> RETRY; an entry with a value of a
 * terminal attribute gives only its terminal attributes; an entry with
 * values of a special attribute gives no leaf-only attributes. Both states
 * are NOT reset between the entries of one result: a terminal entry makes
 * the following ones terminal unless they have a terminal attribute with
 * values, and likewise for leaf-only attributes (copied on purpose).
 * Regular values go through result_format and are joined with ','
 * (expansion_limit -> RETRY). Special values are searched: an LDAP URL
 * with its own base, scope and filter (its host ignored) for the URL's
 * attributes that the table asks for (none in common: skipped), anything
 * else as a DN (base scope, the table's attributes); a missing object is a
 * warning and skipped, a malformed URL or any other error RETRY; the
 * results are walked the same way, one level deeper, until
 * recursion_limit (reached: RETRY).
 *
 * The reference reads its library's last error number after the walk and
 * warns "Had some trouble with entries returned by search" unless it is
 * success or a decoding error; which calls set that number is modelled in
 * `errno` (searches set their result code, a missing attribute sets a
 * decoding error).
 *
 * Ours differs on purpose: a search error does not close the shared
 * connection unless the connection is lost or the server sent nothing at
 * all while the search waited (the reference unbinds after any error and
 * reconnects for its next lookup; ours keeps serving the other lookups on
 * it); referrals are followed here (chase_referrals), bounded by
 * recursion_limit.
 *
 * Logs the reference's warnings and -v info lines.
 */
import { msg } from "../../log/msg";
import { TableError } from "../table";
import { cString } from "../../util/ctype";
import { rfc2253Quote, rfc2254Quote } from "../dbCommon/quote";
import type { LdapConfig } from "./config";
import type { LdapEntry, SearchRequest, SearchResult } from "./connection";
import { Ldap, ldapErrText } from "./errors";
import { LdapHandle, type Share } from "./session";
import { isLdapUrl, parseLdapUrl, Scope, UrlFlags, type LdapUrl } from "./url";

const LOOKUP = "dict_ldap_lookup";
const VALUES = "dict_ldap_get_values";
/** Entries walked before other work gets a turn. */
const YIELD_EVERY = 200;

/** attrdesc_subtype(): 1 when b is a or a subtype of it (a;options), -1 for the reverse, else 0. */
export function attrSubtype(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  let i = 0;
  while (i < la.length && i < lb.length && la[i] === lb[i]) i++;
  if (i === la.length && (i === lb.length || lb[i] === ";")) return 1;
  if (i === lb.length && la[i] === ";") return -1;
  return 0;
}

/** url_attrs(): the attributes to ask a URL member for; undefined = none in common. */
export function urlAttributes(tableAttrs: readonly string[], url: LdapUrl): readonly string[] | undefined {
  if (!url.attrs || url.attrs.length === 0) return tableAttrs;
  const out: string[] = [];
  for (const a1 of url.attrs) {
    for (const a2 of tableAttrs) {
      const rel = attrSubtype(a1, a2);
      if (rel > 0) out.push(a2);
      else if (rel < 0) out.push(a1);
    }
  }
  return out.length > 0 ? out : undefined;
}

/** ldap_get_values_len(): the values of the first attribute named exactly `type` (any case). */
function valuesOf(e: LdapEntry, type: string): readonly string[] | undefined {
  const t = type.toLowerCase();
  return e.attrs.find((a) => a.type.toLowerCase() === t)?.values;
}

/** The per-lookup state the reference keeps in statics and in dict->error. */
class Run {
  error = false;
  recursion = 0;
  expansion = 0;
  result = "";
  /** libldap's ld_errno as the reference reads it after the walk. */
  errno = 0;

  constructor(
    readonly cfg: LdapConfig,
    readonly share: Share,
    public handle: LdapHandle,
    readonly name: string,
  ) {}

  private get timeoutMs(): number {
    return this.cfg.timeout * 1000;
  }

  /** search_st(), plus referral chasing when configured. */
  async search(base: string, scope: number, filter: string | null, attrs: readonly string[]): Promise<SearchResult> {
    const req: SearchRequest = { base, scope, deref: this.cfg.dereference, sizeLimit: this.cfg.sizeLimit, timeLimit: this.cfg.timeout, filter, attrs };
    const r = await this.searchOn(this.handle, req);
    this.errno = r.code;
    return r;
  }

  private async searchOn(h: LdapHandle, req: SearchRequest, hops = 0): Promise<SearchResult> {
    // libldap refuses a zero time limit before sending anything.
    if (this.cfg.timeout <= 0) return { code: Ldap.PARAM_ERROR, entries: [], references: [], referrals: [] };
    const r = await h.search(req, this.timeoutMs);
    if (!this.cfg.chaseReferrals) return r;
    return this.chase(r, req, hops);
  }

  /** Follow a referral result and continuation references (libldap's LDAP_OPT_REFERRALS). */
  private async chase(r: SearchResult, req: SearchRequest, hops: number): Promise<SearchResult> {
    // Past the hop limit the referral itself is the answer (libldap: "Referral", its hop limit 5).
    if (hops + 1 >= this.cfg.recursionLimit) return r;
    let out = r;
    if (r.code === Ldap.REFERRAL && r.referrals.length > 0) {
      const followed = await this.follow(r.referrals, req, hops, false);
      out = { code: followed.code, entries: [...r.entries, ...followed.entries], references: [], referrals: followed.referrals };
    }
    if (out.code !== Ldap.SUCCESS || r.references.length === 0) return out;
    const entries = [...out.entries];
    for (const urls of r.references) {
      const sub = await this.follow(urls, req, hops, true);
      if (sub.code === Ldap.SUCCESS) entries.push(...sub.entries);
    }
    return { code: out.code, entries, references: [], referrals: [] };
  }

  private async follow(urls: readonly string[], req: SearchRequest, hops: number, continuation: boolean): Promise<SearchResult> {
    let last: SearchResult = { code: Ldap.SERVER_DOWN, entries: [], references: [], referrals: [] };
    for (const u of urls) {
      const url = parseLdapUrl(u, UrlFlags.NOEMPTY_HOST | UrlFlags.DEF_PORT);
      if (typeof url === "number") continue;
      const h = this.share.referralHandle(url, this.cfg);
      if (!h) continue;
      const scope = url.scope >= 0 ? url.scope : continuation && req.scope === Scope.ONE ? Scope.BASE : req.scope;
      const sub: SearchRequest = { ...req, base: url.dn ?? req.base, scope, filter: url.filter ?? req.filter };
      last = await this.searchOn(h, sub, hops + 1);
      if (last.code !== Ldap.SERVER_DOWN) return last;
    }
    return last;
  }

  /** dict_ldap_get_values(). */
  async values(res: SearchResult): Promise<void> {
    const cfg = this.cfg;
    const attrs = cfg.attrs;
    if (++this.recursion === 1) this.expansion = 0;
    const depth = this.recursion;
    const where = `${VALUES}[${depth}]`;
    if (msg.verbose) msg.info(`${where}: Search found ${res.entries.length} match(es)`);
    let isLeaf = true;
    let isTerminal = false;
    let entries = 0;
    let seen = 0;
    for (const entry of res.entries) {
      // A result of thousands of entries must not hold the event loop for the other lookups.
      if (++seen % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
      if (!this.error && cfg.sizeLimit && ++entries > cfg.sizeLimit) {
        msg.warn(`${where}: ${cfg.name}: Query size limit (${cfg.sizeLimit}) exceeded`);
        this.error = true;
      }
      if (cfg.numTerminal > 0) {
        for (let i = 0; i < cfg.numTerminal; i++) {
          const vals = valuesOf(entry, attrs[i]);
          if (!vals) {
            this.errno = Ldap.DECODING_ERROR;
            continue;
          }
          isTerminal = vals.length > 0;
          if (isTerminal) break;
        }
      }
      if (!isTerminal && cfg.numLeaf > 0) {
        for (let i = cfg.numAttributes; i < attrs.length; i++) {
          const vals = valuesOf(entry, attrs[i]);
          if (!vals) {
            this.errno = Ldap.DECODING_ERROR;
            continue;
          }
          isLeaf = vals.length === 0;
          if (!isLeaf) break;
        }
      }
      for (const attr of entry.attrs) {
        const vals = valuesOf(entry, attr.type)!;
        const count = vals.length;
        if (this.error || count === 0) continue;
        let i = 0;
        while (i < attrs.length && attrSubtype(attrs[i], attr.type) <= 0) i++;
        if (i < cfg.numAttributes || isTerminal) {
          if ((isTerminal && i >= cfg.numTerminal) || (!isLeaf && i < cfg.numTerminal + cfg.numLeaf)) {
            if (msg.verbose) msg.info(`${where}: skipping ${count} value(s) of ${isTerminal ? "non-terminal" : "leaf-only"} attribute ${attr.type}`);
            continue;
          }
          for (const v of vals) {
            const next = cfg.ctx.expand(cfg.resultFormat, cString(v), this.name, this.result);
            if (next === undefined) continue;
            this.result = next;
            if (cfg.expansionLimit > 0 && ++this.expansion > cfg.expansionLimit) {
              msg.warn(`${where}: ${cfg.name}: Expansion limit exceeded for key: '${this.name}'`);
              this.error = true;
              break;
            }
          }
          if (this.error) continue;
          if (msg.verbose) msg.info(`${where}: search returned ${count} value(s) for requested result attribute ${attr.type}`);
        } else if (depth < cfg.recursionLimit && i < attrs.length) {
          for (const raw of vals) {
            const v = cString(raw);
            let r: SearchResult;
            if (isLdapUrl(v)) {
              const url = parseLdapUrl(v);
              if (typeof url === "number") {
                msg.warn(`${where}: malformed URL ${v}: ${ldapErrText(url)}(${url})`);
                this.error = true;
                break;
              }
              const want = urlAttributes(attrs, url);
              if (!want) {
                if (msg.verbose) msg.info(`${where}: skipping URL ${v}: no pertinent attributes`);
                continue;
              }
              if (msg.verbose) msg.info(`${where}: looking up URL ${v}`);
              r = await this.search(url.dn ?? "", url.scope, url.filter, want);
            } else {
              if (msg.verbose) msg.info(`${where}: looking up DN ${v}`);
              r = await this.search(v, Scope.BASE, "objectclass=*", attrs);
            }
            if (r.code === Ldap.SUCCESS) {
              await this.values(r);
            } else if (r.code === Ldap.NO_SUCH_OBJECT) {
              msg.warn(`${where}: DN ${v} not found, skipping `);
            } else {
              msg.warn(`${where}: search error ${r.code}: ${ldapErrText(r.code)} `);
              this.error = true;
            }
            if (this.error) break;
          }
          if (msg.verbose && !this.error) msg.info(`${where}: search returned ${count} value(s) for special result attribute ${attr.type}`);
        } else if (depth >= cfg.recursionLimit && i < attrs.length) {
          msg.warn(`${where}: ${cfg.name}: Recursion limit exceeded for special attribute ${attr.type}=${cString(vals[0])}`);
          this.error = true;
        }
      }
    }
    if (msg.verbose) msg.info(`${where}: Leaving ${VALUES}`);
    this.recursion--;
  }
}

/**
 * The part of dict_ldap_lookup() after the key checks: `name` is the key
 * as searched (folded, inside the domain list). Resolves to the value, or
 * undefined for not found; throws TableError("retry") (already logged).
 */
export async function searchKey(cfg: LdapConfig, share: Share, name: string): Promise<string | undefined> {
  if (msg.verbose) {
    if (share.current) msg.info(`${LOOKUP}: Using existing connection for LDAP source ${cfg.name}`);
    else msg.info(`${LOOKUP}: No existing connection for LDAP source ${cfg.name}, reopening`);
  }
  const handle = await connectOrFail(cfg, share);
  const base = cfg.ctx.expand(cfg.searchBase, name, undefined, "", rfc2253Quote);
  if (base === undefined) {
    if (msg.verbose > 1) msg.info(`${LOOKUP}: ${cfg.name}: Empty expansion for ${cfg.searchBase}`);
    return undefined;
  }
  const query = cfg.ctx.expand(cfg.query, name, undefined, "", rfc2254Quote);
  if (query === undefined) {
    if (msg.verbose > 1) msg.info(`${LOOKUP}: ${cfg.name}: Empty expansion for ${cfg.query}`);
    return undefined;
  }
  if (msg.verbose) msg.info(`${LOOKUP}: ${cfg.name}: Searching with filter ${query}`);
  const run = new Run(cfg, share, handle, name);
  let res = await run.search(base, cfg.scope, query, cfg.attrs);
  if (res.code === Ldap.SERVER_DOWN) {
    if (msg.verbose) msg.info(`${LOOKUP}: Lost connection for LDAP source ${cfg.name}, reopening`);
    share.invalidate(run.handle);
    run.handle = await connectOrFail(cfg, share);
    res = await run.search(base, cfg.scope, query, cfg.attrs);
  }
  switch (res.code) {
    case Ldap.SUCCESS: {
      await run.values(res);
      const rc = run.errno;
      if (rc !== Ldap.SUCCESS && rc !== Ldap.DECODING_ERROR) msg.warn(`${LOOKUP}: Had some trouble with entries returned by search: ${ldapErrText(rc)}`);
      if (msg.verbose) msg.info(`${LOOKUP}: Search returned ${run.result.length > 0 ? run.result : "nothing"}`);
      break;
    }
    case Ldap.NO_SUCH_OBJECT:
      if (cfg.dynamicBase) break;
      msg.warn(`${LOOKUP}: ${cfg.name}: Search base '${base}' not found: ${res.code}: ${ldapErrText(res.code)}`);
      run.error = true;
      break;
    default:
      msg.warn(`${LOOKUP}: Search error ${res.code}: ${ldapErrText(res.code)} `);
      // The reference unbinds here. Ours keeps the shared connection for the other lookups on it
      // unless it is gone, or timed out without a byte from the server (frozen, not just slow).
      if (res.code === Ldap.SERVER_DOWN || !run.handle.usable || (res.code === Ldap.TIMEOUT && run.handle.silentFor(cfg.timeout * 1000))) share.invalidate(run.handle);
      run.error = true;
  }
  if (run.error) throw new TableError("retry", "");
  return run.result.length > 0 ? run.result : undefined;
}

/** The share's connection, or TableError after logging what the failed attempt logs. */
async function connectOrFail(cfg: LdapConfig, share: Share): Promise<LdapHandle> {
  const r = await share.acquire(cfg);
  if (r instanceof LdapHandle) return r;
  for (const [severity, text] of r.lines) {
    if (severity === "error") msg.error(text);
    else msg.warn(text);
  }
  throw new TableError(r.kind, "");
}
