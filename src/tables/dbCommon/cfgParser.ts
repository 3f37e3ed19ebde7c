/**
 * dbCommon/cfgParser.ts - where a database table's settings come from
 * (Postfix global/cfg_parser.c, util/dict.c dict_load_file_xt()), shared by
 * the mysql and sqlite drivers.
 *
 * A table name that starts with '/' or '.' is a file in main.cf format
 * (logical lines, `name = value`, later entries replace earlier ones with
 * the reference's "overriding earlier entry" warning); values are taken as
 * written, without $name expansion. Any other name is the prefix of
 * main.cf parameters (`NAME_user`, ...), whose values are $name-expanded.
 *
 * Typed getters check lengths, numbers and booleans with the reference's
 * words; where the reference exits (msg_fatal) they throw
 * TableError("config"), which makes the dict layer answer CONFIG for the
 * table and keep serving everything else. An unreadable file is
 * TableError("retry") ("open NAME: reason"), as the reference's surrogate.
 *
 * Both drivers parse alike, as in the reference (one cfg_parser for all):
 * a file modified within the last second is read again after a pause, a
 * line ends at its first NUL, a directory is a configuration error, and a
 * main.cf NAME_setting counts only when main.cf or -o gives it.
 *
 * Reads: the configuration file, or main.cf through mainConfig.ts.
 * Logs: "PATH, line N: overriding earlier entry: NAME=OLD", and with -v
 * the reference's "cfg_get_str: ..." lines.
 */
import { msg } from "../../log/msg";
import { splitNameValue } from "../../config/nameValue";
import { logicalLines } from "../../config/logicalLines";
import { readCooled, readSourceFile } from "../coolFile";
import { cString } from "../../util/ctype";
import { TableError } from "../table";
import { tableMainConfig } from "./mainConfig";


/** Where values come from: a parsed file, or main.cf with a prefix. */
interface Source {
  /** undefined when the parameter is not set. */
  lookup(name: string): string | undefined;
  /** Prefix for error messages: "PATH: " for files, "" for main.cf. */
  readonly where: string;
  /** How a parameter is called in messages. */
  label(name: string): string;
}

export class CfgParser {
  private constructor(
    /** The table name as given (file path or main.cf prefix). */
    readonly name: string,
    private readonly src: Source,
  ) {}

  /**
   * Open the settings of table NAME. Synchronous unless the file is hot
   * (modified within the last second): then after it has cooled down.
   */
  static open(name: string): CfgParser | Promise<CfgParser> {
    if (name.startsWith("/") || name.startsWith(".")) return openFile(name);
    const cfg = tableMainConfig();
    // Only what main.cf or -o sets: NAME_user and the like have no default.
    const present = (p: string) => cfg.raw(p) !== undefined;
    return new CfgParser(name, {
      lookup: (n) => (present(`${name}_${n}`) ? cfg.get(`${name}_${n}`) : undefined),
      where: "",
      label: (n) => `${name}_${n}`,
    });
  }

  /** A parser over given values (tests and tools). */
  static fromValues(name: string, values: ReadonlyMap<string, string>): CfgParser {
    return new CfgParser(name, { lookup: (n) => values.get(n), where: `${name}: `, label: (n) => n });
  }

  private fatal(text: string): never {
    throw new TableError("config", this.src.where + text);
  }

  /** True when the setting is present (even if empty). */
  isSet(name: string): boolean {
    return this.src.lookup(name) !== undefined;
  }

  /**
   * cfg_get_str(): the value, or `def` when unset; `def` null means "no
   * default" and an empty result becomes null. min/max bound the length
   * (0 = no bound), checked against the default too, as the reference does.
   */
  str(name: string, def: string | null, min = 0, max = 0): string | null {
    const found = this.src.lookup(name);
    const value = found ?? def ?? "";
    const len = value.length;
    if (min && len < min) this.fatal(`bad string length ${len} < ${min}: ${this.src.label(name)} = ${value}`);
    if (max && len > max) this.fatal(`bad string length ${len} > ${max}: ${this.src.label(name)} = ${value}`);
    const out = def === null && value === "" ? null : value;
    if (msg.verbose) msg.info(`cfg_get_str: ${this.name}: ${name} = ${out ?? "<NULL>"}`);
    return out;
  }

  /** cfg_get_int(): a decimal int (strtol rules), bounded by min/max when non-zero. */
  int(name: string, def: number, min = 0, max = 0): number {
    const found = this.src.lookup(name);
    let value = def;
    if (found !== undefined) {
      const parsed = parseCInt(found);
      if (parsed === undefined) this.fatal(`bad numerical configuration: ${this.src.label(name)} = ${found}`);
      value = parsed;
    }
    if (min && value < min) this.fatal(`invalid ${this.src.label(name)} parameter value ${value} < ${min}`);
    if (max && value > max) this.fatal(`invalid ${this.src.label(name)} parameter value ${value} > ${max}`);
    if (msg.verbose) msg.info(`cfg_get_int: ${this.name}: ${name} = ${value}`);
    return value;
  }

  /** cfg_get_bool(): "yes"/"no" in any case; def when unset (may be -1 = "not set"). */
  bool(name: string, def: number): number {
    const found = this.src.lookup(name);
    let value = def;
    if (found !== undefined) {
      const lower = found.toLowerCase();
      if (lower === "yes") value = 1;
      else if (lower === "no") value = 0;
      else this.fatal(`bad boolean configuration: ${this.src.label(name)} = ${found}`);
    }
    if (msg.verbose) msg.info(`cfg_get_bool: ${this.name}: ${name} = ${value ? "on" : "off"}`);
    return value;
  }
}

/** strtol(s, &end, 10) accepted whole and fitting an int, else undefined. */
export function parseCInt(s: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n) || n > 2147483647 || n < -2147483648) return undefined;
  return n;
}

/** One read of a configuration file: its entries, and its mtime (seconds) when asked for. */
function loadOnce(path: string): { values: Map<string, string>; mtime: number } {
  const { data, mtime } = readSourceFile(path, "open");
  const values = new Map<string, string>();
  for (const { text, lineno } of logicalLines(data, path)) {
    const line = cString(text);
    const nv = splitNameValue(line);
    if ("error" in nv) throw new TableError("config", `${path}, line ${lineno}: ${nv.error}: "${line}"`);
    const old = values.get(nv.name);
    if (old !== undefined && old !== nv.value) msg.warn(`${path}, line ${lineno}: overriding earlier entry: ${nv.name}=${old}`);
    values.set(nv.name, nv.value);
  }
  return { values, mtime };
}

function openFile(path: string): CfgParser | Promise<CfgParser> {
  return readCooled(() => {
    const { values, mtime } = loadOnce(path);
    return { value: CfgParser.fromValues(path, values), mtime };
  }, `pausing to let ${path} cool down`);
}
