/**
 * memcache/driver.ts - the "memcache" table type: a memcached server used as a
 * cache in front of an optional persistent backup table, as
 * memcache_table(5) describes it (Postfix global/dict_memcache.c). The
 * table name is a configuration file (or a main.cf prefix); its settings
 * are in memcache/config.ts.
 *
 * Operations, as the reference performs them:
 *  - lookup: memcached `get`; on a miss (or a memcached failure) the
 *    backup is asked with the key as received (not the memcache key), and
 *    a value found there is written back to memcached (`set` with the
 *    table's flags and ttl) before the reply. Misses are not cached. With
 *    no backup, a memcached failure is RETRY.
 *  - update (proxywrite): memcached `set`, then the backup's update; the
 *    reply follows the backup when there is one. A value over
 *    data_size_limit goes only to the backup.
 *  - delete (proxywrite): memcached `delete`, then the backup's; again the
 *    reply follows the backup.
 *  - sequence: only through the backup; without one, a warning and "not
 *    found".
 *  - keys that are empty, outside `domain`, expand to nothing, or hold
 *    white space are skipped (memcache/key.ts).
 * The backup is opened through the OpenContext with the flags of the
 * request that opened this table (an instance of its own), and every
 * operation on it uses the backup's own flags word, as the reference's
 * nested dict does: proxywrite's DUP_REPLACE reaches the memcache layer
 * only (so the backup's duplicate handling is the first request's). Ours adds SYNC_UPDATE to the backup's updates and
 * deletes: the reference's nested btree/hash backup keeps its writes in
 * its process's cache until it exits (lost if it dies), ours is on disk
 * before the reply.
 *
 * Ours: operations of one table on one memcache key are done in order
 * (an update waits for a lookup's write-back of the same key and the
 * reverse), as the reference's one-request-at-a-time process does them;
 * other keys and other tables go on in parallel. Connections to a server
 * are pooled and shared by every table naming it (memcache/client.ts).
 *
 * Refused at open: NO_UNAUTH (security-sensitive data) and, from 3.11, a
 * key_digest the runtime lacks (surrogates, RETRY); a bad setting or
 * server name (the reference exits): CONFIG for this table.
 *
 * Logs: the reference's warnings (memcache/ops.ts, memcache/key.ts), the
 * backup's own, "database memcache:NAME: first/next support requires
 * backup database", and with -v its "dict_memcache_*" lines.
 */
import { msg } from "../../log/msg";
import { DictFlag, Status } from "../../protocol/constants";
import { TableError, type OpenArgs, type OpenContext, type OpenedTable, type OpResult, type Table } from "../table";
import { CfgParser } from "../dbCommon/cfgParser";
import { installedGeneration } from "../dbCommon/mainConfig";
import { McClient } from "./client";
import { readMcConfig, TYPE, type McConfig } from "./config";
import { KeyMaker, type KeyVerdict } from "./key";
import { McOps } from "./ops";

/** The error of a backup's answer, or undefined when it answered (found or not). */
function backupError(r: OpResult): "retry" | "config" | undefined {
  if (r.status === Status.OK || r.status === Status.NOKEY) return undefined;
  return r.status === Status.CONFIG ? "config" : "retry";
}

/** Throw the table error for an error already logged (an empty message logs nothing). */
function fail(kind: "retry" | "config"): never {
  throw new TableError(kind, "");
}

/** Run operations on one key one after another; different keys run freely. */
class KeyOrder {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, op: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key);
    const p = before === undefined ? op() : before.then(op, op);
    const tail = p.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return p;
  }
}

class MemcacheTable implements Table {
  readonly flags: number;
  update?: (key: string, value: string, flags: number) => Promise<boolean>;
  delete?: (key: string, flags: number) => Promise<boolean>;
  private readonly keys: KeyMaker;
  private readonly order = new KeyOrder();

  constructor(
    private readonly cfg: McConfig,
    private readonly client: McClient,
    private readonly mc: McOps,
    /** Opened with this table's open flags; its operations use its own flags word, as the reference's nested calls. */
    private readonly backup: OpenedTable | undefined,
    args: OpenArgs,
  ) {
    // Always FIXED: the reference's db_common_dict_partial() is compiled out.
    this.flags = args.flags | DictFlag.FIXED | DictFlag.MULTI_WRITER;
    this.keys = new KeyMaker(cfg);
    if (args.write) {
      this.update = (key, value, flags) => this.put(key, value, flags);
      this.delete = (key, flags) => this.remove(key, flags);
    }
  }

  lookup(name: string, flags: number): Promise<string | undefined> {
    // The hot path: no extra turn when the key needs no domain-table lookup.
    const v = this.keys.make(name, flags, "lookup");
    return v instanceof Promise ? v.then((x) => this.lookupKey(name, x)) : this.lookupKey(name, v);
  }

  private async lookupKey(name: string, v: KeyVerdict): Promise<string | undefined> {
    if ("skip" in v) return undefined;
    if ("error" in v) fail(v.error);
    const key = v.key;
    const got = await this.mc.get(key);
    if (got.result !== undefined || this.backup === undefined) {
      this.verbose("lookup", `key "${name}"(${key}) => ${got.result ?? (got.failed ? "(memcache error)" : "(not found)")}`);
      if (got.failed) fail("retry");
      return got.result;
    }
    const backup = this.backup;
    return this.order.run(key, async () => {
      const b = await backup.lookup(name);
      const error = backupError(b);
      const value = b.status === Status.OK ? b.value : undefined;
      if (value !== undefined) await this.mc.set(key, value);
      this.verbose("lookup", `key "${name}"(${key}) => ${value ?? (got.failed ? "(memcache error)" : error ? "(backup error)" : "(not found)")}`);
      if (error) fail(error);
      return value;
    });
  }

  private async put(name: string, value: string, flags: number): Promise<boolean> {
    const v = await this.keys.make(name, flags, "update");
    if ("skip" in v) return false;
    if ("error" in v) fail(v.error);
    const key = v.key;
    return this.order.run(key, async () => {
      const set = await this.mc.set(key, value);
      let stored = set.result;
      let error: "retry" | "config" | undefined = set.failed ? "retry" : undefined;
      if (this.backup !== undefined) {
        const b = await this.backup.update(name, value, this.backup.flags | DictFlag.SYNC_UPDATE);
        stored = b.status === Status.OK;
        error = backupError(b);
      }
      this.verbose("update", `update key "${name}"(${key}) => "${value}" ${set.failed ? "(memcache error)" : error ? "(backup error)" : "(no error)"}`);
      if (error) fail(error);
      return stored;
    });
  }

  private async remove(name: string, flags: number): Promise<boolean> {
    const v = await this.keys.make(name, flags, "delete");
    if ("skip" in v) return false;
    if ("error" in v) fail(v.error);
    const key = v.key;
    return this.order.run(key, async () => {
      const del = await this.mc.del(key);
      let deleted = del.result;
      let error: "retry" | "config" | undefined = del.failed ? "retry" : undefined;
      if (this.backup !== undefined) {
        const b = await this.backup.delete(name, this.backup.flags | DictFlag.SYNC_UPDATE);
        deleted = b.status === Status.OK;
        error = backupError(b);
      }
      this.verbose("delete", `delete key "${name}"(${key}) => ${del.failed ? "(memcache error)" : error ? "(backup error)" : "(no error)"}`);
      if (error) fail(error);
      return deleted;
    });
  }

  async sequence(fn: 0 | 1): Promise<[string, string] | undefined> {
    if (this.backup === undefined) {
      msg.warn(`database ${TYPE}:${this.cfg.name}: first/next support requires backup database`);
      return undefined;
    }
    const b = await this.backup.sequence(fn);
    const error = backupError(b);
    const found = b.status === Status.OK;
    this.verbose("sequence", `key "${found ? b.key : "(not found)"}" => ${found ? b.value : error ? "(backup error)" : "(not found)"}`);
    if (error) fail(error);
    return found ? [b.key, b.value] : undefined;
  }

  /** The reference's -v line of an operation. */
  private verbose(op: string, text: string): void {
    if (msg.verbose) msg.info(`dict_memcache_${op}: ${this.cfg.name}: ${text}`);
  }

  close(): void {
    this.client.release();
    this.backup?.release();
    this.cfg.domain?.close();
  }
}

export async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const { name, flags } = args;
  const parser = await CfgParser.open(name);
  const gen = installedGeneration();
  let client: McClient | undefined;
  let backup: OpenedTable | Promise<OpenedTable> | undefined;
  const undo = () => {
    client?.release();
    if (backup !== undefined) void Promise.resolve(backup).then((b) => b.release());
  };
  let cfg: McConfig;
  try {
    cfg = readMcConfig(parser, gen, ctx, {
      memcache: (server) => {
        client = McClient.acquire(server);
      },
      // An instance of this table's own, as the reference's dict_open() of
      // it (no registration); O_RDWR on the write service.
      backup: (table) => {
        backup = ctx.openTable(table, flags, { write: args.write, private: true });
      },
    });
  } catch (err) {
    undo();
    throw err;
  }
  if (cfg.keyDigest && cfg.keyDigest.digest === undefined) {
    undo();
    cfg.domain?.close();
    throw new TableError("retry", `open ${name}: key digest ${cfg.keyDigest.name} is not available`);
  }
  const mc = client!;
  return new MemcacheTable(cfg, mc, new McOps(cfg, mc, gen), await backup, args);
}

/** dict_memcache_open() does not wrap itself in DICT_DEBUG (its backup does): debugLogged false. */
