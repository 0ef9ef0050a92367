/**
 * zstd through zstd-codec (WebAssembly, no install script). Its module takes
 * ~20 ms to instantiate, so it is loaded only when a chunk must be written.
 */
import { createRequire } from 'node:module';

interface Simple {
  compress(data: Uint8Array, level: number): Uint8Array | null;
  decompress(data: Uint8Array): Uint8Array | null;
  /** The decoder's own reading of the content size (it sizes its output buffer from this). */
  contentSize(data: Uint8Array): number | null;
}

let simple: Promise<Simple> | undefined;

function codec(): Promise<Simple> {
  simple ??= new Promise((resolve, reject) => {
    try {
      const require = createRequire(import.meta.url);
      const { ZstdCodec } = require('zstd-codec') as {
        ZstdCodec: { run(callback: (zstd: { Simple: new () => Omit<Simple, 'contentSize'>; Generic: new () => Pick<Simple, 'contentSize'> }) => void): void };
      };
      ZstdCodec.run((zstd) => {
        const generic = new zstd.Generic();
        const instance = new zstd.Simple();
        resolve({
          compress: (data, level) => instance.compress(data, level),
          decompress: (data) => instance.decompress(data),
          contentSize: (data) => generic.contentSize(data),
        });
      });
    } catch (error) {
      reject(error);
    }
  });
  // A failed load is not kept: the next call tries again.
  simple.catch(() => {
    simple = undefined;
  });
  return simple;
}

export async function zstdCompress(data: Uint8Array, level: number): Promise<Uint8Array> {
  const result = (await codec()).compress(data, level);
  if (!result) throw new Error('zstd compression failed');
  return result;
}

/**
 * Decode a frame whose size the caller already bounded (`expectedSize`):
 * the decoder allocates what it reads from the frames, so it must agree.
 */
export async function zstdDecompress(data: Uint8Array, expectedSize: number): Promise<Uint8Array> {
  const zstd = await codec();
  const size = zstd.contentSize(data);
  if (size !== expectedSize) throw new Error(`the frames declare ${size ?? 'no'} bytes in all, not ${expectedSize}`);
  const result = zstd.decompress(data);
  if (!result) throw new Error('not a valid zstd frame');
  return result;
}
