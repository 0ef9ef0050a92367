/**
 * What the single executable is built from, pinned: the Node inside it (the registry's
 * node-linux-<arch> package: the tarball's integrity as the registry states it, and the
 * binary's SHA-256, checked on download and on every build from the cache) and where
 * downloads are kept. scripts/sea.mjs builds with them; bench/run.mjs times that Node.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The 24 LTS line: zstd in node:zlib, V8's code cache in the blob, execArgvExtension. */
export const NODE_VERSION = '24.22.3';

export const NODE_PACKAGES = {
  x64: {
    integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    binarySha256: 'a7ec1b37e6ff9d187e4198c5b6df9a4eb1c74dd31804fb3bac55cc4ceca1ac01',
  },
  arm64: {
    integrity: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
    binarySha256: '8f9c2a55879e9705cb285b6cdd649d95df642c6720f052cb30f300d2677da99f',
  },
};

/** The download cache: CHUNKGUARD_NODE_CACHE, else /var/cache/chunkguard-node as root, else ~/.cache/chunkguard-node. */
export function downloadCache() {
  return process.env.CHUNKGUARD_NODE_CACHE ?? (process.getuid?.() === 0 ? '/var/cache/chunkguard-node' : join(homedir(), '.cache', 'chunkguard-node'));
}

/** Where a package fetched by scripts/sea.mjs is unpacked. */
export function cachedPackage(name, version) {
  return join(downloadCache(), 'sea', `${name.replace(/^@[^/]+\//, '')}-${version}`, 'package');
}
