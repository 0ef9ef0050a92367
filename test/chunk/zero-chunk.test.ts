import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { COMPRESSED_BLOB_MAGIC, encodeBlob, parseBlob, UNCOMPRESSED_BLOB_MAGIC } from '../../src/chunk/blob.js';
import { ZERO_CHUNK_SIZE, zeroChunkBlob, zeroChunkDigest } from '../../src/chunk/zero-chunk.js';

describe('zero chunk', () => {
  it('has the digest sha256sum gives for 4 MiB of zeros', () => {
    const peer = execFileSync('sh', ['-c', `head -c ${ZERO_CHUNK_SIZE} /dev/zero | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    expect(zeroChunkDigest()).toBe(peer);
    // The digest the backup server's documentation names.
    expect(zeroChunkDigest()).toBe('bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8');
  });

  it('is a compressed blob whose payload zstd -d decodes to 4194304 zero bytes', async () => {
    const blob = await zeroChunkBlob();
    expect([...blob.subarray(0, 8)]).toEqual([49, 185, 88, 66, 111, 182, 163, 127]);
    const payload = blob.subarray(12);
    const decoded = execFileSync('zstd', ['-d', '-c'], { input: payload, maxBuffer: 16 * 1024 * 1024 });
    expect(decoded.length).toBe(ZERO_CHUNK_SIZE);
    expect(decoded.every((byte) => byte === 0)).toBe(true);
    const digest = execFileSync('sha256sum', { input: decoded, encoding: 'utf8' }).split(' ')[0];
    expect(digest).toBe(zeroChunkDigest());
  });

  it('carries a CRC32 that an independent implementation (python3 zlib) agrees with', async () => {
    const blob = await zeroChunkBlob();
    const peer = execFileSync('python3', ['-c', 'import sys, zlib; print(zlib.crc32(sys.stdin.buffer.read()))'], {
      input: blob.subarray(12),
      encoding: 'utf8',
    });
    expect(blob.readUInt32LE(8)).toBe(Number(peer.trim()));
  });
});

describe('blob parser', () => {
  it('round-trips both kinds', () => {
    const payload = Buffer.from('hello chunk');
    expect(parseBlob(encodeBlob(UNCOMPRESSED_BLOB_MAGIC, payload))).toMatchObject({ kind: 'uncompressed', payload });
    expect(parseBlob(encodeBlob(COMPRESSED_BLOB_MAGIC, payload)).kind).toBe('compressed');
  });

  it('names what is wrong with a bad blob', () => {
    const good = encodeBlob(COMPRESSED_BLOB_MAGIC, Buffer.from('payload'));
    expect(() => parseBlob(good.subarray(0, 5))).toThrow(/shorter than its 12-byte header/);
    const badMagic = Buffer.from(good);
    badMagic[0] = 0;
    expect(() => parseBlob(badMagic)).toThrow(/unknown blob magic/);
    const badCrc = Buffer.from(good);
    badCrc[good.length - 1] = badCrc[good.length - 1]! ^ 0xff;
    expect(() => parseBlob(badCrc)).toThrow(/CRC32 mismatch/);
  });
});
