/**
 * settle.ts - one way to continue after a result that may or may not be a
 * Promise. In-memory tables answer synchronously and must not pay for a
 * Promise on the hot path; network tables answer later. Every layer of the
 * dict stack goes through then() instead of repeating the two branches.
 *
 * Pure.
 */
import type { Maybe } from "../table";

/**
 * f applied to r now when r is a value, later when it is a Promise. A
 * synchronous throw from f propagates as a throw (sync) or a rejection
 * (async), so callers catch both the same way.
 */
export function then<T, R>(r: Maybe<T>, f: (x: T) => Maybe<R>): Maybe<R> {
  return r instanceof Promise ? r.then(f) : f(r);
}

/**
 * Run a call and map its outcome: done(value) or failed(error), for
 * synchronous results, thrown exceptions and Promises alike. Never throws
 * (unless done/failed do).
 */
export function settle<T, R>(call: () => Maybe<T>, done: (x: T) => R, failed: (err: unknown) => R): R | Promise<R> {
  let r: Maybe<T>;
  try {
    r = call();
  } catch (err) {
    return failed(err);
  }
  if (r instanceof Promise) return r.then(done, failed);
  try {
    return done(r);
  } catch (err) {
    return failed(err);
  }
}
