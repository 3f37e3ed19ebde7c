/**
 * offload/protocol.ts - the messages between the main thread
 * (offload/pool.ts) and a worker (offload/worker.ts).
 *
 * A request names a job and its argument (structured-clone data); id 0
 * marks a message that needs no reply (loading or dropping worker state).
 * The reply carries the job's value, or the text of what went wrong. A
 * worker's first message, id READY, says its code is loaded.
 */

export const READY = -1;
export interface JobRequest {
  id: number;
  job: string;
  arg: unknown;
}

export type JobReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** A job: runs on the worker thread, synchronously (that is the point). */
export type Job = (arg: never) => unknown;
