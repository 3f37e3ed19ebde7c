/**
 * unionmap.ts - the "unionmap" table type, unionmap:{type:name, ...}: a
 * lookup asks every member table and joins what they found with commas, in
 * member order (Postfix util/dict_union.c). Members, their sharing, flags
 * and open errors: composite/members.ts.
 *
 * An empty result (nothing found, or only empty values) is "not found". A
 * member that fails makes the lookup fail with its status (RETRY or
 * CONFIG) at once; the member logged why.
 *
 * Reads nothing itself. Logs the open errors; with -v, each member opened.
 */
import { Status } from "../protocol/constants";
import { READ_ONLY, type OpenArgs, type OpenContext, type OpenedTable, type Table, type TableType } from "./table";
import { memberFailure, openMembers, releaseMembers } from "./composite/members";

const TYPE = "unionmap";

class UnionTable implements Table {
  constructor(
    readonly flags: number,
    private readonly members: readonly OpenedTable[],
  ) {}

  async lookup(key: string): Promise<string | undefined> {
    let joined = "";
    for (const m of this.members) {
      const r = await m.lookup(key);
      if (r.status === Status.OK) {
        if (joined.length > 0) joined += ",";
        joined += r.value;
      } else if (r.status !== Status.NOKEY) {
        throw memberFailure(r.status);
      }
    }
    return joined.length > 0 ? joined : undefined;
  }

  close(): void {
    releaseMembers(this.members);
  }
}

async function open(args: OpenArgs, ctx: OpenContext): Promise<Table> {
  const { members, flags } = await openMembers(TYPE, args, ctx);
  return new UnionTable(flags, members);
}

export const unionmap: TableType = { type: TYPE, open, refuses: READ_ONLY };
