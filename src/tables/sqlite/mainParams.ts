/**
 * sqlite/mainParams.ts - the main.cf view that file-database drivers need:
 * sqlite (and mysql-style) tables named without a leading '/' or '.' take
 * their settings from main.cf as NAME_dbpath, NAME_query, ... (Postfix
 * cfg_parser.c), and lmdb reads lmdb_map_size.
 *
 * The table interface (table.ts) carries no configuration, so the service
 * hands its MainConfig here once at start-up (setTableMainConfig). Until it
 * does, the first user loads MAIL_CONFIG/main.cf (default /etc/postfix)
 * itself, without -o overrides.
 *
 * Reads: main.cf (through src/config/mainCf.ts). Logs what loading logs.
 */
import { loadMainConfig, type MainConfig } from "../../config/mainCf";

let config: MainConfig | undefined;

/** The service's configuration (main.cf, -o overrides, defaults). */
export function setTableMainConfig(cfg: MainConfig): void {
  config = cfg;
}

export function tableMainConfig(): MainConfig {
  if (!config) config = loadMainConfig({ configDir: process.env.MAIL_CONFIG || "/etc/postfix", overrides: [], settleWait: false });
  return config;
}
