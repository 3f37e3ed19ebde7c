/**
 * dbCommon/mainConfig.ts - the main.cf view that table drivers share:
 * sqlite, mysql and pgsql tables named without a leading '/' or '.' take their
 * settings from main.cf as NAME_dbpath, NAME_query, ... (Postfix
 * cfg_parser.c), and lmdb reads lmdb_map_size.
 *
 * The table interface (table.ts) carries no configuration, so the service
 * hands its MainConfig here once at start-up (setTableMainConfig), for all
 * drivers at once. Until it does, the first user loads $MAIL_CONFIG/main.cf
 * (default /etc/postfix) itself, without -o overrides, as a Postfix program
 * started without the daemon would. It also tells which Postfix generation
 * is installed (installedGeneration()), for drivers whose settings changed
 * between generations.
 *
 * Reads: main.cf (through src/config/mainCf.ts). Logs what loading logs.
 */
import { loadMainConfig, parseMailVersion, type MainConfig } from "../../config/mainCf";
import type { Generation } from "../../config/declared";

/**
 * The MainConfig methods drivers use. `has` and `installedVersion` are
 * optional because tests hand in small stand-ins; without them, presence
 * falls back to raw() and the version to the built-in defaults' (3.7).
 */
export type MainConfigView = Pick<MainConfig, "get" | "raw"> & Partial<Pick<MainConfig, "has" | "installedVersion">>;

/** The version the built-in defaults describe (src/config/defaults37.ts). */
const BUILTIN_VERSION = "3.7.11";

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
 * The installed Postfix's [major, minor, patch] (its defaults'
 * mail_version, whatever main.cf says): drivers whose table format changed
 * between generations (memcache's key_digest, pgsql's encoding, dbname and
 * URI hosts) read it as that generation does. Unknown: the built-in
 * defaults' version.
 */
export function installedGeneration(): Generation {
  const v = parseMailVersion(tableMainConfig().installedVersion || BUILTIN_VERSION);
  return v[0] === 0 ? parseMailVersion(BUILTIN_VERSION) : v;
}
