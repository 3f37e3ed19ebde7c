/**
 * standalone.ts - the -S mode: serve one request read from standard input,
 * reply on standard output, then exit, as Postfix's multi_server does with
 * -S (it calls the service once; proxymap's service handles one request).
 *
 * No greeting is sent in this mode (Postfix sends the protocol announcement
 * only to accepted connections). Only the first complete request on standard input is
 * handed to the service; anything after it is ignored, as the reference does.
 * If input ends before a request is complete, nothing is answered; as in
 * Postfix the exit status is 0 either way.
 *
 * Reads: standard input. Writes: standard output. Logs: through the service.
 */
import type { ProxymapService } from "../service/proxymap";
import type { ClientIO } from "../service/session";
import { endOfList } from "./attrList";
import { writeSync } from "node:fs";

/** Serve one request; resolves when the reply is written (or there is none). */
export async function serveOneRequest(
  service: ProxymapService,
  input: AsyncIterable<Uint8Array> = Bun.stdin.stream() as unknown as AsyncIterable<Uint8Array>,
  output: (data: Uint8Array) => void = (d) => writeAll(1, d),
): Promise<void> {
  let finished: () => void = () => {};
  const done = new Promise<void>((r) => (finished = r));
  // The session may reply after feed() returns (a database table): each
  // write checks, once the session has updated its count, whether any
  // request is still in flight.
  const check = () => {
    if (session.pending === 0) finished();
  };
  const io: ClientIO = {
    write(data) {
      output(data);
      queueMicrotask(check);
    },
    close() {
      finished();
    },
  };
  const session = service.connect(io, { greet: false });

  let buf = new Uint8Array(0);
  let complete = false;
  for await (const chunk of input) {
    const next = new Uint8Array(buf.length + chunk.length);
    next.set(buf);
    next.set(chunk, buf.length);
    buf = next;
    const end = endOfList(buf);
    if (end >= 0) {
      buf = buf.subarray(0, end);
      complete = true;
      break;
    }
  }
  if (!complete) {
    // Input ended mid-request: the session answers as the reference does
    // (BAD inside a known request, nothing before `request`).
    if (buf.length) session.feed(buf);
    session.end();
    if (session.pending > 0) await done;
    session.close();
    return;
  }
  session.feed(buf);
  if (session.pending > 0) await done;
  session.close();
}

/** write(2) the whole buffer to a file descriptor, retrying on partial writes. */
function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return;
    }
  }
}
