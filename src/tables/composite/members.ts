/**
 * composite/members.ts - the member tables of unionmap:{...} and
 * pipemap:{...} (Postfix util/dict_union.c, dict_pipe.c): parsing the
 * composite's name, opening each member through the OpenContext, and
 * turning a member's failure into the composite's.
 *
 * Members are opened read-only with the flags of the request that opened
 * the composite and registered under their text, as in the reference: a
 * member is shared by every composite naming it the same way (up to 3.10
 * the first opener's flags stick to it), and is looked up with its own
 * flags whatever the current request's. A "proxy:" prefix on a member is
 * dropped (the proxymap server opens such a member itself). Approval
 * covers the composite as one name; members are not approved separately,
 * as in the reference (service/approval.ts).
 *
 * The composite's flags: the open flags plus FIXED/PATTERN of its first
 * member.
 *
 * Errors at open (the reference's surrogates, RETRY on every operation):
 * 'bad syntax: "TYPE:NAME"; need "TYPE:{type:name...}"' for a name that is
 * not one non-empty {...} group of type:name members.
 *
 * Logs: with -v, each member opened.
 */
import { DictFlag, Status } from "../../protocol/constants";
import { msg } from "../../log/msg";
import { TableError, type OpenArgs, type OpenContext, type OpenedTable } from "../table";
import { balpar } from "../../util/stringops";
import { tokensQ } from "../../util/mystrtok";

/** The TableError that makes the composite fail with a member's status (already logged). */
export function memberFailure(status: number): TableError {
  return new TableError(status === Status.CONFIG ? "config" : "retry", "");
}

/** Drop a composite's hold on its members (dict_unregister()). */
export function releaseMembers(members: readonly OpenedTable[]): void {
  for (const m of members) m.release();
}

/**
 * Check a composite's name and open its members in order. Returns the
 * members and the composite's flags; throws the reference's open errors.
 */
export async function openMembers(type: string, args: OpenArgs, ctx: OpenContext): Promise<{ members: OpenedTable[]; flags: number }> {
  const { name, flags } = args;
  const syntax = () => new TableError("retry", `bad syntax: "${type}:${name}"; need "${type}:{type:name...}"`);
  const len = balpar(name);
  if (len === 0 || len !== name.length || len === 2) throw syntax();
  const words = tokensQ(name.slice(1, len - 1));
  if (words.length === 0) throw syntax();
  const members: OpenedTable[] = [];
  try {
    for (const text of words) {
      if (msg.verbose) msg.info(`dict_${type === "unionmap" ? "union" : "pipe"}_open: ${text}`);
      if (!text.includes(":")) throw syntax();
      members.push(await ctx.openTable(text, flags));
    }
  } catch (err) {
    releaseMembers(members);
    throw err;
  }
  return { members, flags: flags | (members[0].flags & (DictFlag.FIXED | DictFlag.PATTERN)) };
}
