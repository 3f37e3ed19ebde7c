/**
 * rules.ts - the rule list shared by cidr, regexp and pcre tables: match
 * rules, "if" rules and "endif" rules in file order, with each "if" linked
 * to its "endif" (Postfix: the rule_stack in dict_cidr_open(),
 * dict_regexp_open(), dict_pcre_open()), and the walk that a lookup does
 * over them (first match wins; an "if" whose condition fails jumps past its
 * "endif"; an "if" without "endif" that fails ends the lookup with no
 * match).
 *
 * Logs: "TYPE map NAME, line N: IF has no matching ENDIF" for each
 * unclosed "if" at the end of the file, innermost first, as the reference.
 */
import { msg } from "../../log/msg";

export const enum Op {
  Match = 1,
  If = 2,
  Endif = 3,
}

export interface Rule {
  op: Op;
  /** Source line of the rule (first line of a continued line). */
  lineno: number;
  /** For Op.If: index of its "endif" rule, -1 when there is none. */
  endifAt: number;
}

/** Collects rules while a file is parsed, keeping track of if/endif nesting. */
export class RuleList<R extends Rule> {
  readonly rules: R[] = [];
  private readonly open: number[] = [];

  /** How many "if" blocks are open (the parser refuses an "endif" at 0). */
  get nesting(): number {
    return this.open.length;
  }

  add(rule: R): void {
    const at = this.rules.length;
    this.rules.push(rule);
    if (rule.op === Op.If) {
      rule.endifAt = -1;
      this.open.push(at);
    } else if (rule.op === Op.Endif) {
      const ifAt = this.open.pop();
      if (ifAt === undefined) throw new Error("ENDIF without IF");
      this.rules[ifAt].endifAt = at;
    }
  }

  /** End of file: warn about each "if" still open. */
  finish(type: string, name: string): R[] {
    while (this.open.length > 0) {
      const r = this.rules[this.open.pop()!];
      msg.warn(`${type} map ${name}, line ${r.lineno}: IF has no matching ENDIF`);
    }
    return this.rules;
  }
}

/**
 * What a walk step returns to stop the walk before rule `at` without an
 * answer: regexp and pcre walks stop so when the rest must run on a worker
 * thread (regexRules.ts), which then walks on from `at`.
 */
export class Suspend {
  constructor(readonly at: number) {}
}

/**
 * Walk the rules for one lookup. match(r) is the result of a match rule
 * (undefined: no match, go on); test(r) the condition of an "if".
 */
export function walkRules<R extends Rule>(rules: readonly R[], match: (r: R) => string | undefined, test: (r: R) => boolean): string | undefined {
  return walkFrom(rules, 0, match, test) as string | undefined;
}

/**
 * walkRules() from rule `from` on (a walk's whole state is its position),
 * where a step may also Suspend the walk: match(r, i) and test(r, i) get
 * the rule's index.
 */
export function walkFrom<R extends Rule>(
  rules: readonly R[],
  from: number,
  match: (r: R, i: number) => string | undefined | Suspend,
  test: (r: R, i: number) => boolean | Suspend,
): string | undefined | Suspend {
  for (let i = from; i < rules.length; i++) {
    const r = rules[i];
    if (r.op === Op.Match) {
      const v = match(r, i);
      if (v !== undefined) return v;
    } else if (r.op === Op.If) {
      const t = test(r, i);
      if (t instanceof Suspend) return t;
      if (t) continue;
      if (r.endifAt < 0) return undefined;
      i = r.endifAt;
    }
  }
  return undefined;
}
