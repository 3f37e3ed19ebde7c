/**
 * memcache/ops.ts - get, set and delete on memcached with the reference's
 * attempts (Postfix dict_memcache.c: dict_memcache_get(), _set(), _del()):
 * up to max_try attempts, retry_pause seconds apart (a timer: other
 * clients go on meanwhile), each on a working connection. A failed connect
 * ends the attempts at once (the reference does not retry it). The
 * warnings of a failed attempt are logged from the second attempt on, as
 * the reference does, so a single hiccup is silent.
 *
 * Outcomes as the reference's (value, error): found / not found / failed
 * (RETRY). A value longer than data_size_limit is not stored (warning,
 * not found, no error). A `set` that memcached would refuse before reading
 * its data (key over 250 bytes, negative flags) is not sent at all: the
 * reference sends it, and memcached then runs the value as a command (see
 * proto.ts); ours fails it at once with a warning of its own.
 *
 * Logs the reference's warnings: "connect to ENDPOINT: ERRNO",
 * "database memcache:NAME: I/O error[: ERRNO]", "NAME: unexpected memcache
 * server reply: LINE", "NAME: EOF receiving memcache server reply",
 * "database memcache:NAME: update failed: LINE", "... delete failed:
 * LINE", "... data for key KEY is too long (data_size_limit=N) -- not
 * stored"; and ours: "... update failed: not sent: WHY".
 */
import { msg } from "../../log/msg";
import { atLeast, type Generation } from "../../config/declared";
import { warnConnectFailed } from "../net/connection";
import type { Attempt, McClient } from "./client";
import { TYPE, type McConfig } from "./config";
import { setRefusal, type LineReply } from "./proto";
import { cString } from "../../util/ctype";

/** What an operation on memcached came to. */
export interface McResult<T> {
  /** The value found, or whether the key was stored/deleted. */
  readonly result: T;
  /** Every attempt failed (the reference's DICT_ERR_RETRY). */
  readonly failed: boolean;
}

export class McOps {
  private readonly label: string;
  private readonly pauseMs: number;
  private readonly timeoutMs: number;
  /** %.30s in 3.7, %.100s from 3.11 on, for the text of a failed update. */
  private readonly updateTextMax: number;
  /**
   * The "I/O error" warning of a failure without an errno of its own (end
   * of input, a line too long). The reference prints "%m" with whatever
   * errno its last system call left: after its non-blocking connect with a
   * time limit to a TCP server, that is EINPROGRESS.
   */
  private readonly ioNoErrno: string;

  constructor(
    private readonly cfg: McConfig,
    private readonly client: McClient,
    gen: Generation,
  ) {
    this.label = `database ${TYPE}:${cfg.name}`;
    this.pauseMs = cfg.retryPauseSec * 1000;
    this.timeoutMs = cfg.timeoutSec * 1000;
    this.updateTextMax = atLeast(gen, 3, 11) ? 100 : 30;
    const staleErrno = cfg.timeoutSec > 0 && cfg.memcache.startsWith("inet:");
    this.ioNoErrno = `${this.label}: I/O error${staleErrno ? ": Operation now in progress" : ""}`;
  }

  /**
   * Run `attempt` up to max_try times. `judge` turns a reply into a final
   * result, or into the warning of a failed attempt (logged from the
   * second attempt on). Connect failures end the loop.
   */
  private async attempts<R, T>(attempt: () => Promise<Attempt<R>>, judge: (reply: R) => { done: T } | { warn: string }, fallback: T): Promise<McResult<T>> {
    for (let count = 0; count < this.cfg.maxTry; count++) {
      if (count > 0) await Bun.sleep(this.pauseMs);
      const a = await attempt();
      if (a.kind === "connect") {
        warnConnectFailed(this.client.endpoint, a.error);
        break;
      }
      if (a.kind === "reply") {
        const j = judge(a.reply);
        if ("done" in j) return { result: j.done, failed: false };
        if (count > 0) msg.warn(j.warn);
      } else if (count > 0) {
        msg.warn(a.errno ? `${this.label}: I/O error: ${a.errno}` : this.ioNoErrno);
      }
    }
    return { result: fallback, failed: true };
  }

  /** dict_memcache_get(): the value (undefined: not found). */
  get(key: string): Promise<McResult<string | undefined>> {
    const { maxLine, maxData } = this.cfg;
    return this.attempts(
      () => this.client.get(key, maxLine, maxData, this.timeoutMs),
      (r) => {
        switch (r.kind) {
          case "end":
            return { done: undefined };
          case "value":
            return { done: r.value };
          case "unexpected":
            return { warn: `${this.cfg.name}: unexpected memcache server reply: ${r.line.slice(0, 30)}` };
          case "data":
            return { warn: `${this.cfg.name}: EOF receiving memcache server reply` };
          case "toolong":
            return { warn: this.ioNoErrno };
        }
      },
      undefined,
    );
  }

  /** dict_memcache_set(): stored or not. The value is a C string (strlen() counts it). */
  async set(key: string, raw: string): Promise<McResult<boolean>> {
    const { flags, ttl, maxLine, maxData } = this.cfg;
    const value = cString(raw);
    if (value.length > maxData) {
      msg.warn(`${this.label}: data for key ${key} is too long (data_size_limit=${maxData}) -- not stored`);
      return { result: false, failed: false };
    }
    const refused = setRefusal(key, flags);
    if (refused !== undefined) {
      msg.warn(`${this.label}: update failed: not sent: ${refused}`);
      return { result: false, failed: true };
    }
    return this.attempts<LineReply, boolean>(
      () => this.client.set(key, flags, ttl, value, maxLine, this.timeoutMs),
      (r) => {
        if (r.kind === "toolong") return { warn: this.ioNoErrno };
        if (r.line === "STORED") return { done: true };
        return { warn: `${this.label}: update failed: ${r.line.slice(0, this.updateTextMax)}` };
      },
      false,
    );
  }

  /** dict_memcache_del(): deleted, or not found. */
  del(key: string): Promise<McResult<boolean>> {
    return this.attempts<LineReply, boolean>(
      () => this.client.delete(key, this.cfg.maxLine, this.timeoutMs),
      (r) => {
        if (r.kind === "toolong") return { warn: this.ioNoErrno };
        if (r.line === "DELETED") return { done: true };
        if (r.line === "NOT_FOUND") return { done: false };
        return { warn: `${this.label}: delete failed: ${r.line.slice(0, 30)}` };
      },
      false,
    );
  }
}
