/**
 * Fuzzing the blob parser and validator with random and mutated blobs: no
 * crash, no hang, and for every invalid input a BlobError that says what is
 * wrong. Seeded for reproducible CI runs; FUZZ_SEED and FUZZ_RUNS explore more.
 */
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOB_HEADER_SIZE, COMPRESSED_BLOB_MAGIC, encodeBlob, UNCOMPRESSED_BLOB_MAGIC } from '../../src/chunk/blob.js';
import { BlobError, decodeBlob, MAX_CHUNK_SIZE } from '../../src/chunk/decode.js';
import { ZERO_CHUNK_SIZE, zeroChunkBlob, zeroChunkProblem } from '../../src/chunk/zero-chunk.js';

const settings = { seed: Number(process.env.FUZZ_SEED ?? 20261121), numRuns: Number(process.env.FUZZ_RUNS ?? 1500) };

/** decodeBlob's contract: data within bounds, or a BlobError with a message; never anything else. */
async function decodesOrExplains(blob: Uint8Array): Promise<void> {
  try {
    const data = await decodeBlob(blob);
    expect(data.length).toBeLessThanOrEqual(MAX_CHUNK_SIZE);
  } catch (error) {
    expect(error).toBeInstanceOf(BlobError);
    expect((error as BlobError).message.length).toBeGreaterThan(10);
  }
}

/** Give a payload a valid header and CRC, so it reaches the zstd frame parser and the decoder. */
const withValidCrc = (payload: Uint8Array, magic = COMPRESSED_BLOB_MAGIC) => encodeBlob(magic, payload);

/** A mutation of a valid blob: flip bits, cut, extend or overwrite bytes. */
const mutation = (length: number) =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(length - 1), bit: fc.nat(7) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat(length) }),
    fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(length - 1), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  );

function mutate(blob: Buffer, changes: Array<{ kind: string; at?: number; bit?: number; bytes?: Uint8Array }>): Buffer {
  let out = Buffer.from(blob);
  for (const change of changes) {
    const at = Math.min(change.at ?? 0, Math.max(out.length - 1, 0));
    if (change.kind === 'flip' && out.length > 0) out[at]! ^= 1 << change.bit!;
    if (change.kind === 'cut') out = out.subarray(0, change.at!);
    if (change.kind === 'extend') out = Buffer.concat([out, change.bytes!]);
    if (change.kind === 'overwrite') out.set(change.bytes!.subarray(0, Math.max(out.length - at, 0)), at);
  }
  return out;
}

describe('fuzzing decodeBlob and zeroChunkProblem', () => {
  it('random bytes: a BlobError, never a crash', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), decodesOrExplains), settings);
  });

  it('random payloads behind a valid header and CRC (they reach the zstd parser and decoder)', async () => {
    const zstdish = fc.uint8Array({ maxLength: 400 }).map((tail) => Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tail]));
    await fc.assert(fc.asyncProperty(zstdish, (payload) => decodesOrExplains(withValidCrc(payload))), settings);
  });

  it('mutations of the real zero chunk, with and without the CRC fixed up: decoded within bounds or explained', async () => {
    const blob = await zeroChunkBlob();
    await fc.assert(
      fc.asyncProperty(fc.array(mutation(blob.length), { minLength: 1, maxLength: 4 }), fc.boolean(), async (changes, fixCrc) => {
        let mutated = mutate(blob, changes);
        if (fixCrc && mutated.length >= BLOB_HEADER_SIZE) mutated.writeUInt32LE(crc32(mutated.subarray(BLOB_HEADER_SIZE)), 8);
        await decodesOrExplains(mutated);
        // The validator the check uses: valid only when it really decodes to 4 MiB of zeros.
        const problem = await zeroChunkProblem(mutated);
        if (problem === undefined) {
          const data = await decodeBlob(mutated);
          expect(data.length).toBe(ZERO_CHUNK_SIZE);
          expect(data.every((byte) => byte === 0)).toBe(true);
        } else expect(problem.reason.length).toBeGreaterThan(10);
      }),
      settings,
    );
  });

  it('frames declaring huge content sizes are refused before anything is allocated', async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: BigInt(MAX_CHUNK_SIZE) + 1n, max: 2n ** 64n - 1n }), async (size) => {
        // Frame header: magic, descriptor (8-byte content size, single segment), the size, then junk.
        const header = Buffer.alloc(13);
        header.writeUInt32LE(0xfd2fb528, 0);
        header[4] = 0xe0;
        header.writeBigUInt64LE(size, 5);
        const blob = withValidCrc(Buffer.concat([header, Buffer.from([1, 0, 0])]));
        await expect(decodeBlob(blob)).rejects.toThrow(/declares \d+ bytes, more than/);
      }),
      { ...settings, numRuns: 200 },
    );
  });

  it('each class of invalid input gets its own explanation', async () => {
    const blob = await zeroChunkBlob();
    const cases: Array<[Uint8Array, RegExp]> = [
      [Buffer.alloc(5), /shorter than its 12-byte header/],
      [Buffer.alloc(20), /unknown blob magic/],
      [mutate(blob, [{ kind: 'flip', at: 30, bit: 0 }]), /CRC32 mismatch/],
      [withValidCrc(Buffer.from('not zstd at all')), /not a zstd frame/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), /truncated|not a zstd frame/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x08, 0, 0])), /reserved bit/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x01, 0x50, 0x01, 0, 0])), /dictionary/],
      // No content size declared: decoded within the bound (here to nothing).
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 1, 0, 0])), /decodes to no content/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x41, 0, 0, 1, 2])), /truncated \(a block at byte 6 needs 8 bytes, 2 are left\)/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x00, 0, 0])), /truncated \(a block header at byte 9/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x07, 0, 0])), /block of the reserved type/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x50, 1, 0, 0, 0xaa])), /ends without its checksum/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 1, 0, 0, 9])), /the 1 byte after the zstd frame is not a zstd frame/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 1, 0, 0, 9, 9])), /the 2 bytes after the zstd frame are not a zstd frame/],
      [Buffer.alloc(1), /blob is 1 byte, shorter than its 12-byte header/],
      [withValidCrc(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 10, 0, 0, 0, 1])), /skippable frame .*truncated/],
      [withValidCrc(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x05, 1, 0, 0])), /does not decode|decodes to|declare/],
      [encodeBlob(UNCOMPRESSED_BLOB_MAGIC, Buffer.alloc(MAX_CHUNK_SIZE + 1)), /more than/],
    ];
    for (const [input, reason] of cases) await expect(decodeBlob(input)).rejects.toThrow(reason);
    expect(await zeroChunkProblem(encodeBlob(UNCOMPRESSED_BLOB_MAGIC, Buffer.alloc(16)))).toMatchObject({ reason: expect.stringMatching(/decodes to 16 bytes/) });
    expect(await zeroChunkProblem(encodeBlob(UNCOMPRESSED_BLOB_MAGIC, Buffer.alloc(ZERO_CHUNK_SIZE)))).toBeUndefined();
    expect(await zeroChunkProblem(blob)).toBeUndefined();
  });
});
