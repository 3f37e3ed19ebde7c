/**
 * instance.ts - one open table instance, shared by every client that
 * names the same table with the same instance flags (the reference's
 * registered DICT).
 *
 * Who owns the flags: the instance's first-open word (`openFlags`) is set
 * once. The reference also keeps one mutable word per instance
 * (dict->flags): up to 3.10 every request rewrites its request bits and the
 * `open` reply shows it; from 3.11 every request replaces it with its own
 * word, and `open` replies the first-open word instead. That is `word`,
 * written only by ops.ts; replies carry each call's own flags, and a
 * composite sharing the instance looks its member up with `word`, as the
 * reference does. Drivers never keep flags.
 *
 * Statistics: every instance of a table (type:name) shares one Counters
 * (src/stats/collector.ts), undefined when statistics are off.
 *
 * Reads and logs nothing.
 */
import type { Gen } from "../../protocol/scan";
import type { Counters } from "../../stats/counters";
import { tableCounters } from "../../stats/collector";
import type { Table } from "../table";

export class Dict {
  /** The up-to-3.10 shared flags word (see above). */
  word: number;
  /** @internal async operations in flight (a retired instance closes when they end). */
  busy = 0;
  /** @internal taken out of the cache: close once idle. */
  retired = false;
  /** @internal for the cache's least-recently-used bound. */
  lastUsed = 0;
  /** @internal last change probe (ms) and its answer. */
  lastProbe = 0;
  lastChanged = false;
  /** The table's statistics (shared by its instances); undefined when they are off. */
  readonly stats: Counters | undefined;

  constructor(
    /** Type and name for diagnostics ("texthash", "/etc/postfix/x"). */
    readonly type: string,
    readonly name: string,
    /** "type:name" as log lines show it (hash: the NAME.db file). */
    readonly label: string,
    /** The reference's registered name: what "has changed" lines show. */
    readonly regName: string,
    /** Opened by the write service (O_RDWR|O_CREAT). */
    readonly writer: boolean,
    /** Which generation's rules this instance follows (the request shape that opened it). */
    readonly gen: Gen,
    /** The layered table (UTF-8, DEBUG, driver or surrogate). */
    readonly table: Table,
    /** The driver itself, for change probes and closing. */
    readonly driver: Table | undefined,
    /** dict->flags right after the open: what `open` replies from 3.11 on. */
    readonly openFlags: number,
    /** The flags of the request that opened it (a re-open after a change uses them again). */
    readonly openedWith: number,
  ) {
    this.word = openFlags;
    this.stats = tableCounters(type, name);
  }

  /** What `open` replies: up to 3.10 the shared word, from 3.11 the first-open flags. */
  get flags(): number {
    return this.gen === "classic" ? this.word : this.openFlags;
  }
}
