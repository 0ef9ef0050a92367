/**
 * The server's bytes on every Node line: Node's zlib (22.15+) and the WebAssembly
 * fallback (Node 20, and on every line here as a codec of its own) give the zero
 * chunk that libzstd's one-shot ZSTD_compress gives, built in this test from
 * test/fixtures/zstd-oneshot.c; and the blob decoder takes frames without a
 * content size within its bound, refusing truncated frames and trailing junk the
 * same way whichever zlib this Node has.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { COMPRESSED_BLOB_MAGIC, encodeBlob } from '../../src/chunk/blob.js';
import { BlobError, decodeBlob, MAX_CHUNK_SIZE, zstdFrames } from '../../src/chunk/decode.js';
import { ZERO_CHUNK_SIZE, zeroChunkBlob, zeroChunkDigest, zeroChunkProblem } from '../../src/chunk/zero-chunk.js';
import { nodeZlibCodec, wasmCodec, type ZstdCodec, zstdCodec, ZstdOutputTooLarge } from '../../src/chunk/zstd.js';
import { libzstdCompress, libzstdMissing } from './libzstd-peer.js';

const zeros = new Uint8Array(ZERO_CHUNK_SIZE);
const nodeHasZstd = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
const withPeer = it.skipIf(libzstdMissing !== undefined);
/** zstd's CLI reading stdin cannot know the size: a frame without one, with a checksum (an encoder other than libzstd's one-shot). */
const zstdCli = (level: string, size = ZERO_CHUNK_SIZE, ...flags: string[]) =>
  execFileSync('sh', ['-c', `head -c ${size} /dev/zero | zstd ${level} ${flags.join(' ')} -q -c`], { maxBuffer: 4 * MAX_CHUNK_SIZE });
const blobOf = (payload: Uint8Array) => encodeBlob(COMPRESSED_BLOB_MAGIC, payload);

/** Compressible data that is not all one byte: libzstd versions need not agree on its frame, only on what it decodes to. */
function sample(size: number): Buffer {
  const data = Buffer.alloc(size);
  let state = 1;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    data[i] = i % 4096 < 2048 ? (state >> 16) & 0x0f : 97 + (i % 7);
  }
  return data;
}

describe('the zero chunk', () => {
  withPeer(`is the server's 159 bytes: magic, CRC32 and the 147-byte frame of libzstd's ZSTD_compress(level 1)${libzstdMissing ? ` (skipped: ${libzstdMissing})` : ''}`, async () => {
    const blob = await zeroChunkBlob();
    const frame = libzstdCompress(zeros, 1);
    expect(frame.length).toBe(147);
    expect(blob.length).toBe(159);
    expect(blob.equals(blobOf(frame))).toBe(true);
  });

  it(`is what this Node's codec builds, node:zlib where it has zstd, else @bokuweb/zstd-wasm (here ${process.version}: ${nodeHasZstd ? 'node:zlib' : 'the fallback'})`, async () => {
    const codec = await zstdCodec();
    expect(codec.name).toBe(nodeHasZstd ? 'node:zlib' : '@bokuweb/zstd-wasm');
    expect((await zeroChunkBlob()).equals(blobOf(codec.compress(zeros, 1)))).toBe(true);
  });

  it('has the digest of what it holds: SHA-256 of the 4 MiB it decodes to', async () => {
    const data = await decodeBlob(await zeroChunkBlob(), ZERO_CHUNK_SIZE);
    expect(data.length).toBe(ZERO_CHUNK_SIZE);
    expect(Buffer.from(data).equals(zeros)).toBe(true);
    expect(createHash('sha256').update(data).digest('hex')).toBe(zeroChunkDigest());
  });
});

// Each codec this Node has (node:zlib from 22.15); on one without, that it is absent and the fallback is used.
const codecs: Array<[string, () => Promise<ZstdCodec | undefined>, boolean]> = [
  ['node:zlib', async () => nodeZlibCodec(), nodeHasZstd],
  ['@bokuweb/zstd-wasm', wasmCodec, true],
].filter(([, , present]) => present) as Array<[string, () => Promise<ZstdCodec | undefined>, boolean]>;

if (!nodeHasZstd) {
  it(`Node ${process.version} has no zstd in zlib: no node:zlib codec, the zero chunk comes from the fallback`, async () => {
    expect(nodeZlibCodec()).toBeUndefined();
    expect((await zstdCodec()).name).toBe('@bokuweb/zstd-wasm');
  });
}

describe.each(codecs)('the %s codec', (name, load, present) => {
  const when = it.skipIf(!present);
  const suffix = present ? '' : ` (skipped: Node ${process.version} has no zstd in zlib)`;
  const codec = async () => (await load())!;

  when(`is ${name === 'node:zlib' ? 'there on Node 22.15+ and 23.8+' : 'there on every Node line'}${suffix}`, async () => {
    expect((await codec()).name).toBe(name);
  });

  it.skipIf(!present || libzstdMissing !== undefined)(`compresses 4 MiB of zeros at level 1 to libzstd's 147 bytes${suffix || (libzstdMissing ? ` (skipped: ${libzstdMissing})` : '')}`, async () => {
    expect(Buffer.from((await codec()).compress(zeros, 1)).equals(libzstdCompress(zeros, 1))).toBe(true);
  });

  it.skipIf(!present || libzstdMissing !== undefined)(`round-trips other data, and decodes libzstd's frame of it${suffix || (libzstdMissing ? ` (skipped: ${libzstdMissing})` : '')}`, async () => {
    const zstd = await codec();
    const data = sample(1 << 20);
    expect(Buffer.from(zstd.decompress(zstd.compress(data, 1), data.length)).equals(data)).toBe(true);
    expect(Buffer.from(zstd.decompress(libzstdCompress(data, 1), data.length)).equals(data)).toBe(true);
  });

  when(`decodes a frame without a content size, within the bound it is given${suffix}`, async () => {
    const zstd = await codec();
    const frame = zstdCli('-1');
    expect(zstdFrames(frame)[0]!.contentSize).toBeUndefined();
    const data = zstd.decompress(frame, ZERO_CHUNK_SIZE);
    expect(data.length).toBe(ZERO_CHUNK_SIZE);
    expect(Buffer.from(data.buffer, data.byteOffset, data.length).equals(Buffer.from(zeros))).toBe(true);
    expect(() => zstd.decompress(frame, ZERO_CHUNK_SIZE - 1)).toThrow(ZstdOutputTooLarge);
    expect(() => zstd.decompress(frame, 0)).toThrow(ZstdOutputTooLarge);
  });

  when(`names what is wrong with a damaged frame${suffix}`, async () => {
    const zstd = await codec();
    const frame = Buffer.from(zstdCli('-1'));
    frame[frame.length - 1]! ^= 1;
    expect(() => zstd.decompress(frame, ZERO_CHUNK_SIZE)).toThrow(/checksum/i);
    const middle = Buffer.from(zstdCli('-1'));
    middle[40]! ^= 0xff;
    expect(() => zstd.decompress(middle, ZERO_CHUNK_SIZE)).toThrow(/corruption|more than/i);
  });
});

// Only where both exist (Node 22.15+).
(nodeHasZstd ? describe : () => undefined)('node:zlib and the fallback agree on damaged zero chunks', () => {
  it('one bit flipped at each byte of the frame: both decode the same bytes or both refuse', async () => {
    const own = nodeZlibCodec()!;
    const wasm = await wasmCodec();
    const frame = (await zeroChunkBlob()).subarray(12);
    const outcome = (zstd: ZstdCodec, input: Buffer) => {
      try {
        return digestOf(zstd.decompress(input, MAX_CHUNK_SIZE));
      } catch {
        return 'refused';
      }
    };
    const disagreements: string[] = [];
    for (let at = 0; at < frame.length; at++) {
      const input = Buffer.from(frame);
      input[at]! ^= 1 << at % 8;
      try {
        zstdFrames(input);
      } catch {
        continue; // the layout check refuses it before any decoder sees it
      }
      const [a, b] = [outcome(own, input), outcome(wasm, input)];
      if (a !== b) disagreements.push(`byte ${at}: node:zlib ${a}, fallback ${b}`);
    }
    expect(disagreements).toEqual([]);
  });
});

const digestOf = (data: Uint8Array) => `${data.length} bytes, sha256 ${createHash('sha256').update(data).digest('hex').slice(0, 16)}`;

describe('decodeBlob on frames other encoders write', () => {
  withPeer(`a frame without a content size (libzstd, level 1) is decoded and verified, not left unverified${libzstdMissing ? ` (skipped: ${libzstdMissing})` : ''}`, async () => {
    const blob = blobOf(libzstdCompress(zeros, 1, { noContentSize: true }));
    expect((await decodeBlob(blob)).length).toBe(ZERO_CHUNK_SIZE);
    expect(await zeroChunkProblem(blob)).toBeUndefined();
  });

  it('zstd -19 from a pipe (no content size, an 8 MiB window, a checksum): verified', async () => {
    const blob = blobOf(zstdCli('-19'));
    expect(blob.length).toBeLessThan((await zeroChunkBlob()).length);
    expect(await zeroChunkProblem(blob)).toBeUndefined();
  });

  it('one that holds more than the bound: refused while decoding, never grown past it', async () => {
    const blob = blobOf(zstdCli('-1', ZERO_CHUNK_SIZE + 1));
    await expect(decodeBlob(blob, ZERO_CHUNK_SIZE)).rejects.toThrow(/decodes to more than 4194304 bytes/);
    expect(await zeroChunkProblem(blob)).toEqual({ reason: expect.stringMatching(/decodes to more than 4194304 bytes/), unverifiable: false });
    expect((await decodeBlob(blob)).length).toBe(ZERO_CHUNK_SIZE + 1);
  });

  it('a truncated one is refused on every Node line (Node 22 zlib would return the 4 MiB it got so far)', async () => {
    const frame = zstdCli('-1');
    for (const cut of [1, 3, 4, 60]) {
      const blob = blobOf(frame.subarray(0, frame.length - cut));
      await expect(decodeBlob(blob)).rejects.toThrow(/truncated/);
      expect((await zeroChunkProblem(blob))?.unverifiable).toBe(false);
    }
  });

  it('junk after the last frame is refused on every Node line (Node 26 zlib would ignore it)', async () => {
    for (const junk of [[0], [1, 2, 3], [0x28, 0xb5, 0x2f]]) {
      await expect(decodeBlob(blobOf(Buffer.concat([zstdCli('-1'), Buffer.from(junk)])))).rejects.toThrow(/bytes? after the zstd frame (is|are) not a zstd frame/);
    }
    await expect(decodeBlob(blobOf(Buffer.concat([await zeroChunkBlob().then((blob) => blob.subarray(12)), Buffer.from([0])])))).rejects.toThrow(/after the zstd frame/);
  });

  it('two frames of 2 MiB each, and a skippable frame before them, decode to the 4 MiB', async () => {
    const half = zstdCli('-1', ZERO_CHUNK_SIZE / 2);
    const skippable = Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 7, 7, 7]);
    const blob = blobOf(Buffer.concat([skippable, half, half]));
    expect(zstdFrames(blob.subarray(12)).map((frame) => frame.end - frame.start)).toEqual([half.length, half.length]);
    expect(await zeroChunkProblem(blob)).toBeUndefined();
    await expect(decodeBlob(blobOf(skippable))).rejects.toThrow(/only skippable frames/);
  });

  it('a window over 16 MiB without a content size is not decoded: unverifiable, not corrupt (decoders differ on what they take)', async () => {
    const frame = Buffer.from(zstdCli('-1', ZERO_CHUNK_SIZE, '--long=27'));
    expect(zstdFrames(frame)[0]).toMatchObject({ contentSize: undefined, windowSize: 2 ** 27 });
    expect(await zeroChunkProblem(blobOf(frame))).toEqual({ reason: expect.stringMatching(/no content size and a window of 134217728 bytes/), unverifiable: true });
    frame[5] = (31 - 10) << 3; // window descriptor: 2^31
    expect(await zeroChunkProblem(blobOf(frame))).toEqual({ reason: expect.stringMatching(/window of 2147483648 bytes/), unverifiable: true });
    // 16 MiB exactly is decoded.
    frame[5] = (24 - 10) << 3;
    expect(await zeroChunkProblem(blobOf(frame))).toBeUndefined();
  });

  it('every refusal is a BlobError', async () => {
    await expect(decodeBlob(blobOf(zstdCli('-1').subarray(0, 20)))).rejects.toBeInstanceOf(BlobError);
  });
});
