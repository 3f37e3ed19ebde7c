/**
 * memcache/config.ts - the settings of a memcache table (memcache_table(5)),
 * read as Postfix's dict_memcache_open() reads them, in its order (the
 * first bad setting is the one reported; with -v the cfg_get lines come in
 * the same order):
 *
 *   key_digest       ""  (Postfix 3.11 and later only; older ones ignore it)
 *   key_format       "%s"
 *   timeout          2     seconds, connect and each reply (0: no limit)
 *   ttl              3600  memcached expiry of what we store
 *   flags            0     memcached flags of what we store
 *   retry_pause      1     seconds between attempts (>= 1)
 *   max_try          2     attempts per operation (>= 1)
 *   line_size_limit  1024  longest reply line (>= 1)
 *   data_size_limit  10240 longest value, both ways (>= 1)
 *   memcache         "inet:localhost:11211"
 *   backup           none  any table ("proxy:" prefixes dropped)
 *   domain           ""    dbCommon/domain.ts
 *
 * key_format is a db_common query template (dbCommon/expand.ts) expanded
 * without quoting. (Whatever it uses, the table stays FIXED: the
 * reference's db_common_dict_partial() is compiled out, "breaks
 * recipient_delimiter".)
 *
 * Pure apart from what CfgParser and DomainList read; errors are the
 * reference's fatal texts as TableError("config").
 */
import { atLeast, type Generation } from "../../config/declared";
import type { OpenContext } from "../table";
import type { CfgParser } from "../dbCommon/cfgParser";
import { DomainList } from "../dbCommon/domain";
import { TemplateContext } from "../dbCommon/expand";
import { resolveDigest, type KeyDigest } from "./key";

export const TYPE = "memcache";

export interface McConfig {
  /** The table name (configuration file or main.cf prefix). */
  readonly name: string;
  readonly keyFormat: string;
  /** key_digest (3.11+) when set; `digest` undefined when this runtime has no such algorithm. */
  readonly keyDigest: { readonly name: string; readonly digest: KeyDigest | undefined } | undefined;
  readonly timeoutSec: number;
  readonly ttl: number;
  readonly flags: number;
  readonly retryPauseSec: number;
  readonly maxTry: number;
  readonly maxLine: number;
  readonly maxData: number;
  readonly memcache: string;
  readonly backup: string | null;
  readonly ctx: TemplateContext;
  readonly domain: DomainList | undefined;
  /** 3.12 skips keys with control characters too, and names them in its warning. */
  readonly skipControls: boolean;
}

/** What the table does with two settings as soon as they are read, as the reference does. */
export interface ReadHooks {
  /** auto_clnt_create(): may throw the reference's fatal text for a bad server name. */
  memcache(server: string): void;
  /** Open the backup table: after `memcache`, before the template is checked. */
  backup(name: string): void;
}

/** Read every setting, in the reference's order; `ctx` opens the domain list's tables. */
export function readMcConfig(p: CfgParser, gen: Generation, ctx: OpenContext, hooks: ReadHooks): McConfig {
  const name = p.name;
  let keyDigest: McConfig["keyDigest"];
  if (atLeast(gen, 3, 11)) {
    const d = p.str("key_digest", "")!;
    if (d !== "") keyDigest = { name: d, digest: resolveDigest(d) };
  }
  const keyFormat = p.str("key_format", "%s")!;
  const timeoutSec = p.int("timeout", 2, 0);
  const ttl = p.int("ttl", 3600, 0);
  const flags = p.int("flags", 0, 0);
  const retryPauseSec = p.int("retry_pause", 1, 1);
  const maxTry = p.int("max_try", 2, 1);
  const maxLine = p.int("line_size_limit", 1024, 1);
  const maxData = p.int("data_size_limit", 10240, 1);
  const memcache = p.str("memcache", "inet:localhost:11211")!;
  hooks.memcache(memcache);
  const backup = p.str("backup", null);
  if (backup !== null) hooks.backup(backup);
  const template = new TemplateContext(TYPE, name);
  template.parse(keyFormat, true);
  const domainValue = p.str("domain", "")!;
  const domain = domainValue ? DomainList.parse(name, domainValue, ctx) : undefined;
  return {
    name,
    keyFormat,
    keyDigest,
    timeoutSec,
    ttl,
    flags,
    retryPauseSec,
    maxTry,
    maxLine,
    maxData,
    memcache,
    backup,
    ctx: template,
    domain,
    skipControls: atLeast(gen, 3, 12),
  };
}
