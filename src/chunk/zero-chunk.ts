/**
 * The marker chunk of the atime check: 4 MiB of zeros, stored the way the
 * backup server stores it (compressed blob, zstd level 1: the server's 159
 * bytes, on every Node line), at the path of the SHA-256 of the uncompressed
 * data. Both are constants: the same on every run, they cost nothing to have.
 * test/chunk proves them on every Node line against sha256sum, libzstd's
 * one-shot ZSTD_compress (the server's call), both of chunkguard's zstd
 * codecs, zstd -d and an independent CRC32.
 */
import { publicCall } from '../errors.js';
import { plural } from '../findings.js';
import { BlobError, decodeBlob } from './decode.js';

export const ZERO_CHUNK_SIZE = 4 * 1024 * 1024;

/** SHA-256 of the 4 MiB of zeros (the digest of an unencrypted chunk), as the server names it. */
const DIGEST = 'bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8';

/**
 * The blob: the compressed-blob magic, the CRC32 of the payload, and the payload,
 * libzstd's level-1 frame of 4 MiB of zeros (147 bytes): the frame header with the
 * content size, one compressed block for the first 128 KiB, then 31 RLE blocks of
 * 128 KiB zeros, the last one flagged last.
 */
const BLOB = Buffer.from(
  [
    '31b958426fb6a37f', // magic: compressed, unencrypted
    'b9890d12', // CRC32 of the payload, little-endian
    '28b52ffd', // zstd frame magic
    '8048', // frame header descriptor (4-byte content size), window descriptor
    '00004000', // content size: 4194304
    '540000', // compressed block, 10 bytes
    '1000000100fbff39c002',
    '02001000'.repeat(30), // RLE blocks: 131072 x 0x00
    '03001000', // the last RLE block
  ].join(''),
  'hex',
);

/** Hex SHA-256 of the 4 MiB of zeros (digest of an unencrypted chunk). */
export function zeroChunkDigest(): string {
  return DIGEST;
}

/** The blob, shared inside chunkguard (never handed to a caller, who could change it). */
export function zeroChunkBlobShared(): Buffer {
  return BLOB;
}

/** The compressed blob as written to the store: a copy of its own for each caller. */
export function zeroChunkBlob(): Promise<Buffer> {
  return publicCall('building the zero chunk', undefined, async () => Buffer.from(BLOB));
}

/** Why `bytes` are not a valid zero chunk (any encoder's), or undefined when they are. */
export async function zeroChunkProblem(bytes: Uint8Array): Promise<{ reason: string; unverifiable: boolean } | undefined> {
  // Byte for byte the server's own: valid without loading a decoder.
  if (bytes instanceof Uint8Array && BLOB.equals(bytes)) return undefined;
  let data: Uint8Array;
  try {
    data = await decodeBlob(bytes, ZERO_CHUNK_SIZE);
  } catch (error) {
    if (error instanceof BlobError) return { reason: error.message, unverifiable: error.unverifiable };
    throw error;
  }
  if (data.length !== ZERO_CHUNK_SIZE) return { reason: `it decodes to ${plural(data.length, 'byte')}, not ${ZERO_CHUNK_SIZE}`, unverifiable: false };
  // memcmp against zeros first (2 ms; a findIndex callback over 4 MiB takes 30).
  const decoded = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (decoded.equals(Buffer.alloc(ZERO_CHUNK_SIZE))) return undefined;
  return { reason: `it decodes to data with a non-zero byte at offset ${decoded.findIndex((byte) => byte !== 0)}`, unverifiable: false };
}
