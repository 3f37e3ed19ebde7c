/**
 * The configuration a proxymap process sees: main.cf, then the -o
 * overrides, then the installed Postfix's defaults, with $name expansion,
 * built the way Postfix's daemon start-up builds its configuration
 * dictionary (master/multi_server.c, global/mail_conf.c, mail_params.c):
 *
 *  1. process_name (our program name) and config_directory are entered;
 *  2. CONFIG_DIR/main.cf is read (logicalLines.ts, nameValue.ts); a
 *     later entry replaces an earlier one with a warning; a main.cf that
 *     changed in the last second or two is read again after 300 ms, as
 *     Postfix does, so that a half-written file is not used;
 *  3. each -o name=value replaces the entry (later wins); service_name;
 *  4. the parameters a proxymap declares are declared in Postfix's order
 *     (declared.ts): an unset one gets its default (postfixDefaults.ts),
 *     string defaults expanded at that moment; process_id.
 *
 * get(name) expands recursively ($name of a name that is neither set nor
 * declared is ""), exactly as a value in the real daemon expands. For a name
 * that is not in the dictionary, get() falls back to the Postfix default
 * (expanded), as a Postfix program that declares it late would see it.
 *
 * Logs (reference wording): "PATH, line N: overriding earlier entry:
 * NAME=OLD", the $name syntax warnings (macExpand.ts), and fatal errors:
 * "open PATH: ...", "PATH, line N: missing '=' after attribute name: ...",
 * "dictionary mail_dict: macro processing error", "malformed compatibility
 * level syntax: ...".
 */
import { readFileSync, statSync } from "node:fs";
import { msg } from "../log/msg";
import { cString } from "../util/ctype";
import { compatLevelFromString } from "./compatLevel";
import { declaredParameters, type Generation } from "./declared";
import { errnoCode, errnoText } from "../util/errno";
import { defaultMydomain, defaultMyhostname, defaultMynetworks } from "./hostDefaults";
import { logicalLines } from "./logicalLines";
import { MAC_PARSE_ERROR, macExpand } from "./macExpand";
import { splitNameValue } from "./nameValue";
import { loadPostfixDefaults, type PostfixDefaults } from "./postfixDefaults";

export type { Generation } from "./declared";

export interface MainConfig {
  /** Expanded value of a parameter (main.cf, then -o, then default); "" if unknown. */
  get(name: string): string;
  /** True when the parameter is set in main.cf or by -o, or has a default. */
  has(name: string): boolean;
  /** Expand $name references in an arbitrary string with this configuration. */
  expand(value: string): string;
  /** The unexpanded dictionary entry (main.cf, -o, or the stored default). */
  raw(name: string): string | undefined;
  /** Every parameter name: set in main.cf or by -o, declared, or with a default (proxymap --check). */
  names(): string[];
  /** The configuration directory (MAIL_CONFIG). */
  readonly configDir: string;
  /** mail_version of the installed Postfix (its defaults), whatever main.cf says. */
  readonly installedVersion: string;
  /** Where the defaults came from: the installed postconf, or the built-in table. */
  readonly defaultsSource: "postconf" | "builtin";
}

export interface LoadOptions {
  /** MAIL_CONFIG or /etc/postfix. */
  configDir: string;
  /**
   * -o name=value, in command-line order (later wins). Postfix's -i N and
   * -m N belong here too, as ["max_idle", N] and ["max_use", N], in their
   * command-line position.
   */
  overrides: Array<[string, string]>;
  /** Our program name (process_name); default "proxymap". */
  processName?: string;
  /** The -n service name (service_name); default the process name. */
  serviceName?: string;
  /** Postfix defaults to use instead of running postconf (tests: builtinDefaults()). */
  defaults?: PostfixDefaults;
  /**
   * Use and refresh the saved `postconf -d` output in data_directory
   * (default false: only the daemon under master, whose configuration
   * directory is a lasting one, asks for it).
   */
  defaultsCache?: boolean;
  /** Wait for a just-modified main.cf to settle, as Postfix does (default true). */
  settleWait?: boolean;
}

/** data_directory's compiled-in default (before the defaults are known). */
const DEFAULT_DATA_DIRECTORY = "/var/lib/postfix";

/** A main.cf directory setting usable before expansion: literal, else the fallback. */
function literalDir(value: string | undefined, fallback: string): string {
  return value === undefined || value.includes("$") || !value.startsWith("/") ? fallback : value.trim();
}

/** The name of Postfix's configuration dictionary, as its messages call it. */
const CONFIG_DICT = "mail_dict";

/** [major, minor, patch] of a mail_version text ("3.7.11", "3.12-20260110"); [0,0,0] if none. */
export function parseMailVersion(text: string): [number, number, number] {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

/** The installed Postfix's version, which decides the protocol generation. */
export function mailVersion(cfg: MainConfig): [number, number, number] {
  return parseMailVersion(cfg.installedVersion);
}

/**
 * Parse one `-o name=value` argument the way Postfix daemons do; fatal
 * (reference wording) when it has no name or no '='.
 */
export function parseOverrideOption(arg: string): [string, string] {
  const nv = splitNameValue(arg);
  if ("error" in nv) return msg.fatal(`invalid "-o ${arg}" option value: ${nv.error}`);
  return [nv.name, nv.value];
}

/** Read main.cf into `dict` once; returns the file's mtime (seconds). */
function loadFileOnce(path: string, dict: Map<string, string>): number {
  let content: string;
  let mtime: number;
  try {
    content = readFileSync(path, "latin1");
    mtime = Math.floor(statSync(path).mtimeMs / 1000);
  } catch (err) {
    if (errnoCode(err) === "EISDIR") return msg.fatal(`read ${path}: ${errnoText(err)}`);
    return msg.fatal(`open ${path}: ${errnoText(err)}`);
  }
  for (const line of logicalLines(content, path)) {
    const text = cString(line.text);
    const nv = splitNameValue(text);
    if ("error" in nv) return msg.fatal(`${path}, line ${line.lineno}: ${nv.error}: "${text}"`);
    const old = dict.get(nv.name);
    if (old !== undefined && old !== nv.value)
      msg.warn(`${path}, line ${line.lineno}: overriding earlier entry: ${nv.name}=${old}`);
    dict.set(nv.name, nv.value);
  }
  return mtime;
}

/** Read main.cf, again while it is "hot" (modified within the last second or so). */
function loadMainCfFile(path: string, dict: Map<string, string>, settleWait: boolean): void {
  for (let before = Math.floor(Date.now() / 1000); ; ) {
    const mtime = loadFileOnce(path, dict);
    const after = Math.floor(Date.now() / 1000);
    if (!settleWait || mtime < before - 1 || mtime > after) return;
    Bun.sleepSync(300);
    before = after;
  }
}

class Configuration implements MainConfig {
  private readonly cache = new Map<string, string>();
  readonly lookup = (name: string): string | undefined => this.dict.get(name);

  constructor(
    private readonly dict: Map<string, string>,
    private readonly defaults: Map<string, string>,
    readonly configDir: string,
    readonly installedVersion: string,
    readonly defaultsSource: "postconf" | "builtin",
  ) {}

  expand(value: string): string {
    const { result, status } = macExpand(value, this.lookup, { recurse: true });
    if (status & MAC_PARSE_ERROR) msg.fatal(`dictionary ${CONFIG_DICT}: macro processing error`);
    return result;
  }

  get(name: string): string {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const raw = this.dict.get(name) ?? this.defaults.get(name);
    const value = raw === undefined ? "" : this.expand(raw);
    this.cache.set(name, value);
    return value;
  }

  has(name: string): boolean {
    return this.dict.has(name) || this.defaults.has(name);
  }

  raw(name: string): string | undefined {
    return this.dict.get(name);
  }

  names(): string[] {
    return [...new Set([...this.dict.keys(), ...this.defaults.keys()])];
  }

  /** Declare a parameter as a Postfix program does (start-up only). */
  declare(name: string, kind: "str" | "raw" | "fn"): void {
    const set = this.dict.get(name);
    if (set !== undefined) {
      this.expand(set); // Postfix evaluates it now: a syntax error is fatal at start-up
      return;
    }
    let value: string | undefined;
    if (kind === "fn") value = this.computedDefault(name);
    else value = this.defaults.get(name);
    if (value === undefined) return; // not a parameter of this Postfix version
    this.dict.set(name, kind === "raw" ? value : this.expand(value));
  }

  private computedDefault(name: string): string | undefined {
    switch (name) {
      case "myhostname": {
        const domain = this.dict.get("mydomain");
        return defaultMyhostname(domain === undefined ? undefined : this.expand(domain));
      }
      case "mydomain":
        return defaultMydomain(this.expand(this.dict.get("myhostname") ?? ""));
      case "mynetworks":
        return defaultMynetworks(
          this.expand(this.dict.get("mynetworks_style") ?? ""),
          this.expand(this.dict.get("inet_interfaces") ?? ""),
          this.expand(this.dict.get("inet_protocols") ?? ""),
        );
      default:
        return this.defaults.get(name);
    }
  }
}

export function loadMainConfig(opts: LoadOptions): MainConfig {
  const processName = opts.processName ?? "proxymap";
  const dict = new Map<string, string>();
  dict.set("process_name", processName);
  dict.set("config_directory", opts.configDir);
  loadMainCfFile(`${opts.configDir}/main.cf`, dict, opts.settleWait ?? true);
  for (const [name, value] of opts.overrides) dict.set(name, value);
  dict.set("service_name", opts.serviceName ?? processName);

  const commandDir = dict.get("command_directory");
  const loaded =
    opts.defaults ??
    loadPostfixDefaults(
      opts.configDir,
      commandDir === undefined || commandDir.includes("$") ? undefined : commandDir,
      undefined,
      opts.defaultsCache !== true ? undefined : literalDir(dict.get("data_directory"), DEFAULT_DATA_DIRECTORY),
    );
  const defaults = loaded.values;
  const installedVersion = defaults.get("mail_version") ?? "";
  const generation: Generation = parseMailVersion(installedVersion);
  const cfg = new Configuration(dict, defaults, opts.configDir, installedVersion, loaded.source);

  for (const [name, kind] of declaredParameters(generation)) {
    cfg.declare(name, kind);
    if (name === "compatibility_level")
      compatLevelFromString(cfg.expand(dict.get(name) ?? ""), (line) => msg.fatal(line));
  }
  dict.set("process_id", String(process.pid));
  return cfg;
}
