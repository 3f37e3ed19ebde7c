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
 * Names are only names: process.env is a JavaScript object, so a lookup
 * reads its own properties only (constructor, toString, __proto__ are
 * inherited from Object.prototype and answer NOKEY, as in C), and a name
 * the object cannot hold as its own (__proto__: assigning it changes the
 * prototype) is kept beside it.
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

/** Updated names that process.env cannot hold as own properties (only "__proto__" is known to). */
const unheld = new Map<string, string>();

/** Forget names only this module held (tests that put the process environment back). */
export function forgetUnheldNames(): void {
  unheld.clear();
}

/** The value of an environment variable, by its JavaScript name; undefined when unset. */
function getVar(name: string): string | undefined {
  if (Object.hasOwn(process.env, name)) {
    const v = process.env[name];
    if (typeof v === "string") return v;
  }
  return unheld.get(name);
}

function setVar(name: string, value: string): void {
  if (name !== "__proto__") process.env[name] = value;
  if (Object.hasOwn(process.env, name)) unheld.delete(name);
  else unheld.set(name, value);
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
      const v = getVar(envName(name));
      return v === undefined ? undefined : Buffer.from(v, "utf8").toString("latin1");
    },
    update(key: string, value: string, flags: number): boolean {
      const name = flags & DictFlag.FOLD_FIX ? lowercaseAscii(key) : key;
      if (name === "" || name.includes("=")) throw new TableError("config", "setenv: Invalid argument");
      setVar(envName(name), Buffer.from(value, "latin1").toString("utf8"));
      return true;
    },
  };
}

export const environ: TableType = { type: TYPE, open };
