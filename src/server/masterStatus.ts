/**
 * masterStatus.ts - the status channel to Postfix's master(8).
 *
 * master passes each child a UNIX stream socket on fd 5 (MASTER_STATUS_FD),
 * shared by all processes of one service. A child tells master whether it
 * can take another client by writing a 12-byte struct in host byte order:
 *     { int pid; unsigned generation; int avail }   avail 0 = taken, 1 = available
 * (master_proto.h). master marks a new child available on its own; when every
 * child of a service is taken and a client is waiting, master starts another.
 * master never writes to this socket: reading end-of-file from it means master
 * went away, and the child must exit.
 *
 * Reads: fd 5. Logs: verbose "master_notify: status N", like Postfix.
 */
import { msg } from "../log/msg";
import type { Socket } from "bun";

export const MASTER_STATUS_FD = 5;
export const MASTER_LISTEN_FD = 6;
export const MASTER_STAT_TAKEN = 0;
export const MASTER_STAT_AVAIL = 1;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The 12 bytes of one MASTER_STATUS record. */
export function encodeStatus(pid: number, generation: number, avail: number): Uint8Array {
  const buf = new Uint8Array(12);
  const v = new DataView(buf.buffer);
  v.setInt32(0, pid, littleEndian);
  v.setUint32(4, generation >>> 0, littleEndian);
  v.setInt32(8, avail, littleEndian);
  return buf;
}

/** Decode a MASTER_STATUS record (for tests). */
export function decodeStatus(b: Uint8Array): { pid: number; generation: number; avail: number } {
  const v = new DataView(b.buffer, b.byteOffset, 12);
  return { pid: v.getInt32(0, littleEndian), generation: v.getUint32(4, littleEndian), avail: v.getInt32(8, littleEndian) };
}

export class MasterStatus {
  private sock: Socket<unknown> | undefined;
  private gone = false;

  constructor(
    private readonly generation: number,
    private readonly onMasterGone: () => void,
    private readonly fd = MASTER_STATUS_FD,
  ) {}

  /** Start watching fd 5 for end-of-file. */
  async open(): Promise<void> {
    const lost = () => {
      if (this.gone) return;
      this.gone = true;
      this.onMasterGone();
    };
    this.sock = await Bun.connect({
      fd: this.fd,
      socket: {
        data() {
          // master never writes here; ignore anything that arrives.
        },
        end: lost,
        close: lost,
        error: lost,
      },
    } as unknown as Parameters<typeof Bun.connect>[0]);
  }

  /** Send one status record; false when it could not be written whole. */
  notify(avail: number): boolean {
    const n = this.sock && !this.gone ? this.sock.write(encodeStatus(process.pid, this.generation, avail)) : -1;
    const ok = n === 12;
    if (msg.verbose) msg.info(ok ? `master_notify: status ${avail}` : `master_notify: status ${avail}: write failed`);
    return ok;
  }
}
