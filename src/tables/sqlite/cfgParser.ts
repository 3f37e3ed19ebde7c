/**
 * sqlite/cfgParser.ts - the settings of a database table, as Postfix's
 * cfg_parser.c reads them: a name starting with '/' or '.' is a file of
 * "name = value" logical lines (comments, continuation lines; a later
 * entry overrides an earlier one with a warning); any other name selects
 * main.cf parameters NAME_setting.
 *
 * The reference exits on a malformed file or value; here each of those
 * texts becomes a TableError("config") so that only this table fails.
 * An unreadable file is TableError("retry") ("open FILE: reason"), which
 * the dict layer turns into a surrogate table, as the reference does.
 *
 * Reads: the configuration file, or main.cf through mainParams.ts.
 * Logs: "FILE, line N: overriding earlier entry: NAME=OLD".
 */
import { readFileSync } from "node:fs";
import { msg } from "../../log/msg";
import { splitNameValue } from "../../config/nameValue";
import { TableError } from "../table";
import { logicalLines } from "../lines";
import { errnoText } from "../errno";
import { tableMainConfig } from "./mainParams";

export class CfgParser {
  private readonly values = new Map<string, string>();
  private readonly fromFile: boolean;

  /** Throws TableError: "retry" when the file cannot be read, "config" when it is malformed. */
  constructor(readonly name: string) {
    this.fromFile = name.startsWith("/") || name.startsWith(".");
    if (!this.fromFile) return;
    let data: string;
    try {
      data = readFileSync(Buffer.from(name, "latin1")).toString("latin1");
    } catch (e) {
      throw new TableError("retry", `open ${name}: ${errnoText(e)}`);
    }
    for (const { text, lineno } of logicalLines(data, name)) {
      const nv = splitNameValue(text);
      if ("error" in nv) throw new TableError("config", `${name}, line ${lineno}: ${nv.error}: "${text}"`);
      const old = this.values.get(nv.name);
      if (old !== undefined && old !== nv.value) msg.warn(`${name}, line ${lineno}: overriding earlier entry: ${nv.name}=${old}`);
      this.values.set(nv.name, nv.value);
    }
  }

  private raw(setting: string): string | undefined {
    if (this.fromFile) return this.values.get(setting);
    const cfg = tableMainConfig();
    const p = `${this.name}_${setting}`;
    return cfg.has(p) ? cfg.get(p) : undefined;
  }

  /**
   * cfg_get_str(): the value or the default; undefined when the default is
   * null and the value is empty. min/max bound the length (0 = no bound).
   */
  getStr(setting: string, def: string | null, min = 0, max = 0): string | undefined {
    const v = this.raw(setting) ?? def ?? "";
    const where = this.fromFile ? `${this.name}: ` : "";
    const label = this.fromFile ? setting : `${this.name}_${setting}`;
    if (min && v.length < min) throw new TableError("config", `${where}bad string length ${v.length} < ${min}: ${label} = ${v}`);
    if (max && v.length > max) throw new TableError("config", `${where}bad string length ${v.length} > ${max}: ${label} = ${v}`);
    return def === null && v === "" ? undefined : v;
  }

  /** cfg_get_int(): a decimal C int, bounded by min/max (0 = no bound). */
  getInt(setting: string, def: number, min = 0, max = 0): number {
    const s = this.raw(setting);
    let n = def;
    const label = this.fromFile ? setting : `${this.name}_${setting}`;
    const where = this.fromFile ? `${this.name}: ` : "";
    if (s !== undefined) {
      // strtol(): optional leading blanks and sign, digits to the end.
      if (!/^[ \t\n\v\f\r]*[+-]?[0-9]+$/.test(s)) throw new TableError("config", `${where}bad numerical configuration: ${label} = ${s}`);
      n = Number(s.trim());
      if (n > 2147483647 || n < -2147483648) throw new TableError("config", `${where}bad numerical configuration: ${label} = ${s}`);
    }
    if (min && n < min) throw new TableError("config", `${where}invalid ${label} parameter value ${n} < ${min}`);
    if (max && n > max) throw new TableError("config", `${where}invalid ${label} parameter value ${n} > ${max}`);
    return n;
  }
}
