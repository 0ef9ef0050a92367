import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DigestSet } from '../../src/gc/digest-set.js';

const hex = (digest: Buffer): string => digest.toString('hex');
const prefixOf = (digestHex: string): number => Number.parseInt(digestHex.slice(0, 4), 16);

/** Every missing digest, prefix by prefix, as hex. */
function missing(set: DigestSet): string[] {
  const listed: string[] = [];
  for (let prefix = 0; prefix < 65536; prefix++) set.missingIn(prefix, (digest) => listed.push(hex(digest)));
  return listed;
}

/**
 * Digests in few prefixes, so that buckets fill several blocks (of 32), half
 * of them sharing their next four bytes (the set's first comparison) too, so
 * that ties are decided by the bytes after them, across blocks as well.
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
  it('agrees with a Set of hex on membership, found and missing digests (random data with duplicates)', () => {
    fc.assert(
      fc.property(
        fc.array(digestArbitrary, { maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 300 }),
        fc.array(digestArbitrary, { maxLength: 50 }),
        (added, repeats, absent) => {
          const set = new DigestSet();
          const expected = new Set<string>();
          // A shared buffer at an offset, as an index's bytes would be given.
          const frame = Buffer.alloc(40);
          const addAll = (digests: Buffer[]) => {
            for (const digest of digests) {
              digest.copy(frame, 5);
              expect(set.add(frame, 5)).toBe(!expected.has(hex(digest)));
              expected.add(hex(digest));
            }
          };
          addAll(added);
          addAll(repeats.map((at) => added[at % added.length]!).filter(Boolean));
          expect(set.size).toBe(expected.size);
          set.seal();
          for (const digest of [...added, ...absent]) expect(set.has(digest)).toBe(expected.has(hex(digest)));

          const sorted = [...expected].sort();
          for (const [index, digestHex] of sorted.entries()) expect(set.indexOf(Buffer.from(digestHex, 'hex'))).toBe(index);
          // The sweep finds every other referenced chunk, and some that are not referenced.
          const found = sorted.filter((_, index) => index % 2 === 0);
          for (const digestHex of found) expect(set.markFoundName(prefixOf(digestHex), Buffer.from(digestHex))).toBe(true);
          for (const digest of absent) expect(set.markFoundName(digest.readUInt16BE(0), Buffer.from(hex(digest)))).toBe(expected.has(hex(digest)));
          const stillMissing = sorted.filter((digestHex) => !found.includes(digestHex) && !absent.some((digest) => hex(digest) === digestHex));
          expect(missing(set)).toEqual(stillMissing);
          expect(set.foundSize).toBe(sorted.length - stillMissing.length);
        },
      ),
      { numRuns: 200 },
    );
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

  it('holds 5,000 digests of one prefix in byte order, half with the same first six bytes, and lists them all as missing', () => {
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
    const listed: string[] = [];
    set.missingIn(0xabcd, (digest) => listed.push(hex(digest)));
    expect(listed).toEqual([...expected].sort());
    for (const digestHex of listed) expect(set.has(Buffer.from(digestHex, 'hex'))).toBe(true);
    expect(missing(set)).toEqual(listed);
  });

  /** Digest `i` of a crafted index: SHA-256 of `i`, with its first `shared` bytes made 0xab. */
  const crafted = (i: number, shared: number): Buffer => createHash('sha256').update(String(i)).digest().fill(0xab, 0, shared);

  it.each([2, 6])('holds 200,000 digests with the same first %i bytes (a crafted index) as it holds random ones, in seconds', (shared) => {
    const set = new DigestSet();
    const bigCount = 200_000;
    const big = Array.from({ length: bigCount }, (_, i) => crafted(i, shared));
    // Prefixes either side: one just short of a bucket's move to sorted runs, one just at it, one past it.
    const around = [
      ...Array.from({ length: 2047 }, (_, i) => crafted(-1 - i, 0).fill(0xaa, 0, 2)),
      ...Array.from({ length: 2048 }, (_, i) => crafted(-5000 - i, 0).fill(0xac, 0, 2)),
      ...Array.from({ length: 2049 }, (_, i) => crafted(-10_000 - i, 0).fill(0xff, 0, 2)),
    ];
    // Per-digest results are gathered, the first few that differ shown: an expect() apiece costs more than the set.
    const wrong: string[] = [];
    const check = (what: string, actual: unknown, expected: unknown) => {
      if (actual !== expected && wrong.push(`${what}: ${String(actual)}, not ${String(expected)}`) > 10) throw new Error(wrong.join('\n'));
    };
    for (const digest of [...big, ...around]) check(`add ${hex(digest)}`, set.add(digest), true);
    check('has before seal', set.has(big[0]!), true);
    check('has absent before seal', set.has(crafted(bigCount, shared)), false);
    // Every digest again, in the other order: all repeats, found in whichever run holds them.
    for (let i = bigCount - 1; i >= 0; i--) check(`add again ${hex(big[i]!)}`, set.add(big[i]!), false);
    for (const digest of around) check(`add again ${hex(digest)}`, set.add(digest), false);
    expect(wrong).toEqual([]);
    expect(set.size).toBe(bigCount + around.length);
    set.seal();

    const sorted = [...big, ...around].map(hex).sort();
    for (const [index, digestHex] of sorted.entries()) check(`indexOf ${digestHex}`, set.indexOf(Buffer.from(digestHex, 'hex')), index);
    for (let i = bigCount; i < bigCount + 1000; i++) check(`has absent ${i}`, set.has(crafted(i, shared)), false);
    // The sweep finds two digests of three, one of them by name.
    for (const [index, digestHex] of sorted.entries()) {
      if (index % 3 === 0) check(`markFound ${digestHex}`, set.markFound(Buffer.from(digestHex, 'hex')), true);
      if (index % 3 === 1) check(`markFoundName ${digestHex}`, set.markFoundName(prefixOf(digestHex), Buffer.from(digestHex)), true);
    }
    check('markFound absent', set.markFound(crafted(bigCount, shared)), false);
    expect(wrong).toEqual([]);
    const kept = sorted.filter((_, index) => index % 3 === 2);
    expect(set.foundSize).toBe(sorted.length - kept.length);
    expect(missing(set)).toEqual(kept);
    expect(set.bytesUsed() / set.size).toBeLessThan(48);
    // A set that shifted what one prefix holds on each add took a minute for 200,000.
  }, 20_000);

  it('a name is referenced only as 64 lowercase hex in its own prefix directory', () => {
    const digestHex = 'ab'.repeat(32);
    const set = new DigestSet();
    set.add(Buffer.from(digestHex, 'hex'));
    set.seal();
    expect(set.markFoundName(0xabab, Buffer.from(digestHex.toUpperCase()))).toBe(false);
    expect(set.markFoundName(0xabab, Buffer.from(`${digestHex}.bad`))).toBe(false);
    expect(set.markFoundName(0x0000, Buffer.from(digestHex))).toBe(false);
    expect(missing(set)).toEqual([digestHex]);
    // A view of a larger buffer, as getdents hands names over.
    expect(set.markFoundName(0xabab, Buffer.from(`..${digestHex}..`).subarray(2, 66))).toBe(true);
    expect(missing(set)).toEqual([]);
  });

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
    expect(() => set.missingIn(0, () => {})).toThrow(/seal\(\) first/);
    set.add(digest);
    set.seal();
    expect(() => set.add(Buffer.alloc(32, 2))).toThrow('DigestSet: add after seal(); every digest must be added before the sweep asks');
    expect(set.size).toBe(1);
  });

  it('refuses a digest that does not fit its buffer, and a prefix out of range', () => {
    const set = new DigestSet();
    expect(() => set.add(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => set.add(Buffer.alloc(40), 9)).toThrow(/no 32-byte digest at offset 9 of a 40-byte buffer/);
    set.seal();
    expect(() => set.missingIn(65536, () => {})).toThrow(/prefix 65536 is not in 0\.\.65535/);
  });
});
