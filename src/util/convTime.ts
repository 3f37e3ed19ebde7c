/**
 * convTime.ts - Postfix's conv_time() (global/conv_time.c): a time value
 * such as "100s", "5m", "18000" or "1h", digits then an optional unit
 * letter (s, m, h, d, w); a bare number is in the parameter's default
 * unit. Every time-valued setting is read through it (max_idle,
 * ipc_timeout, daemon_timeout, ...).
 *
 * Pure; reads and logs nothing.
 */

/** Seconds, or undefined for a malformed value or one out of int range (the caller words the error). */
export function convTime(value: string, defUnit: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(value);
  if (!m) return undefined;
  const n = parseInt(m[1], 10);
  if (n < 0 || n > 0x7fffffff) return undefined;
  const unit = value.slice(m[0].length, m[0].length + 1) || defUnit;
  const scale: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  const k = scale[unit];
  if (k === undefined) return undefined;
  if (k > 1 && n >= Math.floor(0x7fffffff / k)) return undefined;
  return n * k;
}

