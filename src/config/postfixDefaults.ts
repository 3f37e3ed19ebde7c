/**
 * The installed Postfix's own parameter defaults, unexpanded, as
 * `postconf -d` prints them (one spawn, about 5 ms, at start-up; a saved copy
 * in data_directory while it is current, see defaultsCache.ts).
 * Which postconf: the one of the Postfix that runs us, since its version
 * decides the protocol generation. Looked for in main.cf's command_directory
 * (postfix-install writes it there), then beside the master(8) that started
 * this process (our parent: a build tree's libexec/master has bin/postconf,
 * ../bin from its directory), then /usr/sbin (Debian's layout, where
 * /usr/lib/postfix/sbin/master has no such neighbour).
 *
 * Without a working postconf (Postfix not installed) the built-in table of
 * Postfix 3.7 defaults (defaults37.ts) is used instead.
 *
 * Logs: a warning when postconf cannot be run and the built-in table is used.
 */
import { existsSync, readlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { msg } from "../log/msg";
import { DEFAULTS_37 } from "./defaults37";
import { defaultsKey, readDefaultsCache, writeDefaultsCache } from "./defaultsCache";

export interface PostfixDefaults {
  values: Map<string, string>;
  source: "postconf" | "builtin";
  /** Where the values came from: the postconf path, or "built-in 3.7 table". */
  origin: string;
}

/** Parse `postconf -d` output: "name = value" or "name =" lines. */
export function parsePostconfOutput(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const sep = line.indexOf(" =");
    if (sep <= 0) continue;
    const rest = line.slice(sep + 2);
    values.set(line.slice(0, sep), rest.startsWith(" ") ? rest.slice(1) : rest);
  }
  return values;
}

/**
 * The postconf programs to try, in order: command_directory's, the one
 * beside `master` (the master program that runs us, if any: DIR/master ->
 * DIR/../bin/postconf, DIR/../sbin/postconf), /usr/sbin's.
 */
export function postconfCandidates(commandDirectory: string | undefined, master?: string): string[] {
  const list: string[] = [];
  if (commandDirectory) list.push(`${commandDirectory.replace(/\/+$/, "")}/postconf`);
  if (master) {
    const top = dirname(dirname(master));
    for (const d of ["bin", "sbin"]) list.push(join(top, d, "postconf"));
  }
  list.push("/usr/sbin/postconf");
  return [...new Set(list)];
}

/** The program of our parent process when it is a Postfix master(8) (we run under it), else undefined. */
export function parentMaster(): string | undefined {
  try {
    const exe = readlinkSync(`/proc/${process.ppid}/exe`);
    return basename(exe) === "master" ? exe : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Run `postconf -d` once; fall back to the built-in table. `paths`
 * replaces the list of postconf programs to try (tests). With `dataDir`,
 * a saved copy of the output there is used while it is current
 * (defaultsCache.ts), and a fresh output is saved.
 */
export function loadPostfixDefaults(configDir: string, commandDirectory?: string, paths?: string[], dataDir?: string): PostfixDefaults {
  let failure = "postconf not found";
  for (const path of paths ?? postconfCandidates(commandDirectory, parentMaster())) {
    if (!existsSync(path)) continue;
    const key = dataDir === undefined ? undefined : defaultsKey(path, configDir);
    if (key !== undefined) {
      const saved = readDefaultsCache(dataDir!, configDir, key);
      const values = saved === undefined ? undefined : parsePostconfOutput(saved);
      if (values?.has("mail_version")) return { values, source: "postconf", origin: path };
    }
    try {
      const run = Bun.spawnSync([path, "-d"], {
        env: { ...process.env, MAIL_CONFIG: configDir },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      if (run.exitCode === 0) {
        const output = Buffer.from(run.stdout).toString("latin1");
        const values = parsePostconfOutput(output);
        if (values.has("mail_version")) {
          if (key !== undefined) writeDefaultsCache(dataDir!, configDir, key, output);
          return { values, source: "postconf", origin: path };
        }
        failure = `${path} -d printed no mail_version`;
      } else {
        failure = `${path} -d exited with status ${run.exitCode}`;
      }
    } catch (err) {
      failure = `${path}: ${(err as Error).message}`;
    }
  }
  msg.warn(`cannot read the Postfix defaults (${failure}); using built-in Postfix 3.7 defaults`);
  return builtinDefaults();
}

export function builtinDefaults(): PostfixDefaults {
  return { values: new Map(Object.entries(DEFAULTS_37)), source: "builtin", origin: "built-in 3.7 table" };
}
