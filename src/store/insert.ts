/**
 * Insert a chunk with the backup server's semantics:
 * - something not a regular file at the chunk path: fail;
 * - an existing chunk of the same size, or smaller (another encoder): keep it and touch it;
 * - an existing empty or bigger one: replace it;
 * - otherwise write a temp file in the same directory, fsync, set its owner,
 *   rename it into place. The temp file never outlives the call.
 */
import { constants, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { touchAtime, type NativeResult } from '../native/libc.js';
import { inspect, UnsafePathError } from './safe-path.js';
import { trackTempFile, untrackTempFile } from './cleanup.js';

export type InsertAction = 'inserted' | 'replaced' | 'touched' | 'kept-smaller';

export interface InsertResult {
  action: InsertAction;
  preExisting: boolean;
  /** Size of the chunk file found at the path before the insert. */
  existingSize?: number;
  /** The touch of a kept chunk (its failure is diagnosed by the caller). */
  touch?: NativeResult;
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
}

export const TEMP_MARKER = '.chunkguard-tmp-';

export function tempPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
}

export async function insertChunk(path: string, blob: Uint8Array, options: InsertOptions = {}): Promise<InsertResult> {
  const existing = inspect(path);
  if (existing.kind !== 'missing' && existing.kind !== 'file') {
    throw new UnsafePathError(existing, 'file');
  }
  const existingSize = existing.stat ? Number(existing.stat.size) : undefined;
  if (existingSize !== undefined && existingSize > 0 && existingSize <= blob.length) {
    return {
      action: existingSize === blob.length ? 'touched' : 'kept-smaller',
      preExisting: true,
      existingSize,
      touch: touchAtime(path),
    };
  }

  const temp = tempPathFor(path);
  let renamed = false;
  trackTempFile(temp);
  try {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const handle = await fs.open(temp, flags, 0o644);
    try {
      await handle.writeFile(blob);
      if (options.backdateSeconds) {
        const past = new Date(Date.now() - options.backdateSeconds * 1000);
        await handle.utimes(past, past);
      }
      await handle.sync();
      if (options.owner) await handle.chown(options.owner.uid, options.owner.gid);
    } finally {
      await handle.close();
    }
    options.signal?.throwIfAborted();
    await fs.rename(temp, path);
    renamed = true;
    await syncDirectory(dirname(path));
  } finally {
    if (!renamed) await fs.unlink(temp).catch(() => undefined);
    untrackTempFile(temp);
  }
  return existing.kind === 'missing'
    ? { action: 'inserted', preExisting: false }
    : { action: 'replaced', preExisting: true, existingSize };
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await fs.open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
