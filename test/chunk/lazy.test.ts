/**
 * Nothing slow where nothing is needed: importing the chunk modules loads no
 * zstd; on a Node with zstd in zlib the WebAssembly fallback is never loaded; and
 * a chunk that is byte for byte the blob already built (the server's own) is
 * valid without a decoder. Its own file: the module state starts fresh here.
 */
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBlob } from '../../src/chunk/decode.js';
import { zeroChunkBlob, zeroChunkEncoder, zeroChunkProblem } from '../../src/chunk/zero-chunk.js';
import { zstdActivity } from '../../src/chunk/zstd.js';

const nodeHasZstd = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';

describe('zstd is loaded lazily', () => {
  it('importing the chunk modules and asking which encoder is used load nothing', () => {
    expect(zeroChunkEncoder()).toBeTypeOf('string');
    expect(zstdActivity).toEqual({ compressions: 0, decompressions: 0, fallbackLoads: 0 });
  });

  it(`builds the blob once, with ${nodeHasZstd ? 'node:zlib and no fallback load' : 'the fallback, loaded once'}`, async () => {
    const blob = await zeroChunkBlob();
    await zeroChunkBlob();
    expect(blob.length).toBe(159);
    expect(zstdActivity).toEqual({ compressions: 1, decompressions: 0, fallbackLoads: nodeHasZstd ? 0 : 1 });
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
