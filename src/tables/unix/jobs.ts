/**
 * unix/jobs.ts - the unix table's NSS lookups as worker jobs
 * (offload/worker.ts runs them on a worker thread; unix.ts sends them).
 *
 * A lookup of a name that has no entry also checks, when asked (the first
 * miss of the process, as Postfix's dict_unix.c does), that the database
 * answers at all: uid 0 / gid 0 must exist. The answer is the value in the
 * reference's format, or the errno text of a database that does not answer.
 *
 * Reads: NSS through libc (src/sys/nss.ts). Logs nothing (unix.ts does).
 */
import { getgrgid, getgrnam, getpwnam, getpwuid, lastErrno } from "../../sys/nss";
import { strerror } from "../../sys/libc";

export interface UnixLookup {
  map: "passwd" | "group";
  key: string;
  /** Check the database when the key is not found. */
  check: boolean;
}

/** value: found; broken: the database does not answer (errno text); neither: not found. */
export interface UnixAnswer {
  value?: string;
  broken?: string;
}

function lookup(q: UnixLookup): UnixAnswer {
  if (q.map === "passwd") {
    const pw = getpwnam(q.key);
    if (pw) return { value: `${pw.name}:${pw.passwd}:${pw.uid}:${pw.gid}:${pw.gecos}:${pw.dir}:${pw.shell}` };
    if (q.check && !getpwuid(0)) return { broken: strerror(lastErrno()) };
    return {};
  }
  const gr = getgrnam(q.key);
  if (gr) return { value: `${gr.name}:${gr.passwd}:${gr.gid}:${gr.members.join(",")}` };
  if (q.check && !getgrgid(0)) return { broken: strerror(lastErrno()) };
  return {};
}

export const unixJobs = {
  "unix.lookup": lookup,
};
