import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DigestSet } from '../../src/gc/digest-set.js';

const hex = (digest: Buffer): string => digest.toString('hex');

/** Every missing digest as hex, by number; each number checked against indexOf. */
function missing(set: DigestSet): string[] {
  const listed: string[] = [];
  set.forEachMissing((index, digest) => {
    expect(set.indexOf(digest)).toBe(index);
    listed.push(hex(digest));
  });
  return listed;
}

/**
 * Digests in few prefixes, half of them sharing their next four bytes too:
 * digests alike but for a few bytes, as a crafted index may hold.
 */
const digestArbitrary = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.uint8Array({ minLength: 32, maxLength: 32 }))
  .map(([prefix, sharesHead, random]) => {
    const digest = Buffer.from(random);
    digest.writeUInt16BE(prefix * 0x4000, 0);
    if (sharesHead) digest.writeUInt32BE(0x01020304, 2);
    return digest;
  });

describe('DigestSet', () => {
  it('agrees with a Set of hex on membership, numbers, found and missing digests (random data with duplicates, at any offset)', () => {
    fc.assert(
      fc.property(
        fc.array(digestArbitrary, { maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 300 }),
        fc.array(digestArbitrary, { maxLength: 50 }),
        fc.integer({ min: 0, max: 7 }),
        (added, repeats, absent, offset) => {
          const set = new DigestSet();
          // Distinct digests in the order first added: their numbers.
          const order: string[] = [];
          // A shared buffer at an offset, as an index's bytes would be given (aligned or not).
          const frame = Buffer.alloc(40);
          const addAll = (digests: Buffer[]) => {
            for (const digest of digests) {
              digest.copy(frame, offset);
              const fresh = !order.includes(hex(digest));
              expect(set.add(frame, offset)).toBe(fresh);
              if (fresh) order.push(hex(digest));
            }
          };
          addAll(added);
          addAll(repeats.map((at) => added[at % added.length]!).filter(Boolean));
          expect(set.size).toBe(order.length);
          set.seal();
          for (const digest of [...added, ...absent]) expect(set.has(digest)).toBe(order.includes(hex(digest)));
          for (const [index, digestHex] of order.entries()) expect(set.indexOf(Buffer.from(digestHex, 'hex'))).toBe(index);
          // The sweep finds every other referenced chunk, and some that are not referenced.
          const found = order.filter((_, index) => index % 2 === 0);
          for (const digestHex of found) expect(set.markFound(Buffer.from(digestHex, 'hex'))).toBe(true);
          for (const digest of absent) expect(set.markFound(digest)).toBe(order.includes(hex(digest)));
          const stillMissing = order.filter((digestHex) => !found.includes(digestHex) && !absent.some((digest) => hex(digest) === digestHex));
          expect(missing(set)).toEqual(stillMissing);
          expect(set.foundSize).toBe(order.length - stillMissing.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads a digest from a buffer whose memory moved away since the last question (a records buffer handed back to its worker)', () => {
    const set = new DigestSet();
    const first = Buffer.alloc(32, 7);
    const second = Buffer.alloc(32, 9);
    set.add(first);
    set.add(second);
    set.seal();
    const memory = new ArrayBuffer(64);
    Buffer.from(memory).set(first, 8);
    expect(set.indexOf(Buffer.from(memory), 8)).toBe(0);
    structuredClone(memory, { transfer: [memory] });
    expect(memory.byteLength).toBe(0);
    const next = new ArrayBuffer(64);
    Buffer.from(next).set(second, 8);
    expect(set.indexOf(Buffer.from(next), 8)).toBe(1);
    expect(set.indexOf(Buffer.from(next), 0)).toBe(-1);
  });

  it('an empty set has nothing and misses nothing', () => {
    const set = new DigestSet();
    const digest = Buffer.alloc(32, 7);
    expect(set.has(digest)).toBe(false);
    set.seal();
    expect(set.size).toBe(0);
    expect(set.indexOf(digest)).toBe(-1);
    expect(set.markFound(digest)).toBe(false);
    expect(missing(set)).toEqual([]);
    expect(set.bytesUsed()).toBeLessThan(2 * 1024 * 1024);
  });

  it('sizes its table for the digests expected, up to 1 M slots, and holds more than expected all the same', () => {
    expect(new DigestSet().bytesUsed()).toBe(4096 * 4);
    expect(new DigestSet({ expected: 3000 }).bytesUsed()).toBe(4096 * 4);
    expect(new DigestSet({ expected: 100_000 }).bytesUsed()).toBe(262_144 * 4);
    expect(new DigestSet({ expected: 1e12 }).bytesUsed()).toBe(1024 * 1024 * 4);
    const set = new DigestSet({ expected: 10 });
    const digests = Array.from({ length: 20_000 }, (_, i) => createHash('sha256').update(`more ${i}`).digest());
    for (const digest of digests) set.add(digest);
    set.seal();
    expect(set.size).toBe(20_000);
    for (const [index, digest] of digests.entries()) expect(set.indexOf(digest)).toBe(index);
  });

  it('holds 5,000 digests of one prefix, half with the same first six bytes, and lists them all as missing, in the order added', () => {
    const set = new DigestSet();
    const expected = new Set<string>();
    let seed = 1;
    for (let i = 0; i < 5000; i++) {
      const digest = Buffer.alloc(32);
      digest.writeUInt16BE(0xabcd, 0);
      for (let at = 2; at < 32; at++) digest[at] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      if (i % 2 === 0) digest.writeUInt32BE(0x80000000, 2);
      set.add(digest);
      set.add(digest);
      expected.add(hex(digest));
    }
    set.seal();
    expect(set.size).toBe(expected.size);
    const listed = missing(set);
    expect(listed).toEqual([...expected]);
    for (const digestHex of listed) expect(set.has(Buffer.from(digestHex, 'hex'))).toBe(true);
  });

  /**
   * Digest `i` of a crafted index: SHA-256 of `i` with its first `shared` bytes made 0xab, or
   * (`counter`) 28 bytes of 0xab and `i` in the last four: digests alike but for a few bits.
   */
  const crafted = (i: number, shared: number | 'counter'): Buffer => {
    if (shared === 'counter') {
      const digest = Buffer.alloc(32, 0xab);
      digest.writeInt32BE(i, 28);
      return digest;
    }
    return createHash('sha256').update(String(i)).digest().fill(0xab, 0, shared);
  };

  it.each([2, 6, 'counter'] as const)('holds 200,000 digests crafted alike (first bytes shared: %s) as it holds random ones, in seconds', (shared) => {
    const set = new DigestSet();
    const bigCount = 200_000;
    const big = Array.from({ length: bigCount }, (_, i) => crafted(i, shared));
    const others = Array.from({ length: 6000 }, (_, i) => crafted(-1 - i, 0));
    // Per-digest results are gathered, the first few that differ shown: an expect() apiece costs more than the set.
    const wrong: string[] = [];
    const check = (what: string, actual: unknown, expected: unknown) => {
      if (actual !== expected && wrong.push(`${what}: ${String(actual)}, not ${String(expected)}`) > 10) throw new Error(wrong.join('\n'));
    };
    const order = [...big, ...others];
    for (const digest of order) check(`add ${hex(digest)}`, set.add(digest), true);
    check('has before seal', set.has(big[0]!), true);
    check('has absent before seal', set.has(crafted(bigCount, shared)), false);
    // Every digest again, in the other order: all repeats.
    for (let i = order.length - 1; i >= 0; i--) check(`add again ${hex(order[i]!)}`, set.add(order[i]!), false);
    expect(wrong).toEqual([]);
    expect(set.size).toBe(order.length);
    set.seal();

    for (const [index, digest] of order.entries()) check(`indexOf ${hex(digest)}`, set.indexOf(digest), index);
    for (let i = bigCount; i < bigCount + 1000; i++) check(`has absent ${i}`, set.has(crafted(i, shared)), false);
    // The sweep finds two digests of three.
    for (const [index, digest] of order.entries()) if (index % 3 !== 2) check(`markFound ${hex(digest)}`, set.markFound(digest), true);
    check('markFound absent', set.markFound(crafted(bigCount, shared)), false);
    expect(wrong).toEqual([]);
    const kept = order.filter((_, index) => index % 3 === 2).map(hex);
    expect(set.foundSize).toBe(order.length - kept.length);
    const listed: string[] = [];
    set.forEachMissing((_, digest) => listed.push(hex(digest)));
    expect(listed).toEqual(kept);
    expect(set.bytesUsed() / set.size).toBeLessThan(48);
  }, 20_000);

  it('answers fast for digests crafted to fill one long run of the table between them (each in a slot of its own), and for absent ones amid it', () => {
    const set = new DigestSet();
    const count = 150_000;
    const digestAt = (i: number, low: number): Buffer => {
      const digest = createHash('sha256').update(`${i}/${low}`).digest();
      // First bytes i << 14: one after another in digest order, every slot of a run taken.
      digest.writeUInt32BE(((i << 14) | low) >>> 0, 0);
      return digest;
    };
    for (let i = 0; i < count; i++) set.add(digestAt(i, 0));
    set.seal();
    let hits = 0;
    let absent = 0;
    for (let i = 0; i < count; i++) {
      if (set.has(digestAt(i, 0))) hits++;
      if (!set.has(digestAt(i, 1))) absent++;
    }
    expect({ hits, absent }).toEqual({ hits: count, absent: count });
  }, 20_000);

  it('answers fast for digests that differ only in the top bits of each word (a weak keyed hash keeps them in a few slots)', () => {
    const set = new DigestSet();
    const count = 300_000;
    /** Digest i: every word 0x0abcdef0 but its top four bits, which spell i's eight nibbles. */
    const digestAt = (i: number): Buffer => {
      const words = new Uint32Array(8);
      for (let word = 0; word < 8; word++) words[word] = 0x0abcdef0 | (((i >>> (4 * word)) & 0xf) << 28);
      return Buffer.from(words.buffer);
    };
    for (let i = 0; i < count; i++) set.add(digestAt(i));
    expect(set.size).toBe(count);
    set.seal();
    let hits = 0;
    for (let i = 0; i < count + 1000; i++) if (set.has(digestAt(i))) hits++;
    expect(hits).toBe(count);
  }, 20_000);

  it('answers fast for many crowds of 1,000 digests that share their first four bytes, each crowd short of a long run', () => {
    const set = new DigestSet();
    const crowds = 1000;
    const each = 1000;
    const bytes = randomBytes(crowds * each * 32);
    // Crowds far apart in the table, every digest of one at the same place.
    for (let crowd = 0; crowd < crowds; crowd++) for (let i = 0; i < each; i++) bytes.writeUInt32BE((crowd * 0x418937) >>> 0, (crowd * each + i) * 32);
    for (let at = 0; at < bytes.length; at += 32) set.add(bytes, at);
    expect(set.size).toBe(crowds * each);
    set.seal();
    let hits = 0;
    for (let at = 0; at < bytes.length; at += 32) if (set.has(bytes, at)) hits++;
    expect(hits).toBe(crowds * each);
  }, 20_000);

  it('markFoundAt marks the digest indexOf numbered, counted once; other numbers and an unsealed set are refused', () => {
    const set = new DigestSet();
    const digests = [Buffer.alloc(32, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)];
    for (const digest of digests) set.add(digest);
    expect(() => set.markFoundAt(0)).toThrow(/seal\(\) first/);
    set.seal();
    set.markFoundAt(set.indexOf(digests[1]!));
    set.markFoundAt(set.indexOf(digests[1]!));
    expect(set.foundSize).toBe(1);
    expect(missing(set)).toEqual([digests[0]!.toString('hex'), digests[2]!.toString('hex')]);
    for (const wrong of [-1, 3, 1.5]) expect(() => set.markFoundAt(wrong)).toThrow(RangeError);
  });

  it('refuses an add after seal, and the sweep before it, with a clear error', () => {
    const set = new DigestSet();
    const digest = Buffer.alloc(32, 1);
    expect(() => set.markFound(digest)).toThrow(/seal\(\) first/);
    expect(() => set.forEachMissing(() => {})).toThrow(/seal\(\) first/);
    set.add(digest);
    set.seal();
    expect(() => set.add(Buffer.alloc(32, 2))).toThrow('DigestSet: add after seal(); every digest must be added before the sweep asks');
    expect(set.size).toBe(1);
  });

  it('refuses a digest that does not fit its buffer', () => {
    const set = new DigestSet();
    expect(() => set.add(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => set.add(Buffer.alloc(40), 9)).toThrow(/no 32-byte digest at offset 9 of a 40-byte buffer/);
    expect(() => set.add(Buffer.alloc(40), -1)).toThrow(RangeError);
    set.seal();
    expect(() => set.has(Buffer.alloc(40), 12)).toThrow(/no 32-byte digest at offset 12/);
  });
});
