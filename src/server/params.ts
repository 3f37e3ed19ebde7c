/**
 * params.ts - typed reads of the main.cf parameters the server skeleton
 * uses, converted and checked the way Postfix's mail_conf_int/time/bool do,
 * with Postfix's fatal wording for bad values.
 *
 * Parameters (Postfix's own, with its defaults when the configuration has
 * none): max_idle (100s), max_use (100), ipc_timeout (3600s),
 * daemon_timeout (18000s), queue_directory, mail_owner, syslog_*,
 * maillog_file*, postlog_service_name, myhostname, smtputf8_enable.
 *
 * Parameters this implementation adds (see skeleton.ts for their meaning):
 *   proxymap_busy_lag       (time, default 50ms)  event-loop lag that counts as saturated
 *   proxymap_busy_cpu       (percent, default 90) CPU use of one core that counts as saturated
 *   proxymap_busy_requests  (count, default 0 = off) requests in flight that count as saturated
 *   proxymap_table_change_restart (yes/no, default no) exit like the reference when a
 *                           file table changed on disk (the dict layer re-opens it anyway)
 *   proxymap_client_limit   (count, default 100, min 1) clients one process serves at once;
 *                           at the limit it stops accepting and reports itself taken
 *
 * Reads: the MainConfig it is given. Logs: fatal on malformed values.
 */
import type { MainConfig } from "../config/mainCf";
import { msg } from "../log/msg";
import { convTime } from "../util/convTime";

/** A time parameter in seconds (Postfix: "parameter %s: bad time value or unit: %s", "invalid %s: %d (min %d)"). */
export function getTime(config: MainConfig, name: string, def: string, min = 0): number {
  const raw = config.get(name) || def;
  const t = convTime(raw, def.replace(/^\d+/, "") || "s");
  if (t === undefined) return msg.fatal(`parameter ${name}: bad time value or unit: ${raw}`);
  if (min && t < min) return msg.fatal(`invalid ${name}: ${t} (min ${min})`);
  return t;
}

/**
 * A time parameter that may carry "ms" (our own parameters), in milliseconds.
 * Plain numbers are seconds, as in Postfix.
 */
export function getMillis(config: MainConfig, name: string, def: string): number {
  const raw = config.get(name) || def;
  const ms = /^\s*(\d+)ms\s*$/.exec(raw);
  if (ms) return parseInt(ms[1], 10);
  const t = convTime(raw, "s");
  if (t === undefined) return msg.fatal(`parameter ${name}: bad time value or unit: ${raw}`);
  return t * 1000;
}

/** An integer parameter (Postfix: "bad numerical configuration: %s = %s", "invalid %s parameter value %d < %d"). */
export function getInt(config: MainConfig, name: string, def: number, min = 0): number {
  const raw = config.get(name);
  let n = def;
  if (raw !== "") {
    if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(raw) || Math.abs(parseInt(raw, 10)) > 0x7fffffff)
      msg.fatal(`bad numerical configuration: ${name} = ${raw}`);
    n = parseInt(raw, 10);
  }
  if (min && n < min) return msg.fatal(`invalid ${name} parameter value ${n} < ${min}`);
  return n;
}

/** A boolean parameter: yes/true or no/false, any case (Postfix: "bad boolean configuration: %s = %s"). */
export function getBool(config: MainConfig, name: string, def: boolean): boolean {
  const raw = config.get(name);
  if (raw === "") return def;
  const v = raw.toLowerCase();
  if (v === "yes" || v === "true") return true;
  if (v === "no" || v === "false") return false;
  return msg.fatal(`bad boolean configuration: ${name} = ${raw}`);
}

/** A string parameter with a fallback for when no Postfix defaults are known. */
export function getStr(config: MainConfig, name: string, def: string): string {
  return config.get(name) || def;
}

/**
 * Clients one process serves at once. Each may hold up to
 * proxymap_max_request_size of input and about a megabyte of unread output
 * (clientConn.ts), so this bounds a process's buffers; 100 is Postfix's
 * default_process_limit, as many clients as the C proxymap serves with its
 * default process count.
 */
export const DEFAULT_CLIENT_LIMIT = 100;

/** The settings of the server skeleton, read once at start-up. */
export interface ServerParams {
  maxIdle: number;
  maxUse: number;
  ipcTimeout: number;
  daemonTimeout: number;
  busyLagMs: number;
  busyCpuPercent: number;
  busyRequests: number;
  tableChangeRestart: boolean;
  clientLimit: number;
}

export function readServerParams(config: MainConfig): ServerParams {
  return {
    maxIdle: getTime(config, "max_idle", "100s", 1),
    maxUse: getInt(config, "max_use", 100, 1),
    ipcTimeout: getTime(config, "ipc_timeout", "3600s", 1),
    daemonTimeout: getTime(config, "daemon_timeout", "18000s", 1),
    busyLagMs: getMillis(config, "proxymap_busy_lag", "50ms"),
    busyCpuPercent: getInt(config, "proxymap_busy_cpu", 90),
    busyRequests: getInt(config, "proxymap_busy_requests", 0),
    tableChangeRestart: getBool(config, "proxymap_table_change_restart", false),
    clientLimit: getInt(config, "proxymap_client_limit", DEFAULT_CLIENT_LIMIT, 1),
  };
}
