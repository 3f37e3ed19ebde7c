/**
 * environ.ts - the "environ" table type: lookups read this process's
 * environment (Postfix util/dict_env.c); the name is only a label. With
 * FOLD_FIX the key is lower-cased first. update sets a variable, for the
 * rest of the process's life (the reference has it on every service;
 * proxymap itself refuses update requests on the read service).
 *
 * Which environment: under master(8), the one master passes on
 * (import_environment, cleaned by master, plus GENERATION and the like),
 * the same for our process as for the C proxymap. Every Postfix program
 * also exports MAIL_LOGTAG = $syslog_name once it has read its
 * configuration (mail_params_init()); the first environ table opened does
 * the same here, so a lookup of MAIL_LOGTAG answers alike (also with
 * -o syslog_name=...). Values are returned as the bytes of their UTF-8
 * text.
 *
 * Deliberate difference: an update the C library refuses (a name that is
 * empty or holds '=') ends the reference's process (msg_fatal "setenv:
 * Invalid argument"); here it answers CONFIG with that text as a warning.
 *
 * Reads: the process environment. Logs: the setenv failure above.
 */
import { DictFlag } from "../protocol/constants";
import { TableError, type OpenArgs, type Table, type TableType } from "./table";
import { lowercaseAscii } from "./utf8";
import { tableMainConfig } from "./dbCommon/mainConfig";

const TYPE = "environ";

/** A byte-string name as the JavaScript string process.env is keyed by. */
function envName(key: string): string {
  return Buffer.from(key, "latin1").toString("utf8");
}

let logtagExported = false;

/** What mail_params_init() does to the environment: MAIL_LOGTAG = $syslog_name. */
function exportLogtag(): void {
  if (logtagExported) return;
  logtagExported = true;
  try {
    const tag = tableMainConfig().get("syslog_name");
    if (tag) process.env.MAIL_LOGTAG = Buffer.from(tag, "latin1").toString("utf8");
  } catch {
    // No readable configuration: leave the environment as inherited.
  }
}

function open(args: OpenArgs): Table {
  exportLogtag();
  return {
    flags: args.flags | DictFlag.FIXED,
    lookup(key: string, flags: number): string | undefined {
      const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
      const v = process.env[envName(name)];
      return v === undefined ? undefined : Buffer.from(v, "utf8").toString("latin1");
    },
    update(key: string, value: string, flags: number): boolean {
      const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
      if (name === "" || name.includes("=")) throw new TableError("config", "setenv: Invalid argument");
      process.env[envName(name)] = Buffer.from(value, "latin1").toString("utf8");
      return true;
    },
  };
}

export const environ: TableType = { type: TYPE, open };
