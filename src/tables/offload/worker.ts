/**
 * offload/worker.ts - the entry point of every worker thread that the
 * offload pools (offload/pool.ts) start: it runs the jobs the main thread
 * sends, one at a time (a message may carry a batch of them, run in
 * order), and answers each with its value or error text.
 *
 * The jobs are the blocking calls of the table drivers, each defined beside
 * its driver: NSS lookups (unix/jobs.ts), SQLite queries (sqlite/jobs.ts),
 * regexp and pcre rule walks (pattern/matchJobs.ts). A static list, so the
 * bundler puts them all into this entry point (build.ts makes it a second
 * entry point of the executable).
 *
 * Reads what the jobs read. Logs nothing: a worker has no log channel, so
 * jobs return what the main thread should log.
 */
import type { Job, JobReply, JobRequest, JobResult } from "./protocol";
import { READY } from "./protocol";
import { unixJobs } from "../unix/jobs";
import { sqliteJobs } from "../sqlite/jobs";
import { matchJobs } from "../pattern/matchJobs";

const JOBS: Record<string, Job> = {
  ...unixJobs,
  ...sqliteJobs,
  ...matchJobs,
  // --self-test: a worker starts and answers.
  "offload.ping": () => "pong",
};

declare const self: Worker;

function runOne(job: string, arg: unknown): JobResult {
  try {
    const run = Object.hasOwn(JOBS, job) ? JOBS[job] : undefined;
    if (!run) throw new Error(`unknown job ${job}`);
    return { ok: true, value: run(arg as never) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

self.onmessage = (e: MessageEvent<JobRequest>) => {
  const { id, calls } = e.data;
  const results = calls.map((c) => runOne(c.job, c.arg));
  if (id !== 0) postMessage({ id, results } satisfies JobReply);
};

// Loaded: the pool counts this worker's calls from now on (offload/pool.ts READY).
postMessage({ id: READY, results: [] } satisfies JobReply);
