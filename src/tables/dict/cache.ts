/**
 * cache.ts - the open table instances of this process, by the key the
 * reference registers them under, with opens in flight shared.
 *
 * - Keys: up to 3.10 "type:name:" + the request's instance bits
 *   (proxymap's map_type_name_flags; FOLD_FIX and the other request bits do
 *   not count); from 3.11 "type:name(OPEN_FLAGS,FLAGS)" with every bit of
 *   the instance flags (dict_make_registered_name4()); tables a composite
 *   or match list opens by name, up to 3.10, under that name alone.
 * - Bound: clients choose about 18 free bits of instance flags, so one
 *   approved table could be opened some 2^18 times. At most
 *   proxymap_max_tables instances stay open; past that, the least recently
 *   used one that no composite holds is closed (after its operations in
 *   flight; updates are already synchronous, so nothing is lost).
 * - Changes: a file table whose file changed on disk is re-opened on the
 *   next request that names it, on the read service only (probed at most
 *   once a second); changedTables() lists them for a service that prefers
 *   the reference's exit.
 *
 * Logs: "table KEY has changed -- reopening"; a warning when a change
 * probe or a close fails.
 */
import { msg } from "../../log/msg";
import type { Maybe, Table } from "../table";
import type { Dict } from "./instance";

/** Minimum time between two changed() probes of one table. */
const PROBE_INTERVAL_MS = 1000;

export const DEFAULT_MAX_TABLES = 1000;
let maxTables = DEFAULT_MAX_TABLES;
let clock = 0;

const entries = new Map<string, Dict | Promise<Dict>>();
/** Holders (composites, match lists) of registered keys: those are never evicted. */
const holds = new Map<string, number>();

/** proxymap_max_tables. */
export function setMaxTables(n: number): void {
  maxTables = Math.max(1, n);
}

export function cached(key: string): Dict | Promise<Dict> | undefined {
  const hit = entries.get(key);
  if (hit !== undefined && !(hit instanceof Promise)) hit.lastUsed = ++clock;
  return hit;
}

/** Enter a new instance (or its open in flight) under key. */
export function enter(key: string, d: Maybe<Dict>): Maybe<Dict> {
  if (d instanceof Promise) {
    const p = d.then((done) => {
      if (entries.get(key) === p) entries.set(key, done);
      done.lastUsed = ++clock;
      return done;
    });
    entries.set(key, p);
    evictBeyondBound();
    return p;
  }
  d.lastUsed = ++clock;
  entries.set(key, d);
  evictBeyondBound();
  return d;
}

export function hold(key: string): void {
  holds.set(key, (holds.get(key) ?? 0) + 1);
}

/** Drop one hold; true when it was the last. */
export function release(key: string): boolean {
  const n = (holds.get(key) ?? 0) - 1;
  if (n > 0) {
    holds.set(key, n);
    return false;
  }
  holds.delete(key);
  return true;
}

export function heldCount(key: string): number {
  return holds.get(key) ?? 0;
}

/** Take an instance out of the cache; it closes once its operations end. */
export function retire(key: string, d: Dict): void {
  if (entries.get(key) === d) entries.delete(key);
  d.retired = true;
  if (d.busy === 0) closeQuietly(d.driver);
}

function evictBeyondBound(): void {
  while (entries.size > maxTables) {
    let victim: [string, Dict] | undefined;
    for (const [key, d] of entries) {
      if (d instanceof Promise || holds.has(key)) continue;
      if (victim === undefined || d.lastUsed < victim[1].lastUsed) victim = [key, d];
    }
    if (victim === undefined) return;
    if (msg.verbose) msg.info(`closing least recently used table ${victim[1].regName}`);
    retire(victim[0], victim[1]);
  }
}

/** Probe a table's changed() (at most once per second). */
export function probeChanged(d: Dict): boolean {
  const changed = d.driver?.changed;
  if (!changed) return false;
  const now = Date.now();
  if (now - d.lastProbe < PROBE_INTERVAL_MS) return d.lastChanged;
  d.lastProbe = now;
  try {
    d.lastChanged = changed.call(d.driver) === true;
  } catch (err) {
    msg.warn(`${d.label}: change check failed: ${err instanceof Error ? err.message : String(err)}`);
    d.lastChanged = false;
  }
  return d.lastChanged;
}

/**
 * Registered names of open read-service tables whose files changed on
 * disk (and that no request has re-opened yet), for tables whose changes
 * the reference notices.
 */
export function changedTables(): string[] {
  const out: string[] = [];
  for (const d of entries.values()) {
    if (d instanceof Promise || d.writer || !d.driver?.changed || d.driver.changeUnnoticedByReference) continue;
    if (probeChanged(d)) out.push(d.regName);
  }
  return out;
}

export function closeQuietly(table: Table | undefined): void {
  if (!table?.close) return;
  const failed = (err: unknown) => msg.warn(`close failed: ${err instanceof Error ? err.message : String(err)}`);
  try {
    const r = table.close();
    if (r instanceof Promise) r.catch(failed);
  } catch (err) {
    failed(err);
  }
}

/** The open instances (statistics: their drivers' backends). */
export function* openInstances(): Generator<Dict> {
  for (const d of entries.values()) if (!(d instanceof Promise)) yield d;
}

/** Number of open instances (for statistics and tests). */
export function openCount(): number {
  return entries.size;
}

/** Close every open table and forget them (shutdown, tests). */
export async function closeAll(): Promise<void> {
  const all = [...entries];
  entries.clear();
  holds.clear();
  for (const [key, entry] of all) {
    const d = await Promise.resolve(entry).catch(() => undefined);
    if (d) retire(key, d);
  }
}
