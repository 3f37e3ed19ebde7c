/**
 * memcache/key.ts - which keys a memcache table sends to memcached, and as
 * what (Postfix dict_memcache.c, dict_memcache_valid_key() and
 * dict_memcache_prepare_key()). In order:
 *
 *  1. an empty key is skipped ("empty lookup key");
 *  2. with a `domain` list, a key whose domain is not listed is skipped
 *     ("domain mismatch"); a failed domain-table lookup is an error;
 *  3. the key is folded to lower case when the request asks for FOLD_FIX,
 *     then expanded through key_format (unless that is "%s"); a key that
 *     lacks what the format needs is skipped ("empty lookup key
 *     expansion");
 *  4. Postfix 3.11 and later: with key_digest, the memcache key is the
 *     lower-case hex digest of that expansion;
 *  5. an empty result is skipped as in 3; a result with white space is
 *     skipped ("name contains space"; Postfix 3.12 also skips ASCII control
 *     characters: "name contains space or controls").
 *
 * A skipped key is logged as "NAME: skipping OP for name "KEY": WHY": for
 * updates always as a warning, for lookups and deletes only with -v (as
 * info). The backup table is always asked with the original key.
 *
 * Digests: OpenSSL's algorithm names (EVP_MD_fetch, case-insensitive, with
 * its aliases) for the algorithms this runtime's crypto has; any other name
 * makes the table fail to open, as the reference does for a name OpenSSL
 * does not know.
 */
import { createHash } from "node:crypto";
import { msg } from "../../log/msg";
import { DictFlag } from "../../protocol/constants";
import { isSpaceCode } from "../../util/ctype";
import { lowercaseAscii } from "../utf8";
import type { DomainCheck } from "../dbCommon/domain";
import type { McConfig } from "./config";

/** Hashes a key into raw digest bytes (a byte string). */
export type KeyDigest = (key: string) => string;

/** OpenSSL names and aliases -> this runtime's createHash() names. */
const DIGEST_NAMES: Readonly<Record<string, string>> = {
  md5: "md5",
  "ssl3-md5": "md5",
  sha1: "sha1",
  "sha-1": "sha1",
  "ssl3-sha1": "sha1",
  sha224: "sha224",
  "sha2-224": "sha224",
  "sha-224": "sha224",
  sha256: "sha256",
  "sha2-256": "sha256",
  "sha-256": "sha256",
  sha384: "sha384",
  "sha2-384": "sha384",
  "sha-384": "sha384",
  sha512: "sha512",
  "sha2-512": "sha512",
  "sha-512": "sha512",
  "sha512-224": "sha512-224",
  "sha2-512/224": "sha512-224",
  "sha-512/224": "sha512-224",
  "sha512-256": "sha512-256",
  "sha2-512/256": "sha512-256",
  "sha-512/256": "sha512-256",
  "sha3-224": "sha3-224",
  "sha3-256": "sha3-256",
  "sha3-384": "sha3-384",
  "sha3-512": "sha3-512",
};

/** The digest function of an OpenSSL algorithm name, or undefined when this runtime has none. */
export function resolveDigest(name: string): KeyDigest | undefined {
  const algo = DIGEST_NAMES[name.toLowerCase()];
  if (algo === undefined) return undefined;
  try {
    createHash(algo);
  } catch {
    return undefined;
  }
  return (key) => createHash(algo).update(Buffer.from(key, "latin1")).digest("latin1");
}

/** A key to send, or why not: skipped (a miss) or a domain-table error. */
export type KeyVerdict = { readonly key: string } | { readonly skip: true } | { readonly error: "retry" | "config" };

const SKIPPED: KeyVerdict = Object.freeze({ skip: true });

/** Would memcached's key rules (and this generation's) refuse the byte? */
function badKeyByte(c: number, controls: boolean): boolean {
  return isSpaceCode(c) || (controls && (c < 0x20 || c === 0x7f));
}

export type KeyOp = "lookup" | "update" | "delete";

export class KeyMaker {
  constructor(private readonly cfg: McConfig) {}

  /**
   * dict_memcache_valid_key(): the memcache key for `name`, or a verdict.
   * Synchronous unless the domain list consults a table.
   */
  make(name: string, flags: number, op: KeyOp): KeyVerdict | Promise<KeyVerdict> {
    if (name === "") return this.skip(name, op, "empty lookup key");
    const domain = this.cfg.domain;
    if (domain === undefined) return this.prepare(name, flags, op);
    const r = domain.check(name);
    return r instanceof Promise ? r.then((v) => this.afterDomain(v, name, flags, op)) : this.afterDomain(r, name, flags, op);
  }

  private afterDomain(r: DomainCheck, name: string, flags: number, op: KeyOp): KeyVerdict {
    if (r === "nomatch") return this.skip(name, op, "domain mismatch");
    if (r !== "match") return { error: r };
    return this.prepare(name, flags, op);
  }

  /** dict_memcache_prepare_key() and the white-space check. */
  private prepare(name: string, flags: number, op: KeyOp): KeyVerdict {
    const cfg = this.cfg;
    let key = flags & DictFlag.FOLD_FIX ? lowercaseAscii(name) : name;
    if (cfg.keyFormat !== "%s") {
      const expanded = cfg.ctx.expandQuery(cfg.keyFormat, key);
      if (expanded === undefined) return this.skip(name, op, "empty lookup key expansion");
      key = expanded;
    }
    const digest = cfg.keyDigest?.digest;
    if (digest !== undefined) key = Buffer.from(digest(key), "latin1").toString("hex");
    if (key.length === 0) return this.skip(name, op, "empty lookup key expansion");
    for (let i = 0; i < key.length; i++) {
      if (badKeyByte(key.charCodeAt(i), cfg.skipControls)) {
        return this.skip(name, op, cfg.skipControls ? "name contains space or controls" : "name contains space");
      }
    }
    return { key };
  }

  private skip(name: string, op: KeyOp, why: string): KeyVerdict {
    const line = `${this.cfg.name}: skipping ${op} for name "${name}": ${why}`;
    if (op === "update") msg.warn(line);
    else if (msg.verbose) msg.info(line);
    return SKIPPED;
  }
}
