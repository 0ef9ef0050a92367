/**
 * The blob container of a chunk, as the backup server writes it:
 * 8-byte magic, CRC32 (IEEE, little-endian) of the payload, payload.
 */
import { zlib } from '../runtime/builtins.js';
import { ChunkguardError } from '../errors.js';
import { plural } from '../findings.js';

/** A ChunkguardError with code EBADBLOB: the bytes are not a valid chunk blob. */
export class BlobError extends ChunkguardError {
  /** The data may be valid but cannot be checked within bounds (a zstd frame without a content size). */
  readonly unverifiable: boolean;
  constructor(message: string, unverifiable = false) {
    super('EBADBLOB', message);
    this.name = 'BlobError';
    this.unverifiable = unverifiable;
  }
}

export const COMPRESSED_BLOB_MAGIC = Uint8Array.from([49, 185, 88, 66, 111, 182, 163, 127]);
export const UNCOMPRESSED_BLOB_MAGIC = Uint8Array.from([66, 171, 56, 7, 190, 131, 112, 161]);
export const BLOB_HEADER_SIZE = 12;

export function encodeBlob(magic: Uint8Array, payload: Uint8Array): Buffer {
  const blob = Buffer.alloc(BLOB_HEADER_SIZE + payload.length);
  blob.set(magic, 0);
  blob.writeUInt32LE(zlib().crc32(payload), 8);
  blob.set(payload, BLOB_HEADER_SIZE);
  return blob;
}

export type BlobKind = 'compressed' | 'uncompressed';

export interface BlobHeader {
  kind: BlobKind;
  crc: number;
  payload: Buffer;
}

/** Parse and verify a blob's header and CRC; throws a BlobError naming what is wrong. */
export function parseBlob(blob: Uint8Array): BlobHeader {
  if (blob.length < BLOB_HEADER_SIZE) {
    throw new BlobError(`blob is ${plural(blob.length, 'byte')}, shorter than its ${BLOB_HEADER_SIZE}-byte header`);
  }
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  const magic = bytes.subarray(0, 8);
  let kind: BlobKind;
  if (magic.equals(COMPRESSED_BLOB_MAGIC)) kind = 'compressed';
  else if (magic.equals(UNCOMPRESSED_BLOB_MAGIC)) kind = 'uncompressed';
  else throw new BlobError(`unknown blob magic ${magic.toString('hex')}`);
  const crc = bytes.readUInt32LE(8);
  const payload = bytes.subarray(BLOB_HEADER_SIZE);
  const actual = zlib().crc32(payload);
  if (actual !== crc) {
    throw new BlobError(`blob CRC32 mismatch: header ${crc.toString(16)}, payload ${actual.toString(16)}`);
  }
  return { kind, crc, payload };
}
