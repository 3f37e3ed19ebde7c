/**
 * ldap/errors.ts - LDAP result codes and their texts, as the reference's
 * client library (OpenLDAP 2.5 libldap, ldap.h and ldap_err2string() in
 * error.c) numbers and words them. The reference prints these numbers and
 * texts in its warnings ("Search error -5: Timed out"), so ours must use the
 * same ones: result codes from the server (0..0x4121) and the library's own
 * negative codes for what happened on the client side.
 *
 * Pure; reads and logs nothing.
 */

/** Codes the driver tests for by name. */
export const Ldap = {
  SUCCESS: 0,
  SIZELIMIT_EXCEEDED: 4,
  REFERRAL: 10,
  SASL_BIND_IN_PROGRESS: 14,
  NO_SUCH_OBJECT: 32,
  SERVER_DOWN: -1,
  LOCAL_ERROR: -2,
  ENCODING_ERROR: -3,
  DECODING_ERROR: -4,
  TIMEOUT: -5,
  AUTH_UNKNOWN: -6,
  FILTER_ERROR: -7,
  PARAM_ERROR: -9,
  CONNECT_ERROR: -11,
  NOT_SUPPORTED: -12,
  NO_RESULTS_RETURNED: -14,
  REFERRAL_LIMIT_EXCEEDED: -17,
} as const;

const TEXT = new Map<number, string>([
  [0x00, "Success"],
  [0x01, "Operations error"],
  [0x02, "Protocol error"],
  [0x03, "Time limit exceeded"],
  [0x04, "Size limit exceeded"],
  [0x05, "Compare False"],
  [0x06, "Compare True"],
  [0x07, "Authentication method not supported"],
  [0x08, "Strong(er) authentication required"],
  [0x09, "Partial results and referral received"],
  [0x0a, "Referral"],
  [0x0b, "Administrative limit exceeded"],
  [0x0c, "Critical extension is unavailable"],
  [0x0d, "Confidentiality required"],
  [0x0e, "SASL bind in progress"],
  [0x10, "No such attribute"],
  [0x11, "Undefined attribute type"],
  [0x12, "Inappropriate matching"],
  [0x13, "Constraint violation"],
  [0x14, "Type or value exists"],
  [0x15, "Invalid syntax"],
  [0x20, "No such object"],
  [0x21, "Alias problem"],
  [0x22, "Invalid DN syntax"],
  [0x23, "Entry is a leaf"],
  [0x24, "Alias dereferencing problem"],
  [0x2f, "Proxy Authorization Failure (X)"],
  [0x30, "Inappropriate authentication"],
  [0x31, "Invalid credentials"],
  [0x32, "Insufficient access"],
  [0x33, "Server is busy"],
  [0x34, "Server is unavailable"],
  [0x35, "Server is unwilling to perform"],
  [0x36, "Loop detected"],
  [0x40, "Naming violation"],
  [0x41, "Object class violation"],
  [0x42, "Operation not allowed on non-leaf"],
  [0x43, "Operation not allowed on RDN"],
  [0x44, "Already exists"],
  [0x45, "Cannot modify object class"],
  [0x46, "Results too large"],
  [0x47, "Operation affects multiple DSAs"],
  [0x4c, "Virtual List View error"],
  [0x50, "Other (e.g., implementation specific) error"],
  [0x71, "LCUP Resources Exhausted"],
  [0x72, "LCUP Security Violation"],
  [0x73, "LCUP Invalid Data"],
  [0x74, "LCUP Unsupported Scheme"],
  [0x75, "LCUP Reload Required"],
  [0x76, "Cancelled"],
  [0x77, "No Operation to Cancel"],
  [0x78, "Too Late to Cancel"],
  [0x79, "Cannot Cancel"],
  [0x7a, "Assertion Failed"],
  [0x7b, "Proxied Authorization Denied"],
  [0x1000, "Content Sync Refresh Required"],
  [0x4100, "Content Sync Refresh Required (X)"],
  [0x410e, "No Operation (X)"],
  [0x410f, "Assertion Failed (X)"],
  [0x4120, "TXN specify okay"],
  [0x4121, "TXN ID is invalid"],
  [-1, "Can't contact LDAP server"],
  [-2, "Local error"],
  [-3, "Encoding error"],
  [-4, "Decoding error"],
  [-5, "Timed out"],
  [-6, "Unknown authentication method"],
  [-7, "Bad search filter"],
  [-8, "User cancelled operation"],
  [-9, "Bad parameter to an ldap routine"],
  [-10, "Out of memory"],
  [-11, "Connect error"],
  [-12, "Not Supported"],
  [-13, "Control not found"],
  [-14, "No results returned"],
  [-15, "More results to return"],
  [-16, "Client Loop"],
  [-17, "Referral Limit Exceeded"],
  [-18, "Connecting (X)"],
]);

/** ldap_err2string(): the text of a code, with the library's fallbacks for unknown ones. */
export function ldapErrText(code: number): string {
  const t = TEXT.get(code);
  if (t !== undefined) return t;
  if (code < 0) return "Unknown API error"; // LDAP_API_ERROR
  if (code >= 0x1000 && code <= 0x3fff) return "Unknown (extension) error"; // LDAP_E_ERROR
  if (code >= 0x4000 && code <= 0xffff) return "Unknown (private extension) error"; // LDAP_X_ERROR
  return "Unknown error";
}
