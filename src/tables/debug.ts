/**
 * debug.ts - the "debug" table type of Postfix 3.11 and later,
 * debug:TYPE:NAME: TYPE:NAME itself, with every operation logged
 * (Postfix util/dict_debug.c, which replaced the DEBUG instance flag).
 * Up to 3.10 the type does not exist: a request of that generation naming
 * it gets the surrogate for an unknown type, as there.
 *
 * The inner table is opened with the same open mode and flags, shared with
 * a client naming it directly (the reference's dict_open() reuses the
 * registered instance); each operation runs with the call's flags, and the
 * flags the inner table settles come back.
 *
 * Logs: "TYPE:NAME lookup: \"KEY\" = \"VALUE\"" (not_found, error), and
 * the update, delete and sequence lines, as the reference words them; with
 * -v, "dict_debug_open: TYPE:NAME".
 */
import { msg } from "../log/msg";
import { Status } from "../protocol/constants";
import { Settled, TableError, type OpenArgs, type OpenContext, type OpenedTable, type OpResult, type Out, type Table, type TableType } from "./table";

function failure(r: OpResult): TableError {
  return new TableError(r.status === Status.CONFIG ? "config" : "retry", "");
}

/** The inner result as a driver result, with the flags the inner call settled. */
function carry<T>(value: T, flags: number, r: OpResult): Out<T> {
  return r.flags === flags ? value : new Settled(value, r.flags);
}

function outcome(r: OpResult): string {
  return r.status === Status.OK ? "success" : r.status === Status.NOKEY ? "failed" : "error";
}

class DebugTable implements Table {
  constructor(
    readonly flags: number,
    private readonly inner: OpenedTable,
    private readonly name: string,
  ) {}

  async lookup(key: string, flags: number): Promise<Out<string | undefined>> {
    const r = await this.inner.lookup(key, flags);
    msg.info(`${this.name} lookup: "${key}" = "${r.status === Status.OK ? r.value : r.status === Status.NOKEY ? "not_found" : "error"}"`);
    if (r.status !== Status.OK && r.status !== Status.NOKEY) throw failure(r);
    return carry(r.status === Status.OK ? r.value : undefined, flags, r);
  }

  async update(key: string, value: string, flags: number): Promise<Out<boolean>> {
    const r = await this.inner.update(key, value, flags);
    msg.info(`${this.name} update: "${key}" = "${value}": ${outcome(r)}`);
    if (r.status !== Status.OK && r.status !== Status.NOKEY) throw failure(r);
    return carry(r.status === Status.OK, flags, r);
  }

  async delete(key: string, flags: number): Promise<Out<boolean>> {
    const r = await this.inner.delete(key, flags);
    msg.info(`${this.name} delete: "${key}": ${outcome(r)}`);
    if (r.status !== Status.OK && r.status !== Status.NOKEY) throw failure(r);
    return carry(r.status === Status.OK, flags, r);
  }

  async sequence(fn: 0 | 1, flags: number): Promise<Out<[string, string] | undefined>> {
    const r = await this.inner.sequence(fn, flags);
    msg.info(r.status === Status.OK ? `${this.name} sequence: "${r.key}" = "${r.value}"` : `${this.name} sequence: found EOF`);
    if (r.status !== Status.OK && r.status !== Status.NOKEY) throw failure(r);
    return carry(r.status === Status.OK ? ([r.key, r.value] as [string, string]) : undefined, flags, r);
  }

  close(): void {
    this.inner.release();
  }
}

async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  if (msg.verbose) msg.info(`dict_debug_open: ${args.name}`);
  const inner = await ctx.openTable(args.name, args.flags, { write: args.write });
  return new DebugTable(inner.flags, inner, args.name);
}

export const debug: TableType = { type: "debug", open, since: "3.11" };
