/**
 * Insert a chunk with the backup server's semantics, relative to its open
 * prefix directory (no path is resolved again):
 * - something not a regular file at the chunk name: fail (EUNSAFEPATH);
 * - an existing chunk of the same size, or smaller (another encoder): keep it and touch it;
 * - an existing empty or bigger one: replace it with a rename over it, after
 *   checking the name still refers to the entry that was looked at (another
 *   process's equal chunk renamed in between would be replaced by ours), so
 *   there is never a moment without a chunk;
 * - otherwise: temp file in the same directory (O_CREAT|O_EXCL|O_NOFOLLOW),
 *   write, fsync, set its owner (only when it differs: some filesystems have
 *   none), close (a filesystem may refuse to rename an open file), rename
 *   into place without replacing a chunk another process inserted meanwhile,
 *   fsync the directory. The temp file never outlives the call; one left by a
 *   killed run is removed by the next.
 */
import { fsyncSync, futimesSync, writeSync } from 'node:fs';
import { crypto } from '../runtime/builtins.js';
import { type CallResult, closeFd, type Dir, type OwnerNotSet, setOwner } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { sameIdentity } from '../fs/identity.js';
import { entryKind, type Stat } from '../fs/stat.js';
import { onExitRemove } from './cleanup.js';
import { type Faults, faultsFromEnv } from './faults.js';
import { leftoverTag, lockedAndStillNamed, sweepStaleTemps, TEMP_MARKER } from './leftovers.js';

export { TEMP_MARKER };

export type InsertAction = 'inserted' | 'replaced' | 'touched' | 'kept-smaller';

export interface InsertResult {
  action: InsertAction;
  preExisting: boolean;
  /** Size of the chunk file found before the insert. */
  existingSize?: number;
  /** The touch of a kept chunk (its failure is diagnosed by the caller). */
  touch?: CallResult;
  /** Temp files of killed runs removed from the directory. */
  staleTempsRemoved: number;
  /** The filesystem refused or ignored the owner asked for (it has no per-file owners). */
  ownerNotSet?: OwnerNotSet;
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
  /** How a kept chunk is touched (the check counts its touches); default: the atime-only touch. */
  touch?: (dir: Dir, name: string) => CallResult;
  /** Test seams: the random part of the temp name, and fault points (default: from the environment). */
  tempSuffix?: () => string;
  faults?: Faults;
}

const MAX_ATTEMPTS = 3;

export function insertChunk(dir: Dir, name: string, blob: Uint8Array, options: InsertOptions = {}): InsertResult {
  const faults = options.faults ?? faultsFromEnv();
  let staleTempsRemoved = 0;
  // Another process may insert or replace the chunk between our look and our rename: look again.
  for (let attempt = 1; ; attempt++) {
    const existing = dir.stat(name);
    const kind = entryKind(existing);
    if (kind !== 'missing' && kind !== 'file') throw FsError.unsafe(dir.pathOf(name), kind, 'file');
    const existingSize = existing ? Number(existing.size) : undefined;
    if (existingSize !== undefined && existingSize > 0 && existingSize <= blob.length) {
      faults('between-stat-and-touch');
      const action = existingSize === blob.length ? 'touched' : 'kept-smaller';
      const touch = options.touch ? options.touch(dir, name) : dir.touch(name);
      return { action, preExisting: true, existingSize, touch, staleTempsRemoved };
    }
    staleTempsRemoved += sweepStaleTemps(dir, name);
    const written = writeAndRename(dir, name, blob, existing, { ...options, faults });
    if (written.moved) {
      const base = existing ? { action: 'replaced' as const, preExisting: true, existingSize } : { action: 'inserted' as const, preExisting: false };
      return { ...base, staleTempsRemoved, ...(written.ownerNotSet ? { ownerNotSet: written.ownerNotSet } : {}) };
    }
    if (attempt >= MAX_ATTEMPTS) throw new FsError('EEXIST', 'rename', dir.pathOf(name));
  }
}

/**
 * write-file-atomic's sequence in `dir`: moved when the chunk is in place,
 * not when what is at `name` changed since `existing` was looked at
 * (nothing was changed then; the caller decides again).
 */
function writeAndRename(dir: Dir, name: string, blob: Uint8Array, existing: Stat | undefined, options: InsertOptions & { faults: Faults }): { moved: boolean; ownerNotSet?: OwnerNotSet } {
  const { faults } = options;
  // Registered before the temp file exists (a signal with no handler yet kills the process
  // outright); from then on a signal is handled only where this thread yields, and removes it.
  let made: string | undefined;
  const forget = onExitRemove(() => {
    if (made !== undefined) dir.unlink(made);
  });
  let fd: number;
  let temp: string;
  try {
    ({ fd, temp } = createTemp(dir, name, options.tempSuffix));
  } catch (error) {
    forget();
    throw error;
  }
  made = temp;
  let open = true;
  try {
    // The lock (taken in createTemp) is held until the rename: a sweeping run sees this temp file is live.
    faults('temp-created');
    for (let written = 0; written < blob.length; ) written += writeSync(fd, blob, written);
    faults('written');
    if (options.backdateSeconds) {
      const past = new Date(Date.now() - options.backdateSeconds * 1000);
      futimesSync(fd, past, past);
    }
    fsyncSync(fd);
    const ownerNotSet = options.owner && setOwner(fd, options.owner, dir.pathOf(temp));
    faults('chowned');
    options.signal?.throwIfAborted();
    // Closed before the rename: smbnetfs refuses to rename an open file (EBUSY). The
    // lock goes with it, but a sweep spares a temp file whose run is alive.
    open = false;
    closeFd(fd);
    faults('before-rename');
    const moved = existing ? replace(dir, temp, name, existing) : renameNew(dir, temp, name);
    if (moved) fsyncSync(dir.fd);
    return { moved, ownerNotSet };
  } finally {
    // After a rename the name is gone (ENOENT, harmless); after linkat it remains and goes here.
    dir.unlink(temp);
    if (open) closeFd(fd);
    forget();
  }
}

/** Rename over the entry that was looked at, only if it is still that entry: atomic, never a moment without a chunk. */
function replace(dir: Dir, temp: string, name: string, existing: Stat): boolean {
  const now = dir.stat(name);
  if (!now) return renameNew(dir, temp, name);
  if (!sameIdentity(now, existing)) return false;
  const renamed = dir.rename(temp, name);
  if (!renamed.ok) throw new FsError(renamed.code, 'rename', dir.pathOf(name));
  return true;
}

/**
 * Move the temp file to a name that was free, never over a chunk another
 * process inserted meanwhile where the filesystem can promise that.
 */
function renameNew(dir: Dir, temp: string, name: string): boolean {
  const moved = dir.renameNoReplace(temp, name);
  if (moved.ok) return true;
  if (moved.code === 'EEXIST') return false;
  if (moved.code !== 'ENOTSUP') throw new FsError(moved.code, 'rename', dir.pathOf(name));
  // No atomic no-replace rename on this filesystem: a plain one, like the server's,
  // after a last look (a failed link may still have made the name on a network filesystem).
  if (dir.stat(name)) return false;
  const plain = dir.rename(temp, name);
  if (!plain.ok) throw new FsError(plain.code, 'rename', dir.pathOf(name));
  return true;
}

const randomSuffix = (): string => crypto().randomBytes(4).toString('hex');

/**
 * A new temp file, locked, still under its name; a non-file already at the
 * temp name (a planted symlink) is EUNSAFEPATH, never followed.
 */
function createTemp(dir: Dir, name: string, suffix = randomSuffix): { fd: number; temp: string } {
  for (let attempt = 1; ; attempt++) {
    const temp = `${name}${TEMP_MARKER}${leftoverTag()}-${suffix()}`;
    let fd: number;
    try {
      fd = dir.createFile(temp, 0o644);
    } catch (error) {
      if ((error as FsError).code !== 'EEXIST') throw error;
      const kind = dir.kindOf(temp);
      if (kind !== 'file' && kind !== 'missing') {
        throw FsError.unsafe(dir.pathOf(temp), kind, 'file', `is ${kind === 'symlink' ? 'a symlink' : `a ${kind}`} planted at chunkguard's temp name (not followed)`);
      }
      if (attempt >= 5) throw error;
      continue;
    }
    // A sweeping run may hold the lock for a moment, or have removed the name before we locked it.
    let ours = false;
    try {
      ours = lockedAndStillNamed(dir, temp, fd);
    } finally {
      if (!ours) {
        closeFd(fd);
        dir.unlink(temp);
      }
    }
    if (ours) return { fd, temp };
    if (attempt >= 5) throw new FsError('EBUSY', 'flock', dir.pathOf(temp));
  }
}
