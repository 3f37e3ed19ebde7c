/**
 * used.ts - which proxy:TYPE:NAME tables the configuration makes Postfix
 * programs ask for, so that `proxymap --check` can name those that
 * neither proxy_read_maps nor proxy_write_maps approves (a client would
 * get "request for unapproved table" at its first lookup).
 *
 * Scanned: every main.cf parameter (set in main.cf, or at its default,
 * such as local_recipient_maps = proxy:unix:passwd.byname $alias_maps),
 * expanded as the daemons expand it, and every `-o name=value` of every
 * master.cf service; except proxy_read_maps and proxy_write_maps
 * themselves. A value is split as approval splits it (approval.ts, the
 * 3.7 rules: {} groups, unionmap:{} and pipemap:{} members): the words
 * that start with proxy: are uses. The four parameters that Postfix opens
 * read-write (address_verify_map, postscreen_cache_map and the two
 * *_sasl_auth_cache_name) need proxy_write_maps, every other one
 * proxy_read_maps.
 *
 * Reads the configuration it is given. Logs nothing of its own (approval
 * syntax warnings may come through msg).
 */
import type { MainConfig } from "../config/mainCf";
import { currentLogSinks, setLogSinks } from "../log/msg";
import { approvedTables } from "../service/approval";
import type { MasterEntry } from "./masterCf";
import { splitNameValue } from "../server/options";

/** Parameters whose tables Postfix opens read-write, through proxywrite (proxy_write_maps' default). */
export const WRITE_PARAMETERS = new Set(["smtp_sasl_auth_cache_name", "lmtp_sasl_auth_cache_name", "address_verify_map", "postscreen_cache_map"]);
const APPROVAL_LISTS = new Set(["proxy_read_maps", "proxy_write_maps"]);

export interface Use {
  /** TYPE:NAME (without proxy:). */
  table: string;
  /** Whether it needs proxy_write_maps (else proxy_read_maps). */
  writer: boolean;
  /** Where: "relocated_maps" or "master.cf submission: smtpd_recipient_restrictions". */
  where: string;
}

/** The proxy: tables in one (expanded) parameter value. */
function tablesIn(value: string): Set<string> {
  if (!value.includes("proxy:")) return new Set();
  return approvedTables(value, { writer: false, generation: [3, 7, 0] });
}

/**
 * The uses. Parameters whose value cannot be expanded (raw ones such as
 * smtpd_expansion_filter, which Postfix never expands) are skipped
 * quietly (no log lines while scanning).
 */
export function usedTables(config: MainConfig, master: readonly MasterEntry[]): Use[] {
  const restore = currentLogSinks();
  setLogSinks([]);
  try {
    return scan(config, master);
  } finally {
    setLogSinks(restore);
  }
}

function scan(config: MainConfig, master: readonly MasterEntry[]): Use[] {
  const out: Use[] = [];
  const add = (name: string, value: string, where: string) => {
    if (APPROVAL_LISTS.has(name)) return;
    for (const table of tablesIn(value)) out.push({ table, writer: WRITE_PARAMETERS.has(name), where });
  };
  for (const name of config.names().sort()) {
    const raw = config.raw(name);
    if (raw !== undefined && !raw.includes("$") && !raw.includes("proxy:")) continue;
    let value: string;
    try {
      value = config.get(name);
    } catch {
      continue; // a value that does not expand is main.cf's problem, reported by postconf
    }
    add(name, value, name);
  }
  for (const e of master) {
    for (let i = 0; i < e.args.length; i++) {
      const a = e.args[i];
      const opt = a === "-o" ? e.args[++i] : a.startsWith("-o") ? a.slice(2) : undefined;
      if (opt === undefined) continue;
      const nv = splitNameValue(opt);
      if (typeof nv === "string") continue;
      let value: string;
      try {
        value = config.expand(nv[1]);
      } catch {
        continue;
      }
      add(nv[0], value, `master.cf ${e.service}: ${nv[0]}`);
    }
  }
  return out;
}
