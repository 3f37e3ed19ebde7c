/**
 * The settings the proxymap service reads from main.cf, parsed once at
 * start-up: Postfix's own (daemon_timeout, mail_version) and ours (all
 * prefixed proxymap_; see README "Settings").
 */
import { mailVersion, type MainConfig } from "../config/mainCf";
import { convTime } from "../util/convTime";
import { msg } from "../log/msg";
import type { Installed } from "../protocol/scan";
import { DEFAULT_MAX_TABLES } from "../tables/dict/cache";

export interface ServiceSettings {
  /** Greet new clients with protocol=proxymap_protocol (Postfix 3.6+). */
  greeting: boolean;
  /**
   * The installed Postfix's protocol generation: "instance" (3.11+) reads
   * every request in the 3.11 shape and answers in it, malformed ones
   * included; "classic" (3.10 and older) likewise in the older shape;
   * "either" (no version known) reads both and answers in the request's
   * own (scan.ts).
   */
  installedGen: Installed;
  /** Bytes one request may take before its connection is closed. */
  maxRequestSize: number;
  /** How long one request may wait on its table (daemon_timeout). */
  requestTimeoutMs: number;
  /** Open table instances kept before the least recently used is closed. */
  maxTables: number;
}

const DEFAULT_MAX_REQUEST = 1 << 20;
const DEFAULT_DAEMON_TIMEOUT_S = 18000;

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

export function serviceSettings(config: MainConfig, _writer: boolean): ServiceSettings {
  // The installed Postfix's version, not main.cf's mail_version: it decides
  // what its clients speak.
  const [major, minor] = mailVersion(config);
  const version: [number, number] = [major, minor];
  return {
    greeting: greetingSetting(config.get("proxymap_protocol_greeting"), version),
    installedGen: version[0] === 0 ? "either" : atLeast(version, 3, 11) ? "instance" : "classic",
    maxRequestSize: positiveInt(config, "proxymap_max_request_size", DEFAULT_MAX_REQUEST),
    maxTables: positiveInt(config, "proxymap_max_tables", DEFAULT_MAX_TABLES),
    requestTimeoutMs:
      1000 * (convTime(config.get("daemon_timeout"), "s") ?? DEFAULT_DAEMON_TIMEOUT_S),
  };
}

function greetingSetting(value: string, version: [number, number]): boolean {
  switch (value.trim().toLowerCase()) {
    case "yes":
      return true;
    case "no":
      return false;
    case "":
    case "auto":
      // Unknown version (no Postfix installed): greet, as every supported
      // Postfix since 3.6 expects.
      return version[0] === 0 || atLeast(version, 3, 6);
    default:
      msg.warn(`proxymap_protocol_greeting: unknown value "${value}"; using auto`);
      return greetingSetting("auto", version);
  }
}

function positiveInt(config: MainConfig, name: string, fallback: number): number {
  const text = config.get(name).trim();
  if (text === "") return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    msg.warn(`${name}: bad value "${text}"; using ${fallback}`);
    return fallback;
  }
  return n;
}
