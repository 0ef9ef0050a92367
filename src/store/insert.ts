/**
 * Insert a chunk with the backup server's semantics, relative to its open
 * prefix directory (no path is resolved again):
 * - something not a regular file at the chunk name: fail (UNSAFE_PATH);
 * - an existing chunk of the same size, or smaller (another encoder): keep it and touch it;
 * - an existing empty or bigger one: replace it;
 * - otherwise: temp file in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW),
 *   write, fsync, set its owner, rename into place without replacing a chunk
 *   another process inserted meanwhile, fsync the directory. The temp file
 *   never outlives the call; one left by a killed run is removed by the next.
 */
import { fchownSync, fsyncSync, futimesSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { closeFd, createFileAt, renameAt, renameNoReplaceAt, unlinkAt, type NativeResult } from '../native/libc.js';
import { onExitRemove } from './cleanup.js';
import { faultPoint } from './faults.js';
import { errnoError, kindOfStat, type OpenDir } from './open-dir.js';
import { UnsafePathError } from './safe-path.js';
import { leftoverTag, lockedAndStillNamed, sweepStaleTemps, TEMP_MARKER } from './leftovers.js';

export { TEMP_MARKER };

export type InsertAction = 'inserted' | 'replaced' | 'touched' | 'kept-smaller';

export interface InsertResult {
  action: InsertAction;
  preExisting: boolean;
  /** Size of the chunk file found before the insert. */
  existingSize?: number;
  /** The touch of a kept chunk (its failure is diagnosed by the caller). */
  touch?: NativeResult;
  /** Temp files of killed runs removed from the directory. */
  staleTempsRemoved: number;
}

export interface InsertOptions {
  /** chown the new file to this owner before the rename (the store owner, when running as root). */
  owner?: { uid: number; gid: number };
  /**
   * Set a new chunk's atime and mtime this many seconds in the past before the
   * rename, so the first touch makes atime strictly newer than mtime.
   */
  backdateSeconds?: number;
  /** Checked before the rename: an aborted insert leaves nothing behind. */
  signal?: AbortSignal;
  /** The random part of the temp name (tests plant things at a known one). */
  tempSuffix?: () => string;
}

export function insertChunk(dir: OpenDir, name: string, blob: Uint8Array, options: InsertOptions = {}, attempt = 1): InsertResult {
  const existing = dir.stat(name);
  const kind = kindOfStat(existing);
  if (kind !== 'missing' && kind !== 'file') throw new UnsafePathError({ path: dir.pathOf(name), kind }, 'file');
  const existingSize = existing ? Number(existing.size) : undefined;
  if (existingSize !== undefined && existingSize > 0 && existingSize <= blob.length) {
    return keepExisting(dir, name, blob, existingSize, 0);
  }

  const staleTempsRemoved = sweepStaleTemps(dir, name);
  const { fd, temp } = createTemp(dir, name, options.tempSuffix);
  // A signal between here and the rename removes the temp file.
  const forget = onExitRemove(() => unlinkAt(dir.fd, temp));
  try {
    // The lock (taken in createTemp) is held until the rename: a sweeping run sees this temp file is live.
    faultPoint('temp-created');
    for (let written = 0; written < blob.length; ) written += writeSync(fd, blob, written);
    faultPoint('written');
    if (options.backdateSeconds) {
      const past = new Date(Date.now() - options.backdateSeconds * 1000);
      futimesSync(fd, past, past);
    }
    fsyncSync(fd);
    if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
    faultPoint('chowned');
    options.signal?.throwIfAborted();
    faultPoint('before-rename');
    if (existing) {
      // Empty or bigger than ours: replace it, as the server does, but only the
      // one we looked at. If another process replaced it meanwhile, theirs stays.
      const now = dir.stat(name);
      if (now && now.ino === existing.ino && now.dev === existing.dev) unlinkAt(dir.fd, name);
    }
    const moved = renameNoReplaceAt(dir.fd, temp, name);
    if (!moved.ok && moved.code === 'EEXIST') {
      // Another process inserted the chunk since our stat: decide again on what is there now.
      if (attempt >= 3) throw errnoError('EEXIST', 'rename', dir.pathOf(name));
      const again = insertChunk(dir, name, blob, options, attempt + 1);
      return { ...again, staleTempsRemoved: again.staleTempsRemoved + staleTempsRemoved };
    }
    if (!moved.ok && moved.code === 'ENOTSUP') {
      // No atomic no-replace rename on this filesystem: a plain one, like the server's.
      const plain = renameAt(dir.fd, temp, name);
      if (!plain.ok) throw errnoError(plain.code, 'rename', dir.pathOf(name));
    } else if (!moved.ok) throw errnoError(moved.code, 'rename', dir.pathOf(name));
    fsyncSync(dir.fd);
  } finally {
    // After a rename the name is gone (ENOENT, harmless); after linkat it may remain.
    unlinkAt(dir.fd, temp);
    closeFd(fd);
    forget();
  }
  return existing
    ? { action: 'replaced', preExisting: true, existingSize, staleTempsRemoved }
    : { action: 'inserted', preExisting: false, staleTempsRemoved };
}

function keepExisting(dir: OpenDir, name: string, blob: Uint8Array, existingSize: number, staleTempsRemoved: number): InsertResult {
  faultPoint('between-stat-and-touch');
  return {
    action: existingSize === blob.length ? 'touched' : 'kept-smaller',
    preExisting: true,
    existingSize,
    touch: dir.touch(name),
    staleTempsRemoved,
  };
}

const randomSuffix = (): string => randomBytes(4).toString('hex');

/**
 * A new temp file, locked, still under its name; a non-file already at the
 * temp name (a planted symlink) is UNSAFE_PATH, never followed.
 */
function createTemp(dir: OpenDir, name: string, suffix = randomSuffix): { fd: number; temp: string } {
  for (let attempt = 1; ; attempt++) {
    const temp = `${name}${TEMP_MARKER}${leftoverTag()}-${suffix()}`;
    const created = createFileAt(dir.fd, temp, 0o644);
    if (created.ok) {
      // A sweeping run may hold the lock for a moment, or have removed the name before we locked it.
      if (lockedAndStillNamed(dir, temp, created.fd)) return { fd: created.fd, temp };
      closeFd(created.fd);
      unlinkAt(dir.fd, temp);
      if (attempt >= 5) throw errnoError('EBUSY', 'flock', dir.pathOf(temp));
      continue;
    }
    if (created.code !== 'EEXIST') throw errnoError(created.code, 'open', dir.pathOf(temp));
    const kind = dir.kindOf(temp);
    if (kind !== 'file' && kind !== 'missing') {
      throw new UnsafePathError({ path: dir.pathOf(temp), kind }, 'file', `is ${kind === 'symlink' ? 'a symlink' : `a ${kind}`} planted at chunkguard's temp name (not followed)`);
    }
    if (attempt >= 5) throw errnoError('EEXIST', 'open', dir.pathOf(temp));
  }
}
