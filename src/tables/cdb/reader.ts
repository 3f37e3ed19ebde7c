/**
 * cdb/reader.ts - a reader of D. J. Bernstein's constant database format
 * (the format tinycdb writes for `postmap cdb:FILE`), by positioned reads on
 * an open file descriptor: the file is never loaded whole and never mapped
 * writable.
 *
 * Why by hand: no npm package reads cdb files without loading them into
 * memory or a native addon, and the format is small and fixed:
 *   - a 2048-byte header of 256 (position, slot count) pairs, little-endian
 *     uint32, one per hash table;
 *   - records (key length, data length, key bytes, data bytes) from byte
 *     2048 up to the first hash table;
 *   - hash tables of (hash, record position) slots, open addressing.
 * hash(key) = h = 5381, then h = (h * 33) ^ byte, modulo 2^32; table h % 256,
 * first slot (h >>> 8) % slots.
 *
 * Why not Bun.mmap: it opens the file O_RDWR, which fails for a daemon
 * without write permission on the file (after the privilege drop).
 *
 * Like tinycdb's mapping, this one relies on postmap's way of rebuilding a
 * cdb file (a new file renamed over the old one: the mapped old inode stays
 * intact). A file truncated in place under a reader raises SIGBUS, in the C
 * proxymap as here.
 *
 * Reads: the cdb file. Logs nothing; I/O errors are thrown (the driver turns
 * them into statuses).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { mapFileReadOnly, type FileMap } from "../../sys/libc";

const HEADER = 2048;

/** One record as positions in the file. */
export interface CdbRecord {
  keyPos: number;
  keyLen: number;
  dataPos: number;
  dataLen: number;
}

export class CdbReader {
  readonly fd: number;
  readonly size: number;
  /** Device and inode at open: a renamed-in replacement has another. */
  readonly dev: number;
  readonly ino: number;
  readonly mtimeMs: number;
  private readonly header: Buffer;
  /** Where the records end (the first hash table). */
  readonly dataEnd: number;
  private readonly scratch = Buffer.alloc(8);
  /** The whole file in memory, when it could be mapped. */
  private map: FileMap | undefined;
  private keyBuf = Buffer.alloc(256);

  /** Open and check the file; throws an Error with code EPROTO when it is not a cdb file. */
  constructor(path: Buffer | string) {
    this.fd = openSync(path, "r");
    try {
      const st = fstatSync(this.fd);
      this.size = st.size;
      this.dev = st.dev;
      this.ino = st.ino;
      this.mtimeMs = st.mtimeMs;
      if (st.size < HEADER) throw protoError();
      this.header = Buffer.alloc(HEADER);
      this.readAt(this.header, 0, HEADER, 0);
      // As tinycdb: the records end where the first hash table starts,
      // clamped to the header and the file size.
      const end = this.header.readUInt32LE(0);
      this.dataEnd = end < HEADER ? HEADER : end > st.size ? st.size : end;
      try {
        this.map = mapFileReadOnly(this.fd, st.size);
      } catch {
        this.map = undefined; // no libc to call: positioned reads do
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    this.map?.unmap();
    this.map = undefined;
    closeSync(this.fd);
  }

  private readAt(buf: Buffer, off: number, len: number, pos: number): void {
    const m = this.map?.view;
    if (m) {
      if (pos + len > m.length) throw protoError();
      m.copy(buf, off, pos, pos + len);
      return;
    }
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, off + done, len - done, pos + done);
      if (n <= 0) throw protoError();
      done += n;
    }
  }

  private u32pair(pos: number): [number, number] {
    const m = this.map?.view;
    if (m) {
      if (pos + 8 > m.length) throw protoError();
      return [m.readUInt32LE(pos), m.readUInt32LE(pos + 4)];
    }
    this.readAt(this.scratch, 0, 8, pos);
    return [this.scratch.readUInt32LE(0), this.scratch.readUInt32LE(4)];
  }

  /** The record of a key (exact bytes), or undefined. */
  find(key: Buffer): CdbRecord | undefined {
    let h = 5381;
    for (let i = 0; i < key.length; i++) h = (((h << 5) + h) ^ key[i]) >>> 0;
    const t = (h & 0xff) * 8;
    const tpos = this.header.readUInt32LE(t);
    const slots = this.header.readUInt32LE(t + 4);
    if (slots === 0) return undefined;
    if (tpos + slots * 8 > this.size) throw protoError();
    let slot = (h >>> 8) % slots;
    for (let probes = 0; probes < slots; probes++) {
      const [sh, rpos] = this.u32pair(tpos + slot * 8);
      if (rpos === 0) return undefined;
      if (sh === h) {
        const [klen, dlen] = this.u32pair(rpos);
        if (klen === key.length) {
          if (rpos + 8 + klen + dlen > this.size) throw protoError();
          const m = this.map?.view;
          let same: boolean;
          if (m) {
            same = m.compare(key, 0, klen, rpos + 8, rpos + 8 + klen) === 0;
          } else {
            if (this.keyBuf.length < klen) this.keyBuf = Buffer.alloc(klen);
            this.readAt(this.keyBuf, 0, klen, rpos + 8);
            same = this.keyBuf.compare(key, 0, klen, 0, klen) === 0;
          }
          if (same) {
            return { keyPos: rpos + 8, keyLen: klen, dataPos: rpos + 8 + klen, dataLen: dlen };
          }
        }
      }
      if (++slot === slots) slot = 0;
    }
    return undefined;
  }

  /** The record at a position of the data area (a sequential walk), or undefined past the end. */
  recordAt(pos: number): CdbRecord | undefined {
    if (pos + 8 > this.dataEnd) return undefined;
    const [klen, dlen] = this.u32pair(pos);
    if (pos + 8 + klen + dlen > this.dataEnd) throw protoError();
    return { keyPos: pos + 8, keyLen: klen, dataPos: pos + 8 + klen, dataLen: dlen };
  }

  /** First record position of a walk. */
  get firstRecord(): number {
    return HEADER;
  }

  /** Bytes of the file as a byte string. */
  bytes(pos: number, len: number): string {
    if (len === 0) return "";
    const m = this.map?.view;
    if (m) {
      if (pos + len > m.length) throw protoError();
      return m.toString("latin1", pos, pos + len);
    }
    const b = Buffer.allocUnsafe(len);
    this.readAt(b, 0, len, pos);
    return b.toString("latin1");
  }
}

function protoError(): Error {
  const e = new Error("Protocol error") as Error & { code: string };
  e.code = "EPROTO";
  return e;
}
