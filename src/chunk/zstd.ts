/**
 * zstd for chunk blobs, from one of two codecs that both give the backup
 * server's bytes (the one-shot `ZSTD_compress` it calls: for 4 MiB of zeros at
 * level 1, a 147-byte frame, so the 159-byte zero chunk):
 *   node:zlib           Node's own zstd (`zstdCompressSync`, Node 22.15+ and 23.8+):
 *                       in-process, nothing to load;
 *   @bokuweb/zstd-wasm  libzstd compiled to WebAssembly, for Node 20 (and 22 before
 *                       22.15): loaded on first use only (~15 ms), never at import.
 * chunkguard decodes with them (a zero chunk it finds that is not byte for byte the
 * server's); it never needs to encode: the zero chunk is a constant (zero-chunk.ts),
 * which the tests prove against both codecs' compress and libzstd's.
 * Measurements and the candidates that lost: docs/design.md, "Dependencies".
 * Both decoders here get one complete frame whose layout decode.ts already checked
 * and bounded, and never return more than the `maxSize` they are given.
 */
import { requirePackage } from '../runtime/embedded.js';
import { zlib } from '../runtime/builtins.js';

export type ZstdEncoderName = 'node:zlib' | '@bokuweb/zstd-wasm';

export interface ZstdCodec {
  readonly name: ZstdEncoderName;
  /** One frame that declares its content size (one-shot). */
  compress(data: Uint8Array, level: number): Uint8Array;
  /** The content of one complete frame, at most `maxSize` bytes; throws when it holds more or does not decode. */
  decompress(frame: Uint8Array, maxSize: number): Uint8Array;
}

/** What chunkguard did with zstd in this process (tests check that nothing slow happens where nothing is needed). */
export const zstdActivity = { decompressions: 0, fallbackLoads: 0 };

/** The zstd half of node:zlib (Node 22.15+), which @types/node for Node 20 does not declare. */
interface ZlibZstd {
  zstdCompressSync?(data: Uint8Array, options: { pledgedSrcSize: number; params: Record<number, number> }): Buffer;
  zstdDecompressSync?(data: Uint8Array, options: { maxOutputLength: number }): Buffer;
  constants: { ZSTD_c_compressionLevel?: number };
}

/** A frame holds more than the decoder was allowed to produce. */
export class ZstdOutputTooLarge extends Error {
  constructor(readonly maxSize: number) {
    super(`it holds more than ${maxSize} bytes`);
  }
}
const tooMuch = (maxSize: number) => new ZstdOutputTooLarge(maxSize);

let native: ZstdCodec | null | undefined;

/** Node's own zstd, or undefined on a Node that has none (20, and 22 before 22.15). */
export function nodeZlibCodec(): ZstdCodec | undefined {
  if (native === undefined) {
    const { zstdCompressSync, zstdDecompressSync, constants } = zlib() as unknown as ZlibZstd;
    const level = constants.ZSTD_c_compressionLevel;
    native =
      zstdCompressSync && zstdDecompressSync && level !== undefined
        ? {
            name: 'node:zlib',
            // The whole input, its size pledged: one frame that declares its content size, as ZSTD_compress writes it.
            compress: (data, compressionLevel) => zstdCompressSync(data, { pledgedSrcSize: data.length, params: { [level]: compressionLevel } }),
            decompress: (frame, maxSize) => {
              let data: Buffer;
              try {
                // maxOutputLength bounds the output as it grows; it must be at least 1.
                data = zstdDecompressSync(frame, { maxOutputLength: Math.max(maxSize, 1) });
              } catch (error) {
                if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooMuch(maxSize);
                throw error;
              }
              if (data.length > maxSize) throw tooMuch(maxSize);
              return data;
            },
          }
        : null;
  }
  return native ?? undefined;
}

/** The public API of @bokuweb/zstd-wasm 0.0.x (its Node entry is CommonJS). */
interface BokuwebZstd {
  init(): Promise<void>;
  compress(data: Uint8Array, level: number): Uint8Array;
  /** Sizes its output from the frame's content size, else `defaultHeapSize`; ZSTD_decompress fails when the frame holds more. */
  decompress(frame: Uint8Array, options: { defaultHeapSize: number }): Uint8Array;
}

/** zstd's error codes (zstd_errors.h) that a frame can cause; the WebAssembly build reports them negated ("code -20"). */
const ZSTD_ERRORS: Record<number, string> = {
  10: 'unknown frame descriptor',
  14: 'unsupported frame parameter',
  16: 'frame requires too much memory for decoding',
  20: 'data corruption detected',
  22: "restored data doesn't match checksum",
  24: 'corrupted literals header',
  72: 'src size is incorrect',
};
const DST_SIZE_TOO_SMALL = 70;

let fallback: Promise<ZstdCodec> | undefined;

/** The WebAssembly fallback, loaded once, on first use. */
export function wasmCodec(): Promise<ZstdCodec> {
  fallback ??= (async (): Promise<ZstdCodec> => {
    const zstd = requirePackage('@bokuweb/zstd-wasm', import.meta.url) as BokuwebZstd;
    await zstd.init();
    zstdActivity.fallbackLoads++;
    return {
      name: '@bokuweb/zstd-wasm',
      compress: (data, level) => zstd.compress(data, level),
      decompress: (frame, maxSize) => {
        let data: Uint8Array;
        try {
          // A frame that declares its size gets that much (decode.ts checked it is at most maxSize); one that does not, maxSize.
          data = zstd.decompress(frame, { defaultHeapSize: maxSize });
        } catch (error) {
          const code = -Number(/code (-?\d+)$/.exec((error as Error).message)?.[1]);
          if (code === DST_SIZE_TOO_SMALL) throw tooMuch(maxSize);
          throw Number.isInteger(code) ? new Error(ZSTD_ERRORS[code] ?? `zstd error ${code}`) : error;
        }
        if (data.length > maxSize) throw tooMuch(maxSize);
        return data;
      },
    };
  })();
  // A failed load is not kept: the next call tries again.
  fallback.catch(() => {
    fallback = undefined;
  });
  return fallback;
}

/** This Node's codec: node:zlib's, else the fallback, loaded now (before a thread switches to another user, say). */
export function zstdCodec(): Promise<ZstdCodec> {
  const own = nodeZlibCodec();
  return own ? Promise.resolve(own) : wasmCodec();
}

/** The content of one complete frame (layout checked by the caller), at most `maxSize` bytes. */
export async function zstdDecompress(frame: Uint8Array, maxSize: number): Promise<Uint8Array> {
  const zstd = await zstdCodec();
  zstdActivity.decompressions++;
  return zstd.decompress(frame, maxSize);
}
