/**
 * The marker chunk of the atime check: 4 MiB of zeros, stored the way the
 * backup server stores it (compressed blob, zstd level 1), at the path of the
 * SHA-256 of the uncompressed data. Both digest and blob are computed here.
 */
import { createHash } from 'node:crypto';
import { COMPRESSED_BLOB_MAGIC, encodeBlob } from './blob.js';
import { zstdCompress } from './zstd.js';

export const ZERO_CHUNK_SIZE = 4 * 1024 * 1024;
const ZSTD_LEVEL = 1;

let digest: string | undefined;
let blob: Promise<Buffer> | undefined;

/** Hex SHA-256 of the 4 MiB of zeros (digest of an unencrypted chunk). */
export function zeroChunkDigest(): string {
  // node:crypto, not @noble/hashes: 4 MiB hash is 3-4 ms vs 30-40 ms (docs/design.md).
  digest ??= createHash('sha256').update(Buffer.alloc(ZERO_CHUNK_SIZE)).digest('hex');
  return digest;
}

/** The compressed blob as written to the store. */
export function zeroChunkBlob(): Promise<Buffer> {
  blob ??= zstdCompress(new Uint8Array(ZERO_CHUNK_SIZE), ZSTD_LEVEL).then((payload) =>
    encodeBlob(COMPRESSED_BLOB_MAGIC, payload),
  );
  return blob;
}
