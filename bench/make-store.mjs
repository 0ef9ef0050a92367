#!/usr/bin/env node
/**
 * Generates (once, then reuses) a server-layout chunk store for the audit bench:
 * 65536 prefix dirs and 1,000,000 empty chunk files owned by backup (34:34),
 * plus a burst of root-owned files (0:34, as a root job with fsGroup 34 leaves
 * them) at one fixed minute. Usage: node bench/make-store.mjs [dir] [files]
 * A smaller store (fewer prefix dirs, a smaller burst) serves the sshfs bench.
 *
 * The bulk is written by a child running as uid 34, so no chown per file is
 * needed. A marker beside the store records what was generated; a store whose
 * marker matches is reused as is.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_UID = 34;
export const BENCH_GID = 34;
export const FOREIGN_BURST = 1000;
export const BURST_MTIME = new Date('2026-01-31T18:00:31Z');
export const DEFAULT_DIR = '/var/tmp/chunkguard-bench/store';
export const DEFAULT_FILES = 1_000_000;

const hex4 = (n) => n.toString(16).padStart(4, '0');
/** Chunk i's digest (hex, its file name), its first four digits folded into the store's prefix dirs (all 65536: the digest as it is). */
export const chunkHex = (i, prefixes) => {
  const hex = createHash('sha256').update(`chunk ${i}`).digest('hex');
  return hex4(parseInt(hex.slice(0, 4), 16) % prefixes) + hex.slice(4);
};
const chunkPath = (store, hex) => join(store, '.chunks', hex.slice(0, 4), hex);

function writeBulk(store, files, prefixes, foreign) {
  for (let prefix = 0; prefix < prefixes; prefix++) mkdirSync(join(store, '.chunks', hex4(prefix)), { mode: 0o750 });
  for (let i = foreign; i < files; i++) closeSync(openSync(chunkPath(store, chunkHex(i, prefixes)), 'wx', 0o640));
}

export function makeStore(store = DEFAULT_DIR, files = DEFAULT_FILES, { prefixes = 0x10000, foreign = FOREIGN_BURST } = {}) {
  const marker = join(dirname(store), `${store.split('/').pop()}.complete`);
  const wanted = JSON.stringify({ files, prefixes, foreign, uid: BENCH_UID });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted) return store;

  rmSync(marker, { force: true });
  rmSync(store, { recursive: true, force: true });
  // The parents first, searchable: a recursive mkdir gives them the store's 0750, and uid 34 could not reach it.
  mkdirSync(dirname(store), { recursive: true, mode: 0o755 });
  chmodSync(dirname(store), 0o755);
  mkdirSync(join(store, '.chunks'), { recursive: true, mode: 0o750 });
  chownSync(store, BENCH_UID, BENCH_GID);
  chownSync(join(store, '.chunks'), BENCH_UID, BENCH_GID);
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--bulk', store, String(files), String(prefixes), String(foreign)], {
    uid: BENCH_UID,
    gid: BENCH_GID,
    stdio: 'inherit',
  });
  if (child.status !== 0) throw new Error(`bulk generation as uid ${BENCH_UID} failed (exit ${child.status})`);
  for (let i = 0; i < foreign; i++) {
    const path = chunkPath(store, chunkHex(i, prefixes));
    writeFileSync(path, '', { mode: 0o600 });
    chownSync(path, 0, BENCH_GID);
    utimesSync(path, BURST_MTIME, new Date(BURST_MTIME.getTime() + (i % 3) * 1000));
  }
  writeFileSync(marker, wanted);
  return store;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--bulk') writeBulk(process.argv[3], ...process.argv.slice(4, 7).map(Number));
  else {
    const store = makeStore(process.argv[2] ?? DEFAULT_DIR, Number(process.argv[3] ?? DEFAULT_FILES));
    process.stdout.write(`${store}\n`);
  }
}
