/**
 * Protocol constants of proxymap: request names, status codes and the
 * dictionary flag bits, with the values Postfix gives them (dict.h,
 * dict_proxy.h). Facts, not code: see ../shared/PROTOCOL.md.
 */

export const Status = {
  OK: 0,
  NOKEY: 1,
  RETRY: 2,
  BAD: 3,
  DENY: 4,
  CONFIG: 5,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

export const DictFlag = {
  DUP_WARN: 1 << 0,
  DUP_IGNORE: 1 << 1,
  TRY0NULL: 1 << 2,
  TRY1NULL: 1 << 3,
  FIXED: 1 << 4,
  PATTERN: 1 << 5,
  LOCK: 1 << 6,
  DUP_REPLACE: 1 << 7,
  SYNC_UPDATE: 1 << 8,
  DEBUG: 1 << 9,
  NO_REGSUB: 1 << 11,
  NO_PROXY: 1 << 12,
  NO_UNAUTH: 1 << 13,
  FOLD_FIX: 1 << 14,
  FOLD_MUL: 1 << 15,
  OPEN_LOCK: 1 << 16,
  BULK_UPDATE: 1 << 17,
  MULTI_WRITER: 1 << 18,
  UTF8_REQUEST: 1 << 19,
  UTF8_ACTIVE: 1 << 20,
} as const;

const F = DictFlag;
export const FOLD_ANY = F.FOLD_FIX | F.FOLD_MUL;
export const PARANOID = F.NO_REGSUB | F.NO_PROXY | F.NO_UNAUTH;
/** Bits a driver sets about itself. */
export const IMPL_MASK = F.FIXED | F.PATTERN | F.MULTI_WRITER;
/** Bits each request may change on a shared table instance. */
export const RQST_MASK =
  FOLD_ANY | F.LOCK | F.DUP_REPLACE | F.DUP_WARN | F.DUP_IGNORE | F.SYNC_UPDATE | PARANOID | F.UTF8_REQUEST;
/** Bits that select a distinct table instance (the cache key). */
export const INST_MASK = ~(IMPL_MASK | RQST_MASK);

export const Request = {
  OPEN: "open",
  LOOKUP: "lookup",
  UPDATE: "update",
  DELETE: "delete",
  SEQUENCE: "sequence",
} as const;

export const SEQ_FIRST = 0;
export const SEQ_NEXT = 1;

export const SERVICE_READ = "proxymap";
export const SERVICE_WRITE = "proxywrite";
