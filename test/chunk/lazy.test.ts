/**
 * Nothing slow where nothing is needed: the zero chunk is a constant, so
 * having it loads and compresses nothing; on a Node with zstd in zlib the
 * WebAssembly fallback is never loaded; and a chunk that is byte for byte the
 * server's is valid without a decoder. Its own file: the module state starts fresh here.
 */
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBlob } from '../../src/chunk/decode.js';
import { zeroChunkBlob, zeroChunkDigest, zeroChunkProblem } from '../../src/chunk/zero-chunk.js';
import { zstdActivity } from '../../src/chunk/zstd.js';

const nodeHasZstd = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';

describe('zstd is loaded lazily', () => {
  it('the blob and its digest load nothing and compress nothing; each caller gets a copy of its own', async () => {
    const blob = await zeroChunkBlob();
    expect(blob.length).toBe(159);
    expect(zeroChunkDigest()).toMatch(/^[0-9a-f]{64}$/);
    blob.fill(1);
    expect((await zeroChunkBlob()).equals(blob)).toBe(false);
    expect(zstdActivity).toEqual({ decompressions: 0, fallbackLoads: 0 });
  });

  it('a chunk identical to the built blob is verified without a decoder (decodeBlob itself always decodes)', async () => {
    const blob = await zeroChunkBlob();
    expect(await zeroChunkProblem(blob)).toBeUndefined();
    expect(zstdActivity.decompressions).toBe(0);
    await decodeBlob(blob);
    expect(zstdActivity.decompressions).toBe(1);
    expect(zstdActivity.fallbackLoads).toBe(nodeHasZstd ? 0 : 1);
  });
});
