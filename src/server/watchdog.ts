/**
 * watchdog.ts - kill the process when its event loop stops turning for
 * daemon_timeout seconds, like Postfix's watchdog(3).
 *
 * Postfix arms alarm(2) and re-arms it on every pass through its event loop.
 * Here a timer re-arms the alarm three times per period; if the JavaScript
 * thread is stuck (a synchronous call that never returns, an endless loop),
 * the timer cannot run, SIGALRM arrives with its default action, and the
 * kernel ends the process (master logs "killed by signal 14" and starts a new
 * one). No log line from us: nothing can run on a stuck thread.
 *
 * Reads: nothing. Logs: nothing.
 */
import { alarm } from "../sys/libc";

export function startWatchdog(seconds: number): { stop(): void } {
  if (seconds <= 0) return { stop() {} };
  alarm(seconds);
  const t = setInterval(() => alarm(seconds), (seconds * 1000) / 3);
  t.unref();
  return {
    stop() {
      clearInterval(t);
      alarm(0);
    },
  };
}
