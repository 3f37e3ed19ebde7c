/**
 * STUB - to be implemented (config helper). Reads main.cf, applies -o
 * overrides, and expands $name / ${name} / ${name?v} / ${name:v} the way
 * Postfix does, with the installed Postfix's defaults.
 */
export interface MainConfig {
  /** Expanded value of a parameter (main.cf, then -o, then default); "" if unknown. */
  get(name: string): string;
  /** True when the parameter is set in main.cf or by -o, or has a default. */
  has(name: string): boolean;
  /** Expand $name references in an arbitrary string with this configuration. */
  expand(value: string): string;
}

export interface LoadOptions {
  /** MAIL_CONFIG or /etc/postfix. */
  configDir: string;
  /** -o name=value, in command-line order (later wins). */
  overrides: Array<[string, string]>;
}

export function loadMainConfig(_opts: LoadOptions): MainConfig {
  throw new Error("not implemented");
}
