/**
 * offload/protocol.ts - the messages between the main thread
 * (offload/pool.ts) and a worker (offload/worker.ts).
 *
 * A request carries a batch of calls, each naming a job and its argument
 * (structured-clone data), run in order; id 0 marks a message that needs
 * no reply (loading or dropping worker state). The reply carries one result
 * per call: the job's value, or the text of what went wrong. A worker's
 * first message, id READY, says its code is loaded.
 */

export const READY = -1;

export interface JobCall {
  job: string;
  arg: unknown;
}

export interface JobRequest {
  id: number;
  calls: JobCall[];
}

export type JobResult = { ok: true; value: unknown } | { ok: false; error: string };

export interface JobReply {
  id: number;
  results: JobResult[];
}

/** A job: runs on the worker thread, synchronously (that is the point). */
export type Job = (arg: never) => unknown;
