/**
 * dbCommon/lookup.ts - the steps of a lookup that mysql and pgsql tables
 * share (their dict_*_lookup() around db_common): the `domain` list check,
 * keys the query template cannot use are not looked up, the query through
 * the shared host pool, and what its failures and the expansion limit
 * answer, in the reference's words.
 *
 * Logs: with -v, "ME: Skipping lookup of 'KEY'"; the warnings are thrown
 * as TableError texts (the dict layer logs them).
 */
import { msg } from "../../log/msg";
import { Outcome, type OutcomeIndex } from "../../stats/counters";
import { TableError } from "../table";
import type { DomainList } from "./domain";
import { Unavailable } from "./hostPool";

/** What a table makes of its server's reply. */
export type Answer = { value: string | undefined } | { overLimit: true };

/** The statistics' outcome of an answer (the host pool's classify()). */
export function answerOutcome(a: Answer): OutcomeIndex {
  return "overLimit" in a ? Outcome.retry : a.value === undefined ? Outcome.notfound : Outcome.ok;
}

export interface SqlLookup {
  /** The reference's function name in its messages ("dict_mysql_lookup"). */
  readonly me: string;
  /** "TYPE:NAME" */
  readonly label: string;
  /** The table's name (its configuration file) as the messages show it. */
  readonly name: string;
  readonly domain: DomainList | undefined;
  /** The warning for a domain list that could not be checked ("" when it logged already). */
  domainFailure(key: string): string;
  /** Can the query template use this key at all? */
  expandable(key: string): boolean;
  /** The query through the pool (throws Unavailable when no server answers). */
  run(key: string): Promise<Answer>;
}

export async function sqlLookup(t: SqlLookup, key: string): Promise<string | undefined> {
  if (t.domain) {
    const r = await t.domain.check(key);
    if (r === "nomatch") {
      if (msg.verbose) msg.info(`${t.me}: Skipping lookup of '${key}'`);
      return undefined;
    }
    if (r !== "match") throw new TableError(r, t.domainFailure(key));
  }
  // Keys that lack what the templates need are not looked up at all.
  if (!t.expandable(key)) return undefined;
  let answer: Answer;
  try {
    answer = await t.run(key);
  } catch (e) {
    if (e instanceof Unavailable) {
      // All hosts failed (already logged) or are down (the reference is silent).
      const why = e.message === "no database server available" ? "" : `${t.label}: ${e.message}`;
      throw new TableError("retry", why);
    }
    throw e;
  }
  if ("overLimit" in answer) throw new TableError("retry", `${t.me}: ${t.name}: Expansion limit exceeded for key: '${key}'`);
  return answer.value;
}
