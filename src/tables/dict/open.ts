/**
 * open.ts - opening a table instance: what Postfix does in proxymap's
 * proxy_map_find() and in dict_open()/dict_open3().
 *
 * The steps, in the reference's order:
 * 1. the instance cache (cache.ts), under the key of the request's
 *    generation; a file table changed on disk is re-opened (read service);
 * 2. flags holding both OPEN_LOCK and LOCK: the reference panics when it
 *    must open a table for such a request. A client sends both when its
 *    table holds the open lock and it asks for the access lock too (as
 *    postscreen's cache does once proxywrite has restarted): ours opens the
 *    table with the open lock only, and the request goes on with its flags;
 * 3. an empty type or name: a surrogate (3.11+: RETRY, as dict_open()
 *    makes one; up to 3.10 the reference exits, ours answers CONFIG);
 * 4. an unknown type: a RETRY surrogate ("unsupported dictionary type"),
 *    without the UTF-8 step;
 * 5. the refusals the type declares (write service, NO_UNAUTH), then the
 *    driver's open(); a TableError("retry") makes a RETRY surrogate, a
 *    TableError("config") or any other exception a CONFIG one (the
 *    reference exits in those cases);
 * 6. OPEN_LOCK: multi-writer tables downgrade it to LOCK, others take the
 *    exclusive lock now (failure: CONFIG, the reference exits);
 * 7. the layers: DEBUG (up to 3.10, where the flag exists) around the
 *    driver, then UTF-8 in front when the request asked for it and
 *    smtputf8 is on (for types built on the in-memory "internal" table the
 *    UTF-8 layer sits inside DEBUG).
 *
 * Logs: the reason a table could not be opened (error), "table KEY has changed -- reopening", and with -v
 * "dict_open: TYPE:NAME".
 */
import { DictFlag, INST_MASK, Status } from "../../protocol/constants";
import type { Gen } from "../../protocol/scan";
import { msg } from "../../log/msg";
import { TableError, type Maybe, type OpenContext, type Table, type TableType } from "../table";
import { findTableType } from "../registry";
import { prepared } from "../prepare";
import { dictFlagsStr, SURROGATE } from "../flagsStr";
import { needUtf8Activation } from "../utf8";
import { cached, closeQuietly, enter, probeChanged, retire } from "./cache";
import { debugLayer } from "./debugLayer";
import { Dict } from "./instance";
import { surrogateTable } from "./surrogate";
import { utf8Layer as utf8LayerOf } from "./utf8Layer";
/** O_RDONLY and O_RDWR|O_CREAT as the 3.11+ registered names print them (octal). */
const OPEN_MODE = { read: "0", write: "102" };

/** The reference's registered name of a table for a request of generation gen. */
export function registeredName(typeName: string, writer: boolean, flags: number, gen: Gen): string {
  return gen === "classic"
    ? `${typeName}:${dictFlagsStr(flags & INST_MASK)}`
    : `${typeName}(${writer ? OPEN_MODE.write : OPEN_MODE.read},${dictFlagsStr(flags, gen)})`;
}

/** Builds the OpenContext a driver's open() receives (nested.ts; set there to avoid an import loop). */
let contextFor: (gen: Gen, writer: boolean) => OpenContext = () => {
  throw new Error("dict layer: no open context");
};
export function setContextFactory(f: typeof contextFor): void {
  contextFor = f;
}

/**
 * The instance for a client's request (typeName already stripped of
 * proxy: and approved). Never throws; a table that cannot be opened gives
 * an instance that fails each operation.
 */
export function openDict(typeName: string, writer: boolean, flags: number, gen: Gen = "classic"): Maybe<Dict> {
  let f = flags | 0;
  if (f & DictFlag.OPEN_LOCK && f & DictFlag.LOCK) f &= ~DictFlag.LOCK;
  const reg = registeredName(typeName, writer, f, gen);
  return findOrOpen((gen === "classic" ? "C" : "I") + reg, reg, typeName, writer, f, gen);
}

/** The cached instance under mapKey (re-opened when its file changed), or a new one. */
export function findOrOpen(mapKey: string, reg: string, typeName: string, writer: boolean, flags: number, gen: Gen): Maybe<Dict> {
  const hit = cached(mapKey);
  if (hit === undefined) return enter(mapKey, create(typeName, reg, writer, flags, gen));
  if (hit instanceof Promise || hit.writer || !hit.driver?.changed || !probeChanged(hit)) return hit;
  msg.info(`table ${hit.regName} has changed -- reopening`);
  retire(mapKey, hit);
  return enter(mapKey, create(typeName, reg, writer, hit.openedWith, gen));
}

/** dict_open3() for one request: a new instance, never throwing. */
export function create(typeName: string, reg: string, writer: boolean, flags: number, gen: Gen): Maybe<Dict> {
  const colon = typeName.indexOf(":");
  const type = colon < 0 ? typeName : typeName.slice(0, colon);
  const name = colon < 0 ? "" : typeName.slice(colon + 1);
  const made = new Maker(type, name, reg, writer, flags, gen);

  if (type === "" || name === "") {
    const why = `open dictionary: expecting "type:name" form instead of "${typeName}"`;
    return made.surrogate(why, gen === "classic" ? "config" : "retry", false);
  }
  const tt = findTableType(type);
  if (tt === undefined || (tt.since !== undefined && gen === "classic")) return made.surrogate(`unsupported dictionary type: ${type}`, "retry", false);
  for (const r of tt.refuses ?? []) {
    if (r === "write" ? writer : (flags & DictFlag.NO_UNAUTH) !== 0) {
      return made.failed(new TableError("retry", r === "write" ? `${type}:${name} map requires O_RDONLY access mode` : `${type}:${name} map is not allowed for ${r.unauth}`));
    }
  }
  let t: Maybe<Table>;
  try {
    const args = { type, name, write: writer, flags, gen };
    const ready = prepared(tt); // a type's first open: its code and libraries (prepare.ts)
    t = ready ? ready.then(() => tt.open(args, contextFor(gen, writer))) : tt.open(args, contextFor(gen, writer));
  } catch (err) {
    return made.failed(err);
  }
  return t instanceof Promise ? t.then((table) => made.opened(tt, table), (err) => made.failed(err)) : made.opened(tt, t);
}

/** The steps after the driver's open, for one request. */
class Maker {
  constructor(
    readonly type: string,
    readonly name: string,
    readonly reg: string,
    readonly writer: boolean,
    readonly flags: number,
    readonly gen: Gen,
  ) {}

  /** DEBUG exists as an instance flag up to 3.10 only. */
  private get debug(): boolean {
    return this.gen === "classic" && (this.flags & DictFlag.DEBUG) !== 0;
  }

  opened(tt: TableType, driver: Table): Dict {
    let flags = driver.flags;
    if (flags & DictFlag.OPEN_LOCK) {
      if (flags & DictFlag.MULTI_WRITER) {
        flags = (flags & ~DictFlag.OPEN_LOCK) | DictFlag.LOCK;
      } else if (driver.openLock) {
        try {
          driver.openLock();
        } catch (err) {
          closeQuietly(driver);
          const why = err instanceof Error ? err.message : String(err);
          return this.surrogate(`${this.type}:${this.name}: unable to get exclusive lock: ${why}`, "config", false);
        }
      }
    }
    if (msg.verbose) msg.info(`dict_open: ${this.type}:${this.name}`);
    const label = `${this.type}:${driver.dictName ?? this.name}`;
    const debug = this.debug && tt.debugLogged !== false;
    let t = driver;
    if (debug && !tt.utf8Inside) t = debugLayer(t, label);
    [t, flags] = this.utf8(t, flags, label);
    if (debug && tt.utf8Inside) t = debugLayer(t, label);
    return new Dict(this.type, this.name, label, this.reg, this.writer, this.gen, t, driver, flags, this.flags);
  }

  failed(err: unknown): Dict {
    if (err instanceof TableError && err.kind === "retry") return this.surrogate(err.message, "retry", true);
    const why = err instanceof TableError ? err.message : `cannot open ${this.type}:${this.name}: ${err instanceof Error ? err.message : String(err)}`;
    return this.surrogate(why, "config", false);
  }

  /** dict_surrogate(): log the reason now, fail every operation later. */
  surrogate(reason: string, kind: "retry" | "config", utf8Step: boolean): Dict {
    msg.error(reason);
    const label = `${this.type}:${this.name}`;
    // From 3.11 a surrogate says what it is (DICT_FLAG_SURROGATE).
    let t = surrogateTable(label, reason, kind, this.gen === "classic" ? this.flags : this.flags | SURROGATE, this.writer);
    let flags = t.flags;
    if (this.debug) t = debugLayer(t, label);
    if (utf8Step) [t, flags] = this.utf8(t, flags, label);
    return new Dict(this.type, this.name, label, this.reg, this.writer, this.gen, t, undefined, flags, this.flags);
  }

  /** dict_open3()'s last step: the UTF-8 layer, when asked for and not there yet. */
  private utf8(t: Table, flags: number, label: string): [Table, number] {
    if ((flags & DictFlag.UTF8_ACTIVE) !== 0 || !needUtf8Activation(this.flags)) return [t, flags];
    return [utf8LayerOf(t, label), flags | DictFlag.UTF8_ACTIVE];
  }
}
