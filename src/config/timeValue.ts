/**
 * Postfix time values ("100s", "5m", "18000", "1h"): a number with an
 * optional unit letter (s, m, h, d, w); a bare number is in the parameter's
 * default unit. Used for max_idle, ipc_timeout, daemon_timeout and friends.
 */

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds, or undefined when the text is not a valid time value. */
export function parseTimeSeconds(text: string, defaultUnit: "s" | "m" | "h" | "d" | "w" = "s"): number | undefined {
  const m = /^\s*(\d+)\s*([smhdw]?)\s*$/i.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_SECONDS[(m[2] || defaultUnit).toLowerCase()];
}
