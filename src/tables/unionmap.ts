/**
 * unionmap.ts - the "unionmap" table type, unionmap:{type:name, ...}: a
 * lookup asks every member table and joins what they found with commas, in
 * member order (Postfix util/dict_union.c). Also the member handling that
 * pipemap.ts shares (openMembers, memberGet).
 *
 * Members are opened through the dict layer (dict.ts), like any table, with
 * the flags of the request that opened the composite, and read-only. As in
 * the reference, a member is shared by every composite that names it with
 * the same text (the first opener's flags stick; Postfix's dict_register()
 * under the member's name) and is looked up with those open flags, whatever
 * the current request's flags. A "proxy:" prefix on a member is dropped (the
 * reference's proxymap opens such a member directly). Approval covers the
 * composite as one name (proxy:unionmap:{...} in proxy_read_maps); members
 * are not approved separately, as in the reference (service/approval.ts).
 *
 * The composite's flags: the open flags plus FIXED/PATTERN of its first
 * member. An empty result (nothing found, or only empty values) is "not
 * found". A member that fails makes the lookup fail with its status
 * (RETRY or CONFIG) at once; the member logged why.
 *
 * Errors at open (the reference's surrogates, RETRY on every operation):
 * "TYPE:NAME map requires O_RDONLY access mode" on the write service, and
 * 'bad syntax: "TYPE:NAME"; need "TYPE:{type:name...}"' for a name that is
 * not one non-empty {...} group of type:name members.
 *
 * Reads nothing itself. Logs the errors above; with -v, each member opened.
 */
import { DictFlag, Status } from "../protocol/constants";
import { msg } from "../log/msg";
import { TableError, type OpenArgs, type Table, type TableType } from "./table";
import { dictGet, openDict, type Dict, type Result } from "./dict";
import { balpar, tokensQ } from "./strings";

const TYPE = "unionmap";
const PROXY_COLON = "proxy:";

/**
 * An instance-flag bit that Postfix does not use, set on every member's
 * flags: it gives members their own entries in the dict layer's cache
 * ("type:name:...|0x40000000"), so a member is never the same instance as
 * the table of that name opened directly by a client, as in the reference
 * (its members are registered under "type:name", clients' tables under
 * "type:name:flags"). No driver looks at this bit.
 */
const MEMBER_BIT = 1 << 30;

/** Members by their text, with the flags they were first opened with (dict_register()). */
const registered = new Map<string, { flags: number; refs: number }>();

/** One member of a composite: how to reach its Dict. */
export interface Member {
  /** The member as written ("proxy:" prefixes dropped). */
  readonly typeName: string;
  /** The flags it was opened with (and is looked up with). */
  readonly flags: number;
  /** The registry name it holds a reference on. */
  readonly text: string;
}

/** The Dict of a member: the dict layer's cache hit, or a re-open after a file change. */
function memberDict(m: Member): Dict | Promise<Dict> {
  return openDict(m.typeName, false, m.flags);
}

/** Look up a key in a member with its open flags. Never rejects. */
export async function memberGet(m: Member, key: string): Promise<Result> {
  return dictGet(await memberDict(m), key, m.flags);
}

/** The TableError that makes the composite fail with a member's status (already logged). */
export function memberFailure(status: number): TableError {
  return new TableError(status === Status.CONFIG ? "config" : "retry", "");
}

/**
 * Check a composite's name and open its members in order. Returns the
 * members and the composite's flags; throws the reference's open errors.
 */
export async function openMembers(type: string, args: OpenArgs): Promise<{ members: Member[]; flags: number }> {
  const { name, flags } = args;
  if (args.write) throw new TableError("retry", `${type}:${name} map requires O_RDONLY access mode`);
  const syntax = () => new TableError("retry", `bad syntax: "${type}:${name}"; need "${type}:{type:name...}"`);
  const len = balpar(name);
  if (len === 0 || len !== name.length || len === 2) throw syntax();
  const words = tokensQ(name.slice(1, len - 1));
  if (words.length === 0) throw syntax();
  const members: Member[] = [];
  let matchFlags = 0;
  try {
    for (const text of words) {
      if (msg.verbose) msg.info(`dict_${type === TYPE ? "union" : "pipe"}_open: ${text}`);
      if (!text.includes(":")) throw syntax();
      let typeName = text;
      while (typeName.startsWith(PROXY_COLON)) typeName = typeName.slice(PROXY_COLON.length);
      let reg = registered.get(text);
      if (reg === undefined) {
        reg = { flags: flags | MEMBER_BIT, refs: 0 };
        registered.set(text, reg);
      }
      reg.refs++;
      const m: Member = { typeName, flags: reg.flags, text };
      members.push(m);
      const d = await memberDict(m);
      if (members.length === 1) matchFlags = d.flags & (DictFlag.FIXED | DictFlag.PATTERN);
    }
  } catch (err) {
    releaseMembers(members);
    throw err;
  }
  return { members, flags: flags | matchFlags };
}

/** Drop a composite's references on its members (dict_unregister()). */
export function releaseMembers(members: readonly Member[]): void {
  for (const m of members) {
    const reg = registered.get(m.text);
    if (reg && --reg.refs <= 0) registered.delete(m.text);
  }
}

class UnionTable implements Table {
  constructor(
    public flags: number,
    private readonly members: readonly Member[],
  ) {}

  async lookup(key: string): Promise<string | undefined> {
    let joined = "";
    for (const m of this.members) {
      const r = await memberGet(m, key);
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

async function open(args: OpenArgs): Promise<Table> {
  const { members, flags } = await openMembers(TYPE, args);
  return new UnionTable(flags, members);
}

export const unionmap: TableType = { type: TYPE, open };
