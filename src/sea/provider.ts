/**
 * What the single executable carries (runtime/embedded.ts), read from its
 * own blob: koffi's native module, the audit worker's code, the packages
 * bundled in, the version. Built by scripts/sea.mjs; nothing here runs
 * outside the executable.
 *
 * koffi's native module must be a file to the dynamic loader. It is written
 * to an unnamed file (O_TMPFILE: no name ever appears, so nothing can be
 * swapped in under it, and nothing stays behind whatever ends the process)
 * in the first of TMPDIR, /tmp, /var/tmp and /dev/shm that lets it load (a
 * noexec mount does not), and loaded through this process's descriptor of it,
 * /proc/self/fd/N, which stays open (close-on-exec) so that worker threads
 * load the same file by the same name.
 */
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Embedded } from '../runtime/embedded.js';

// Taken at run time: bundlers drop the `node:` prefix this module cannot do without.
const sea = process.getBuiltinModule('node:sea') as typeof import('node:sea');

/** Set by the build (scripts/sea.mjs): the version, and the names it gave the assets. */
declare const CHUNKGUARD_VERSION: string;
declare const CHUNKGUARD_SEA_ASSETS: { native: string; worker: string };
/** The environment variable that starts the executable as the helper (check/as-user.ts); the entry removes it at once. */
export const HELPER_ROLE = 'CHUNKGUARD_SEA_ROLE';
/** Linux's O_TMPFILE (O_DIRECTORY is part of it); Node does not name it. */
const O_TMPFILE = 0o20000000 | fsConstants.O_DIRECTORY;

/** What a worker's workerData carries from the executable (EmbeddedWorker#data). */
export interface SeaWorkerData {
  /** Where the main thread loaded koffi's module from. */
  native: string;
}

let native: { exports: unknown; path: string } | undefined;

function loadFrom(path: string): unknown {
  const module = { exports: {} as unknown };
  process.dlopen(module, path, constants.dlopen.RTLD_NOW);
  return module.exports;
}

/** The module written into an unnamed file under `base` and loaded from its descriptor; the descriptor is closed only if that fails. */
function loadThroughTmpfile(base: string): { exports: unknown; path: string } {
  const bytes = new Uint8Array(sea.getRawAsset(CHUNKGUARD_SEA_ASSETS.native) as ArrayBuffer);
  const fd = openSync(base, O_TMPFILE | fsConstants.O_RDWR, 0o500);
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
    const path = `/proc/self/fd/${fd}`;
    return { exports: loadFrom(path), path };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function loadNative(): unknown {
  if (native) return native.exports;
  const failures: string[] = [];
  // Absolute directories only: a relative TMPDIR would put the file where the command runs (a store, say).
  const bases = [...new Set([tmpdir(), '/tmp', '/var/tmp', '/dev/shm'])].filter((base) => isAbsolute(base));
  for (const base of bases) {
    try {
      native = loadThroughTmpfile(base);
      return native.exports;
    } catch (error) {
      failures.push(`${base}: ${((error as NodeJS.ErrnoException).code ?? (error as Error).message).split('\n')[0]}`);
    }
  }
  throw new Error(`koffi's native module could not be loaded from an unnamed file in ${failures.join(', ')} (each must be on a mount that allows executables)`);
}

/** In a worker: koffi's module as the main thread loaded it (its descriptor is the process's). */
export function adoptNative(data: SeaWorkerData): void {
  native ??= { exports: loadFrom(data.native), path: data.native };
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
  worker() {
    loadNative();
    const data: SeaWorkerData = { native: native!.path };
    return { source: sea.getAsset(CHUNKGUARD_SEA_ASSETS.worker, 'utf8'), data };
  },
  helperCommand() {
    return { file: process.execPath, args: [], env: { ...process.env, [HELPER_ROLE]: 'helper' } };
  },
};
