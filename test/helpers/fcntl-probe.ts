/**
 * fcntl-probe.ts - what the lmdb lock tests ask from outside the process:
 * can another process take an exclusive fcntl (POSIX record) lock on a
 * file now? A perl child tries F_SETLK with F_WRLCK on the whole file; our
 * event loop waits meanwhile (spawnSync), so the answer reflects the locks
 * this process holds at that very point of its turn. And nextTurn(), to let
 * the event loop finish its turn (src/tables/lockQueue.ts drops a lingering
 * shared lock then).
 *
 * Needs perl (Debian's perl-base).
 */
import { requireCommand } from "./require";

export function othersCanWrite(path: string): boolean {
  requireCommand("perl", "apt-get install perl-base");
  const r = Bun.spawnSync([
    "perl",
    "-e",
    `use Fcntl; open(F, "+<", $ARGV[0]) or die; my $l = pack("s s x4 q q l x4", F_WRLCK, 0, 0, 0, 0); exit(fcntl(F, F_SETLK, $l) ? 0 : 3);`,
    path,
  ]);
  return r.exitCode === 0;
}

/** Resolves after the current turn of the event loop (its setImmediate callbacks) has run. */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
