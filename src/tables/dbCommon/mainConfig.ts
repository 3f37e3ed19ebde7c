/**
 * dbCommon/mainConfig.ts - the main.cf view that table drivers share:
 * sqlite and mysql tables named without a leading '/' or '.' take their
 * settings from main.cf as NAME_dbpath, NAME_query, ... (Postfix
 * cfg_parser.c), and lmdb reads lmdb_map_size.
 *
 * The table interface (table.ts) carries no configuration, so the service
 * hands its MainConfig here once at start-up (setTableMainConfig), for all
 * drivers at once. Until it does, the first user loads
 * $MAIL_CONFIG/main.cf (default /etc/postfix) itself, without -o
 * overrides, as a Postfix program started without the daemon would.
 *
 * Reads: main.cf (through src/config/mainCf.ts). Logs what loading logs.
 */
import { loadMainConfig, parseMailVersion, type MainConfig } from "../../config/mainCf";

/**
 * The MainConfig methods drivers use. `has` is optional because tests
 * hand in small stand-ins; without it, presence falls back to raw().
 */
export type MainConfigView = Pick<MainConfig, "get" | "raw"> & Partial<Pick<MainConfig, "has" | "installedVersion">>;

let config: MainConfigView | undefined;

/** The service's configuration (main.cf, -o overrides, defaults); undefined = reload lazily. */
export function setTableMainConfig(cfg: MainConfigView | undefined): void {
  config = cfg;
}

export function tableMainConfig(): MainConfigView {
  config ??= loadMainConfig({ configDir: process.env.MAIL_CONFIG || "/etc/postfix", overrides: [], settleWait: false });
  return config;
}

/**
 * [major, minor, patch] of the installed Postfix (its defaults'
 * mail_version, whatever main.cf says), which decides what a table reads.
 */
export function installedGeneration(): [number, number, number] {
  const cfg = tableMainConfig();
  return parseMailVersion(cfg.installedVersion ?? cfg.get("mail_version"));
}
