/**
 * What the single executable carries (runtime/embedded.ts), read from its
 * own blob: koffi's native module, the audit worker's code, the packages
 * bundled in, the version. Built by scripts/sea.mjs; nothing here runs
 * outside the executable.
 *
 * koffi's native module is a file to the dynamic loader: it is written to a
 * fresh directory of its own (mode 0700) under the first of TMPDIR, /var/tmp
 * and /dev/shm that lets it load (a noexec mount does not), loaded, and
 * removed at once: nothing stays behind. Worker threads load it by the same
 * name, which the loader finds among the libraries it has already mapped.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Embedded } from '../runtime/embedded.js';

// Taken at run time: bundlers drop the `node:` prefix this module cannot do without.
const sea = process.getBuiltinModule('node:sea') as typeof import('node:sea');

/** Set by the build (scripts/sea.mjs). */
declare const CHUNKGUARD_VERSION: string;

export const NATIVE_ASSET = 'koffi.node';
export const WORKER_ASSET = 'audit-worker.cjs';
/** The environment variable that starts the executable as the helper (check/as-user.ts); the entry removes it at once. */
export const HELPER_ROLE = 'CHUNKGUARD_SEA_ROLE';
/** How the main thread tells a worker where koffi's module was loaded from (a global of the worker's code). */
const NATIVE_GLOBAL = '__chunkguardSeaNative';

let native: { exports: unknown; path: string } | undefined;

function loadFrom(path: string): { exports: unknown; path: string } {
  const module = { exports: {} as unknown };
  process.dlopen(module, path, constants.dlopen.RTLD_NOW);
  return { exports: module.exports, path };
}

/** Writes the module into a directory of its own under `base`, loads it, and removes the directory whatever happened. */
function extractInto(base: string): { exports: unknown; path: string } {
  const dir = mkdtempSync(join(base, 'chunkguard-'));
  try {
    const path = join(dir, NATIVE_ASSET);
    writeFileSync(path, new Uint8Array(sea.getRawAsset(NATIVE_ASSET) as ArrayBuffer), { mode: 0o500, flag: 'wx' });
    return loadFrom(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadNative(): unknown {
  if (native) return native.exports;
  const given = (globalThis as Record<string, unknown>)[NATIVE_GLOBAL];
  if (typeof given === 'string') {
    native = loadFrom(given);
    return native.exports;
  }
  const failures: string[] = [];
  for (const base of [...new Set([tmpdir(), '/var/tmp', '/dev/shm'])]) {
    try {
      native = extractInto(base);
      return native.exports;
    } catch (error) {
      failures.push(`${base}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`koffi's native module could not be written and loaded from a temporary directory (${failures.join('; ')})`);
}

function requirePackage(name: string): unknown {
  switch (name) {
    case 'koffi':
      return loadNative();
    case 'cli-progress':
      // Bundled, and loaded only when a bar is drawn, as from node_modules.
      return require('cli-progress') as unknown;
    default:
      // @bokuweb/zstd-wasm serves Node 20 only; the executable's Node has zstd in node:zlib.
      throw new Error(`${name} is not part of the chunkguard executable`);
  }
}

export const provider: Embedded = {
  version: CHUNKGUARD_VERSION,
  requirePackage,
  workerSource() {
    loadNative();
    return `globalThis.${NATIVE_GLOBAL} = ${JSON.stringify(native!.path)};\n${sea.getAsset(WORKER_ASSET, 'utf8')}`;
  },
  helperCommand() {
    return { file: process.execPath, args: [], env: { ...process.env, [HELPER_ROLE]: 'helper' } };
  },
};
