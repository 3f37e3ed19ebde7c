/**
 * libldap.ts - the reference's own LDAP client library as an oracle for
 * unit tests: Debian's libldap-2.5 (what postfix-ldap links) called through
 * bun:ffi, for the pieces ours reproduces by hand:
 *
 *  - ldap_err2string(code)
 *  - ldap_is_ldap_url(s), ldap_url_parse(s) / ldap_url_parse_ext(s, flags)
 *    (the LDAPURLDesc fields, or the error code)
 *  - ldap_pvt_put_filter(ber, s) (the filter's BER bytes, or failure)
 *
 * Strings are byte strings (latin1), passed NUL-terminated. A missing
 * library FAILS with the install command (apt-get install libldap-2.5-0).
 */
import { dlopen, FFIType, ptr, read, CString, type Pointer } from "bun:ffi";
import { existsSync } from "node:fs";

const LIBLDAP = "/lib/x86_64-linux-gnu/libldap-2.5.so.0";
const LIBLBER = "/lib/x86_64-linux-gnu/liblber-2.5.so.0";

function load() {
  for (const f of [LIBLDAP, LIBLBER]) if (!existsSync(f)) throw new Error(`${f} is missing: apt-get install libldap-2.5-0`);
  const ldap = dlopen(LIBLDAP, {
    ldap_err2string: { args: [FFIType.i32], returns: FFIType.ptr },
    ldap_is_ldap_url: { args: [FFIType.ptr], returns: FFIType.i32 },
    ldap_url_parse_ext: { args: [FFIType.ptr, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    ldap_free_urldesc: { args: [FFIType.ptr], returns: FFIType.void },
    ldap_pvt_put_filter: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  });
  const lber = dlopen(LIBLBER, {
    ber_alloc_t: { args: [FFIType.i32], returns: FFIType.ptr },
    ber_flatten: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    ber_bvfree: { args: [FFIType.ptr], returns: FFIType.void },
    ber_free: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.void },
  });
  return { ldap: ldap.symbols, lber: lber.symbols };
}

let lib: ReturnType<typeof load> | undefined;
const L = () => (lib ??= load());

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, "latin1"), Buffer.from([0])]);
}

function readCString(p: number | bigint | Pointer | null): string | null {
  if (!p) return null;
  // CString decodes UTF-8; read the bytes instead.
  const bytes: number[] = [];
  for (let i = 0; ; i++) {
    const b = read.u8(p as Pointer, i);
    if (b === 0) break;
    bytes.push(b);
  }
  return Buffer.from(bytes).toString("latin1");
}

function readArgv(p: number | Pointer | null): string[] | null {
  if (!p) return null;
  const out: string[] = [];
  for (let i = 0; ; i++) {
    const e = read.ptr(p as Pointer, i * 8);
    if (!e) break;
    out.push(readCString(e)!);
  }
  return out;
}

export function libErr2string(code: number): string {
  return new CString(L().ldap.ldap_err2string(code) as Pointer).toString();
}

export function libIsLdapUrl(s: string): boolean {
  return L().ldap.ldap_is_ldap_url(ptr(cstr(s))) !== 0;
}

export interface LibUrl {
  scheme: string | null;
  host: string | null;
  port: number;
  dn: string | null;
  attrs: string[] | null;
  scope: number;
  filter: string | null;
  exts: string[] | null;
}

/** ldap_url_parse_ext(s, flags): the parts, or the error code. Flags default to ldap_url_parse()'s. */
export function libUrlParse(s: string, flags = 0x01 | 0x02 | 0x08): LibUrl | number {
  const out = new BigUint64Array(1);
  const rc = L().ldap.ldap_url_parse_ext(ptr(cstr(s)), ptr(out), flags);
  if (rc !== 0) return rc;
  const d = Number(out[0]) as unknown as Pointer;
  const u: LibUrl = {
    scheme: readCString(read.ptr(d, 8)),
    host: readCString(read.ptr(d, 16)),
    port: read.i32(d, 24),
    dn: readCString(read.ptr(d, 32)),
    attrs: readArgv(read.ptr(d, 40)),
    scope: read.i32(d, 48),
    filter: readCString(read.ptr(d, 56)),
    exts: readArgv(read.ptr(d, 64)),
  };
  L().ldap.ldap_free_urldesc(d);
  return u;
}

/** ldap_pvt_put_filter() into a fresh BerElement: the bytes, or undefined when libldap refuses the filter. */
export function libPutFilter(s: string): Buffer | undefined {
  const { ldap, lber } = L();
  const ber = lber.ber_alloc_t(1 /* LBER_USE_DER */) as Pointer;
  try {
    if (ldap.ldap_pvt_put_filter(ber, ptr(cstr(s))) !== 0) return undefined;
    const bvp = new BigUint64Array(1);
    if (lber.ber_flatten(ber, ptr(bvp)) !== 0) throw new Error("ber_flatten failed");
    const bv = Number(bvp[0]) as unknown as Pointer;
    const len = Number(read.u64(bv, 0));
    const val = read.ptr(bv, 8) as Pointer;
    const bytes = Buffer.alloc(len);
    for (let i = 0; i < len; i++) bytes[i] = read.u8(val, i);
    lber.ber_bvfree(bv);
    return bytes;
  } finally {
    lber.ber_free(ber, 1);
  }
}
