/**
 * Decode and validate a chunk blob from an untrusted store, bounded: the
 * header and CRC first (parseBlob), then the zstd frame header is read here
 * so a frame that declares gigabytes is refused before the decoder sizes a
 * buffer for it. Every invalid input ends in a BlobError saying what is wrong.
 */
import { ChunkguardError } from '../errors.js';
import { BlobError, parseBlob } from './blob.js';

export { BlobError };
import { zstdDecompress } from './zstd.js';

/** The backup server's largest chunk. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;

/** The content size a zstd frame header declares (RFC 8878 3.1.1.1), undefined when it declares none. */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  const bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  if (bytes.length < 5 || bytes.readUInt32LE(0) !== ZSTD_MAGIC) throw new BlobError('the payload is not a zstd frame (bad magic)');
  const descriptor = bytes[4]!;
  if (descriptor & 0x08) throw new BlobError('the zstd frame header has its reserved bit set');
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][sizeFlag]!;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes;
  if (bytes.length < at + sizeBytes) throw new BlobError('the zstd frame header is truncated');
  if (dictionaryBytes > 0) throw new BlobError('the zstd frame needs a dictionary, which chunks never use');
  switch (sizeBytes) {
    case 0:
      return undefined;
    case 1:
      return bytes[at]!;
    case 2:
      return bytes.readUInt16LE(at) + 256;
    case 4:
      return bytes.readUInt32LE(at);
    default: {
      const size = bytes.readBigUInt64LE(at);
      return size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size);
    }
  }
}

/** The chunk data inside a blob; rejects with a BlobError saying what is wrong. */
export async function decodeBlob(blob: Uint8Array, maxSize = MAX_CHUNK_SIZE): Promise<Uint8Array> {
  if (!(blob instanceof Uint8Array)) throw new BlobError(`expected the blob as a Uint8Array or Buffer, got ${typeof blob}`);
  if (!Number.isInteger(maxSize) || maxSize < 0) throw new ChunkguardError('EBADINPUT', `maxSize ${maxSize}: expected a whole number of bytes`, { option: 'maxSize', value: String(maxSize) });
  const header = parseBlob(blob);
  if (header.kind === 'uncompressed') {
    if (header.payload.length > maxSize) throw new BlobError(`the uncompressed payload is ${header.payload.length} bytes, more than ${maxSize}`);
    return header.payload;
  }
  const declared = zstdContentSize(header.payload);
  if (declared === undefined) throw new BlobError('the zstd frame does not declare its content size, so it cannot be decoded within bounds', true);
  if (declared > maxSize) throw new BlobError(`the zstd frame declares ${declared} bytes, more than the ${maxSize} a chunk can hold`);
  if (declared === 0) throw new BlobError('the zstd frame declares no content');
  let data: Uint8Array;
  try {
    data = await zstdDecompress(header.payload, declared);
  } catch (error) {
    throw new BlobError(`the zstd data does not decode (${(error as Error).message})`);
  }
  if (data.length !== declared) throw new BlobError(`the zstd data decodes to ${data.length} bytes, not the ${declared} its header declares`);
  return data;
}
