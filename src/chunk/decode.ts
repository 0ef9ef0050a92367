/**
 * Decode and validate a chunk blob from an untrusted store, bounded: the
 * header and CRC first (parseBlob), then the zstd frames' layout is walked here
 * (RFC 8878: frame headers, block headers, checksums), so a frame that declares
 * gigabytes, is cut short or is followed by junk is refused
 * before a decoder sees it, the same way on every Node line (Node 22's zlib
 * returns what a truncated frame holds so far; Node 26's ignores bytes after the
 * last frame). Each frame is then decoded within what is left of the bound.
 * Every invalid input ends in a BlobError saying what is wrong.
 */
import { ChunkguardError } from '../errors.js';
import { agree, plural } from '../findings.js';
import { BlobError, parseBlob } from './blob.js';
import { zstdCodec, zstdDecompress, ZstdOutputTooLarge } from './zstd.js';

export { BlobError };

/** The backup server's largest chunk. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames: 0x184D2A50 to 0x184D2A5F, then a 4-byte length. */
const SKIPPABLE_MAGIC = 0x184d2a50;

interface FrameHeader {
  size: number;
  /** Undefined when the frame does not declare it. */
  contentSize?: number;
  /** The history the decoder must keep (RFC 8878 3.1.1.1.2); for a single-segment frame, its content size. */
  windowSize: number;
  checksum: boolean;
}

/** The header of the zstd frame at `at` (its magic already checked). */
function frameHeader(bytes: Buffer, at: number): FrameHeader {
  if (bytes.length < at + 5) throw new BlobError('the zstd frame header is truncated');
  const descriptor = bytes[at + 4]!;
  if (descriptor & 0x08) throw new BlobError('the zstd frame header has its reserved bit set');
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  const sizeAt = at + 5 + (singleSegment ? 0 : 1) + dictionaryBytes;
  const size = sizeAt + sizeBytes - at;
  if (bytes.length < at + size) throw new BlobError('the zstd frame header is truncated');
  if (dictionaryBytes > 0) throw new BlobError('the zstd frame needs a dictionary, which chunks never use');
  let contentSize: number | undefined;
  if (sizeBytes === 1) contentSize = bytes[sizeAt]!;
  else if (sizeBytes === 2) contentSize = bytes.readUInt16LE(sizeAt) + 256;
  else if (sizeBytes === 4) contentSize = bytes.readUInt32LE(sizeAt);
  else if (sizeBytes === 8) {
    const declared = bytes.readBigUInt64LE(sizeAt);
    contentSize = declared > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(declared);
  }
  let windowSize = contentSize ?? 0;
  if (!singleSegment) {
    const window = bytes[at + 5]!;
    const base = 2 ** (10 + (window >> 3));
    windowSize = base + (base / 8) * (window & 7);
  }
  return { size, contentSize, windowSize, checksum: (descriptor & 0x04) !== 0 };
}

/** The content size a zstd frame header declares (RFC 8878 3.1.1.1), undefined when it declares none. */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  const bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  if (bytes.length < 4 || bytes.readUInt32LE(0) !== ZSTD_MAGIC) throw new BlobError('the payload is not a zstd frame (bad magic)');
  return frameHeader(bytes, 0).contentSize;
}

export interface ZstdFrame extends FrameHeader {
  start: number;
  end: number;
}

/** The zstd frames of a payload, each complete, skippable frames left out; a BlobError for anything else, junk after the last frame included. */
export function zstdFrames(payload: Uint8Array): ZstdFrame[] {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const frames: ZstdFrame[] = [];
  let at = 0;
  do {
    const magic = bytes.length >= at + 4 ? bytes.readUInt32LE(at) : undefined;
    if (magic !== undefined && (magic & 0xfffffff0) === SKIPPABLE_MAGIC) {
      if (bytes.length < at + 8 || bytes.length < at + 8 + bytes.readUInt32LE(at + 4)) throw new BlobError('a skippable frame in the zstd payload is truncated');
      at += 8 + bytes.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      throw new BlobError(at === 0 ? 'the payload is not a zstd frame (bad magic)' : `the ${plural(bytes.length - at, 'byte')} after the zstd frame ${agree(bytes.length - at, 'is', 'are')} not a zstd frame (bad magic)`);
    }
    const header = frameHeader(bytes, at);
    let end = at + header.size;
    for (let last = false; !last; ) {
      if (bytes.length < end + 3) throw new BlobError(`the zstd frame is truncated (a block header at byte ${end} is cut short)`);
      const block = bytes.readUIntLE(end, 3);
      last = (block & 1) === 1;
      const type = (block >> 1) & 3;
      if (type === 3) throw new BlobError(`the zstd frame has a block of the reserved type at byte ${end}`);
      // An RLE block (1) carries one byte however many it repeats.
      const body = type === 1 ? 1 : block >>> 3;
      if (bytes.length < end + 3 + body) throw new BlobError(`the zstd frame is truncated (a block at byte ${end} needs ${plural(body, 'byte')}, ${bytes.length - end - 3} ${agree(bytes.length - end - 3, 'is', 'are')} left)`);
      end += 3 + body;
    }
    if (header.checksum) {
      if (bytes.length < end + 4) throw new BlobError('the zstd frame is truncated (it ends without its checksum)');
      end += 4;
    }
    frames.push({ ...header, start: at, end });
    at = end;
  } while (at < bytes.length);
  return frames;
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
  const frames = zstdFrames(header.payload);
  if (frames.length === 0) throw new BlobError('the zstd payload holds only skippable frames');
  // The bound on a decoder's history when the frame does not say how much it holds. A larger
  // window may still be valid (zstd's one-shot decoder takes up to 2^31, its streaming ones
  // 2^27 unless told otherwise), so such a frame is left unverified, not called corrupt.
  const maxWindow = Math.max(maxSize, MAX_CHUNK_SIZE);
  let declared: number | undefined = 0;
  for (const frame of frames) {
    if (frame.contentSize === undefined) {
      declared = undefined;
      if (frame.windowSize > maxWindow) throw new BlobError(`the zstd frame declares no content size and a window of ${frame.windowSize} bytes, more than the ${maxWindow} a chunk can need, so it is not decoded`, true);
    } else if (frame.contentSize > maxSize) {
      throw new BlobError(`the zstd frame declares ${frame.contentSize} bytes, more than the ${maxSize} a chunk can hold`);
    } else if (declared !== undefined) declared += frame.contentSize;
  }
  if (declared !== undefined && declared > maxSize) throw new BlobError(`the zstd frames declare ${declared} bytes in all, more than the ${maxSize} a chunk can hold`);
  if (declared === 0) throw new BlobError('the zstd frame declares no content');
  // Loaded first, outside the frames' try: a decoder that cannot be loaded says nothing about the data.
  await zstdCodec();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const frame of frames) {
    const left = maxSize - total;
    if (frame.contentSize !== undefined && frame.contentSize > left) throw new BlobError(`the zstd data decodes to more than ${maxSize} bytes`);
    let data: Uint8Array;
    try {
      data = await zstdDecompress(header.payload.subarray(frame.start, frame.end), frame.contentSize ?? left);
    } catch (error) {
      if (error instanceof ZstdOutputTooLarge) {
        throw new BlobError(frame.contentSize === undefined ? `the zstd data decodes to more than ${maxSize} bytes` : `the zstd data decodes to more than the ${frame.contentSize} bytes its header declares`);
      }
      throw new BlobError(`the zstd data does not decode (${(error as Error).message})`);
    }
    if (frame.contentSize !== undefined && data.length !== frame.contentSize) throw new BlobError(`the zstd data decodes to ${plural(data.length, 'byte')}, not the ${frame.contentSize} its header declares`);
    parts.push(data);
    total += data.length;
  }
  if (total === 0) throw new BlobError('the zstd data decodes to no content');
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}
