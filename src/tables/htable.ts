/**
 * htable.ts - the order in which Postfix's in-memory hash table
 * (util/htable.c) lists its members, so that `sequence` on an in-memory
 * table (texthash, inline) walks the keys in the reference's order.
 *
 * The reference hashes with a modified 64-bit FNV-1a (each byte + 1) whose
 * basis is XORed with a random seed once per process, unless the
 * environment holds NORANDOMIZE (util/hash_fnv.c). Buckets start at 13, the
 * table doubles (size * 2 | 1) when it is full, new members go to the head
 * of their bucket chain, and growing re-links the old chains bucket by
 * bucket. The listing walks buckets 0..size-1, each chain from its head.
 * With NORANDOMIZE set in both processes our order equals the reference's;
 * without it both orders are random per process, like the reference.
 *
 * Lookups never come here (tables use a JavaScript Map); the order is
 * computed only when a sequence starts. Reads the NORANDOMIZE environment
 * variable on first use; logs nothing.
 */

const TWO32 = 4294967296;
/** FNV offset basis 0xcbf29ce484222325, as two 32-bit halves. */
let basisHi = 0xcbf29ce4;
let basisLo = 0x84222325;
let seeded = false;

function seedOnce(): void {
  if (seeded) return;
  seeded = true;
  if (process.env.NORANDOMIZE) return;
  const seed = new Uint32Array(2);
  crypto.getRandomValues(seed);
  basisHi = (basisHi ^ seed[0]) >>> 0;
  basisLo = (basisLo ^ seed[1]) >>> 0;
}

/** Tests: forget the seed, so the next use reads NORANDOMIZE again. */
export function resetHashSeed(): void {
  seeded = false;
  basisHi = 0xcbf29ce4;
  basisLo = 0x84222325;
}

/** hash_fnv(key) % size for a byte string, in 32-bit halves (no BigInt). */
function bucketOf(key: string, size: number): number {
  let hi = basisHi;
  let lo = basisLo;
  for (let i = 0; i < key.length; i++) {
    lo = (lo ^ ((key.charCodeAt(i) & 0xff) + 1)) >>> 0;
    // (hi:lo) * 0x100000001b3 mod 2^64 = (hi:lo) * 0x1b3 + (lo << 40).
    const t = lo * 0x1b3;
    const tLo = t % TWO32;
    const carry = Math.floor(t / TWO32);
    hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) % TWO32;
    lo = tLo;
  }
  // (hi * 2^32 + lo) mod size, keeping every product below 2^53.
  const r = (((hi % size) * 65536) % size) * 65536 % size;
  return (r + (lo % size)) % size;
}

/**
 * The listing order of keys entered in `inserted` order into a fresh
 * htable_create(0) table (no deletions).
 */
export function htableOrder(inserted: readonly string[]): string[] {
  seedOnce();
  let size = 13;
  let buckets: string[][] = Array.from({ length: size }, () => []);
  let used = 0;
  for (const key of inserted) {
    if (used >= size) {
      // htable_grow(): walk old buckets in order, each chain from its head,
      // linking every member at the head of its new bucket.
      const old = buckets;
      size = (2 * size) | 1;
      buckets = Array.from({ length: size }, () => []);
      for (const chain of old) {
        // Chains are stored tail-first (index 0 = oldest), so the head is last.
        for (let j = chain.length - 1; j >= 0; j--) buckets[bucketOf(chain[j], size)].push(chain[j]);
      }
    }
    buckets[bucketOf(key, size)].push(key);
    used++;
  }
  const out: string[] = [];
  for (const chain of buckets) for (let j = chain.length - 1; j >= 0; j--) out.push(chain[j]);
  return out;
}
