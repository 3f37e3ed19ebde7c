/**
 * Which tables the service may open: Postfix's authorize_proxied_maps()
 * (proxymap/proxymap.c). The approved set is built once at start-up from
 * the expanded proxy_read_maps (proxymap service) or proxy_write_maps
 * (proxywrite service):
 *
 *  - the value is split on ", \t\r\n", keeping {} groups together;
 *  - a word in {} is unwrapped and only its first word is considered;
 *  - unionmap:{...} and pipemap:{...} are searched recursively (their
 *    members are approved only if they carry proxy: themselves);
 *  - a word starting with proxy: is approved with all its proxy: prefixes
 *    stripped; proxy:unionmap:{...} approves that unionmap table as a whole;
 *  - other words (restrictions, hosts, tables without proxy:) are ignored.
 *
 * From Postfix 3.12 on (decided by the installed Postfix's version) also:
 * a /file/name word is read and each of its logical lines searched the same
 * way; words not starting with a letter or digit or without ':' are skipped
 * first; and the read service also searches the values of the parameters
 * named in smtpd_restriction_classes.
 *
 * Logs (reference wording): "bad proxy_read_maps parameter value: ..."
 * (3.7 to 3.11) or "bad syntax in ORIGIN content: ..." (3.12) for {} syntax
 * errors; "open FILE: ..." / "read FILE: ..." (3.12 files); with -v,
 * "allowlisting TYPE:NAME from ORIGIN".
 *
 * One deliberate difference: a /file/name that (indirectly) names itself is
 * read once; Postfix 3.12 would recurse until it crashes.
 */
import { readFileSync } from "node:fs";
import { mailVersion, type Generation, type MainConfig } from "../config/mainCf";
import { atLeast } from "../config/declared";
import { CHARS_BRACE, CHARS_COMMA_SP, cString, isAlnum } from "../util/ctype";
import { errnoCode, errnoText } from "../util/errno";
import { logicalLines } from "../config/logicalLines";
import { Cursor, mystrtok, mystrtokq } from "../util/mystrtok";
import { extpar } from "../util/stringops";
import { msg } from "../log/msg";
import { Status } from "../protocol/constants";

const PROXY_COLON = "proxy:";
const NESTED_TYPES = ["unionmap:", "pipemap:"];
const REST_CLASSES = "smtpd_restriction_classes";

export interface ApprovalOptions {
  /** proxywrite (proxy_write_maps) rather than proxymap (proxy_read_maps). */
  writer: boolean;
  /** The installed Postfix's [major, minor, patch]; 3.12 adds files and restriction classes. */
  generation: Generation;
  /**
   * 3.12 and later, read service only: the expanded smtpd_restriction_classes
   * value and a lookup that gives the expanded value of a parameter that is
   * set (undefined when it is not).
   */
  restrictionClasses?: { value: string; lookup: (name: string) => string | undefined };
}

/** "proxy_read_maps" or "proxy_write_maps". */
export function approvalParameterName(writer: boolean): string {
  return writer ? "proxy_write_maps" : "proxy_read_maps";
}

/** The expanded proxy_read_maps or proxy_write_maps value. */
export function proxyMapsValue(cfg: MainConfig, writer: boolean): string {
  return cfg.get(approvalParameterName(writer));
}

/** The nested part after "unionmap:" / "pipemap:", or undefined. */
function nestedInfo(typeName: string): string | undefined {
  for (const prefix of NESTED_TYPES) if (typeName.startsWith(prefix)) return typeName.slice(prefix.length);
  return undefined;
}

class Authorizer {
  readonly approved = new Set<string>();
  private readonly modern: boolean;
  private readonly openFiles: string[] = [];

  constructor(private readonly opts: ApprovalOptions) {
    this.modern = atLeast(opts.generation, 3, 12);
  }

  private syntaxWarning(origin: string, err: string): void {
    if (this.modern) msg.warn(`bad syntax in ${origin} content: ${err}`);
    else msg.warn(`bad ${approvalParameterName(this.opts.writer)} parameter value: ${err}`);
  }

  authorize(list: string, origin: string): void {
    const cur = new Cursor(list);
    for (;;) {
      let typeName = mystrtokq(cur, CHARS_COMMA_SP, CHARS_BRACE);
      if (typeName === undefined) return;

      // { maptype:mapname attr=value ... }: only the first word counts.
      if (typeName[0] === CHARS_BRACE[0]) {
        const group = extpar(typeName, false, CHARS_BRACE);
        if (group.err !== undefined) {
          this.syntaxWarning(origin, group.err);
          continue;
        }
        typeName = mystrtokq(new Cursor(group.text), CHARS_COMMA_SP, CHARS_BRACE);
        if (typeName === undefined) continue;
      }
      if (this.modern) {
        if (typeName[0] === "/") {
          this.authorizeFile(typeName);
          continue;
        }
        if (!isAlnum(typeName[0]) || !typeName.includes(":")) continue;
      }
      // unionmap:{...} and pipemap:{...}: search the members.
      const nested = nestedInfo(typeName);
      if (nested !== undefined) {
        if (nested[0] !== CHARS_BRACE[0]) continue;
        const group = extpar(nested, false, CHARS_BRACE);
        if (group.err !== undefined) {
          this.syntaxWarning(origin, group.err);
          continue;
        }
        this.authorize(group.text, origin);
        continue;
      }
      if (!typeName.startsWith(PROXY_COLON)) continue;
      do typeName = typeName.slice(PROXY_COLON.length);
      while (typeName.startsWith(PROXY_COLON));
      if (!this.modern && !typeName.includes(":")) continue;
      if (!this.approved.has(typeName)) {
        this.approved.add(typeName);
        if (msg.verbose) msg.info(`allowlisting ${typeName} from ${origin}`);
      }
    }
  }

  /** 3.12: each logical line of a /file/name is searched like a parameter value. */
  private authorizeFile(path: string): void {
    if (this.openFiles.includes(path)) return; // see the file comment: no endless recursion
    let content: string;
    try {
      content = readFileSync(path, "latin1");
    } catch (err) {
      const verb = errnoCode(err) === "EISDIR" ? "read" : "open";
      msg.warn(`${verb} ${path}: ${errnoText(err)}`);
      return;
    }
    this.openFiles.push(path);
    try {
      for (const line of logicalLines(content, path)) this.authorize(cString(line.text), path);
    } finally {
      this.openFiles.pop();
    }
  }

  /** 3.12, read service: the values of the restriction classes. */
  authorizeRestrictionClasses(value: string, lookup: (name: string) => string | undefined): void {
    const cur = new Cursor(value);
    for (let name = mystrtok(cur, CHARS_COMMA_SP); name !== undefined; name = mystrtok(cur, CHARS_COMMA_SP)) {
      const classValue = lookup(name);
      if (classValue !== undefined) this.authorize(classValue, REST_CLASSES);
    }
  }
}

/**
 * The set of approved "type:name" tables for a list value (the expanded
 * proxy_read_maps or proxy_write_maps), as the given Postfix generation
 * computes it.
 */
export function approvedTables(listValue: string, opts: ApprovalOptions): Set<string> {
  const auth = new Authorizer(opts);
  auth.authorize(listValue, approvalParameterName(opts.writer));
  const rc = opts.restrictionClasses;
  if (rc && !opts.writer && atLeast(opts.generation, 3, 12) && rc.value !== "")
    auth.authorizeRestrictionClasses(rc.value, rc.lookup);
  return auth.approved;
}

/** The approved set for the service, from the configuration (start-up, once). */
export function approvedTableSet(cfg: MainConfig, writer: boolean): Set<string> {
  const generation = mailVersion(cfg);
  return approvedTables(proxyMapsValue(cfg, writer), {
    writer,
    generation,
    restrictionClasses: {
      value: cfg.get(REST_CLASSES),
      lookup: (name) => {
        const raw = cfg.raw(name);
        return raw === undefined ? undefined : cfg.expand(raw);
      },
    },
  });
}

/** The request's table with its proxy: prefixes removed (as the reference does). */
export function canonicalTableName(table: string): string {
  let name = table;
  while (name.startsWith(PROXY_COLON)) name = name.slice(PROXY_COLON.length);
  return name;
}

/**
 * The reference's check of a request's table: BAD without ':' (after
 * stripping proxy:), DENY with its two warnings when not approved, else OK
 * with the canonical name to open.
 */
export function checkTable(
  approved: Set<string>,
  table: string,
  writer: boolean,
): { status: typeof Status.OK | typeof Status.BAD | typeof Status.DENY; name: string } {
  const name = canonicalTableName(table);
  if (!name.includes(":")) return { status: Status.BAD, name };
  if (!approved.has(name)) {
    msg.warn(`request for unapproved table: "${name}"`);
    msg.warn(
      `to approve this table for ${writer ? "read-write" : "read-only"} access, list proxy:${name} in main.cf:${approvalParameterName(writer)}`,
    );
    return { status: Status.DENY, name };
  }
  return { status: Status.OK, name };
}
