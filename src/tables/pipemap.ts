/**
 * pipemap.ts - the "pipemap" table type, pipemap:{type:name, ...}: the key
 * goes to the first member, its result is the key for the next, and so on;
 * the last member's result is the answer (Postfix util/dict_pipe.c). The
 * first member that finds nothing ends the lookup with "not found"; one
 * that fails ends it with that member's status (RETRY or CONFIG).
 *
 * Opening, member sharing, flags and errors: composite/members.ts.
 *
 * Reads nothing itself. Logs: the open errors; with -v, each member opened.
 */
import { Status } from "../protocol/constants";
import { READ_ONLY, type OpenArgs, type OpenContext, type OpenedTable, type Table, type TableType } from "./table";
import { memberFailure, openMembers, releaseMembers } from "./composite/members";

const TYPE = "pipemap";

class PipeTable implements Table {
  constructor(
    readonly flags: number,
    private readonly members: readonly OpenedTable[],
  ) {}

  async lookup(key: string): Promise<string | undefined> {
    let query = key;
    for (const m of this.members) {
      const r = await m.lookup(query);
      if (r.status === Status.NOKEY) return undefined;
      if (r.status !== Status.OK) throw memberFailure(r.status);
      query = r.value;
    }
    return query;
  }

  close(): void {
    releaseMembers(this.members);
  }
}

async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const { members, flags } = await openMembers(TYPE, args, ctx);
  return new PipeTable(flags, members);
}

export const pipemap: TableType = { type: TYPE, open, refuses: READ_ONLY };
