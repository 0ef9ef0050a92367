/** Chunk stores laid out like the backup server's, for tests. */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { zeroChunkBlob, zeroChunkDigest } from '../../src/chunk/zero-chunk.js';

export const BACKUP_UID = 34;
export const BACKUP_GID = 34;

/** A temp directory the GC user (uid 34) can pass through: mkdtemp makes it 0700. */
export function reachableTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export function makeStore(root: string, owner = { uid: BACKUP_UID, gid: BACKUP_GID }, mode = 0o750): string {
  const chunks = join(root, '.chunks');
  const prefix = join(chunks, zeroChunkDigest().slice(0, 4));
  mkdirSync(prefix, { recursive: true, mode });
  for (const dir of [root, chunks, prefix]) chownSync(dir, owner.uid, owner.gid);
  return root;
}

/**
 * A store as the backup server lays it out in a directory of a real filesystem, given to
 * the GC user where the filesystem keeps owners (exfat, vfat refuse: their rows say what
 * chunkguard makes of that).
 */
export function storeIn(dir: string): string {
  const store = join(dir, 'datastore');
  const prefix = join(store, '.chunks', zeroChunkDigest().slice(0, 4));
  mkdirSync(prefix, { recursive: true, mode: 0o750 });
  for (const path of [store, join(store, '.chunks'), prefix]) {
    try {
      chownSync(path, BACKUP_UID, BACKUP_GID);
    } catch {
      // No owners there.
    }
  }
  return store;
}

export function zeroChunkPathIn(store: string): string {
  const digest = zeroChunkDigest();
  return join(store, '.chunks', digest.slice(0, 4), digest);
}

export async function plantZeroChunk(store: string, owner: { uid: number; gid: number }): Promise<string> {
  const path = zeroChunkPathIn(store);
  writeFileSync(path, await zeroChunkBlob(), { mode: 0o644 });
  chownSync(path, owner.uid, owner.gid);
  return path;
}

/**
 * Every path below root with its owner, mode, size and times: to prove nothing changed.
 * Names are read as bytes, so one that is not UTF-8 is stat'ed as it is (its key shows it with U+FFFD).
 */
export function treeState(root: string): Record<string, string> {
  const state: Record<string, string> = {};
  const slash = Buffer.from('/');
  const walk = (dir: Buffer) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const path = Buffer.concat([dir, slash, name]);
      const stat = lstatSync(path, { bigint: true });
      // Listing a directory or reading a symlink moves its atime: a read, not a change.
      const atime = stat.isDirectory() || stat.isSymbolicLink() ? '' : ` a${stat.atimeNs}`;
      state[relative(root, path.toString())] = `${stat.uid}:${stat.gid} ${stat.mode.toString(8)} ${stat.size}${atime} m${stat.mtimeNs} i${stat.ino}`;
      if (stat.isDirectory()) walk(path);
    }
  };
  walk(Buffer.from(root));
  return state;
}
