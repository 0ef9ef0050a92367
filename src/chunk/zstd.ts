/**
 * zstd through zstd-codec (WebAssembly, no install script). Its module takes
 * ~20 ms to instantiate, so it is loaded only when a chunk must be written.
 */
import { createRequire } from 'node:module';

interface Simple {
  compress(data: Uint8Array, level: number): Uint8Array | null;
  decompress(data: Uint8Array): Uint8Array | null;
}

let simple: Promise<Simple> | undefined;

function codec(): Promise<Simple> {
  simple ??= new Promise((resolve, reject) => {
    try {
      const require = createRequire(import.meta.url);
      const { ZstdCodec } = require('zstd-codec') as {
        ZstdCodec: { run(callback: (zstd: { Simple: new () => Simple }) => void): void };
      };
      ZstdCodec.run((zstd) => resolve(new zstd.Simple()));
    } catch (error) {
      reject(error);
    }
  });
  return simple;
}

export async function zstdCompress(data: Uint8Array, level: number): Promise<Uint8Array> {
  const result = (await codec()).compress(data, level);
  if (!result) throw new Error('zstd compression failed');
  return result;
}

export async function zstdDecompress(data: Uint8Array): Promise<Uint8Array> {
  const result = (await codec()).decompress(data);
  if (!result) throw new Error('not a valid zstd frame');
  return result;
}
