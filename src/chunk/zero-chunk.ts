/**
 * The marker chunk of the atime check: 4 MiB of zeros, stored the way the
 * backup server stores it (compressed blob, zstd level 1: the server's 159
 * bytes, on every Node line), at the path of the SHA-256 of the uncompressed
 * data. Both digest and blob are computed here.
 */
import { createHash } from 'node:crypto';
import { publicCall } from '../errors.js';
import { plural } from '../findings.js';
import { COMPRESSED_BLOB_MAGIC, encodeBlob } from './blob.js';
import { BlobError, decodeBlob } from './decode.js';
import { zstdCompress, zstdEncoderName, type ZstdEncoderName } from './zstd.js';

export const ZERO_CHUNK_SIZE = 4 * 1024 * 1024;
const ZSTD_LEVEL = 1;

let digest: string | undefined;
let blob: Promise<Buffer> | undefined;
/** The blob once built: a chunk equal to it is valid without a decoder. */
let built: Buffer | undefined;

/** Hex SHA-256 of the 4 MiB of zeros (digest of an unencrypted chunk). */
export function zeroChunkDigest(): string {
  // node:crypto, not @noble/hashes: 4 MiB hash is 3-4 ms vs 30-40 ms (docs/design.md).
  digest ??= createHash('sha256').update(Buffer.alloc(ZERO_CHUNK_SIZE)).digest('hex');
  return digest;
}

/** The blob, built once and shared inside chunkguard (never handed to a caller, who could change it). */
export function zeroChunkBlobShared(): Promise<Buffer> {
  if (!blob) {
    blob = zstdCompress(new Uint8Array(ZERO_CHUNK_SIZE), ZSTD_LEVEL).then((payload) => (built = encodeBlob(COMPRESSED_BLOB_MAGIC, payload)));
    // A failure is not kept: the next call tries again.
    blob.catch(() => {
      blob = undefined;
    });
  }
  return blob;
}

/** Which encoder builds the blob in this process: Node's zlib where it has zstd (22.15+), else the WebAssembly fallback. Loads nothing. */
export function zeroChunkEncoder(): ZstdEncoderName {
  return zstdEncoderName();
}

/** The compressed blob as written to the store: a copy of its own for each caller. */
export function zeroChunkBlob(): Promise<Buffer> {
  return publicCall('building the zero chunk', undefined, async () => Buffer.from(await zeroChunkBlobShared()));
}

/** Why `bytes` are not a valid zero chunk (any encoder's), or undefined when they are. */
export async function zeroChunkProblem(bytes: Uint8Array): Promise<{ reason: string; unverifiable: boolean } | undefined> {
  // Byte for byte the blob already built here (the server's own): valid without loading a decoder.
  if (built && bytes instanceof Uint8Array && built.equals(bytes)) return undefined;
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
