/**
 * Path safety inside a store: every component is inspected with lstat, so a
 * symlink planted in the store is reported, never followed.
 */
import { type BigIntStats, lstatSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** True when `path` is `dir` or below it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

export type EntryKind = 'missing' | 'directory' | 'file' | 'symlink' | 'other';

export interface Entry {
  path: string;
  kind: EntryKind;
  stat?: BigIntStats;
}

export function inspect(path: string): Entry {
  let stat: BigIntStats;
  try {
    stat = lstatSync(path, { bigint: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { path, kind: 'missing' };
    throw error;
  }
  const kind: EntryKind = stat.isSymbolicLink()
    ? 'symlink'
    : stat.isDirectory()
      ? 'directory'
      : stat.isFile()
        ? 'file'
        : 'other';
  return { path, kind, stat };
}

/** Thrown where the layout needs a directory or regular file and finds something else. */
export class UnsafePathError extends Error {
  readonly code = 'EUNSAFEPATH';
  readonly path: string;
  readonly found: EntryKind;
  readonly expected: 'directory' | 'file';

  constructor(entry: Entry, expected: 'directory' | 'file') {
    const found = entry.kind === 'symlink' ? 'a symlink' : entry.kind === 'other' ? 'a special file' : `a ${entry.kind}`;
    super(`${entry.path} is ${found} where the store layout needs a ${expected === 'file' ? 'regular file' : 'directory'}`);
    this.name = 'UnsafePathError';
    this.path = entry.path;
    this.found = entry.kind;
    this.expected = expected;
  }
}

/** The entry, which must be a real directory (or missing, when allowed). */
export function requireDirectory(path: string, options: { allowMissing?: boolean } = {}): Entry {
  const entry = inspect(path);
  if (entry.kind === 'directory') return entry;
  if (entry.kind === 'missing' && options.allowMissing) return entry;
  if (entry.kind === 'missing') {
    throw Object.assign(new Error(`ENOENT: no such directory, '${path}'`), { code: 'ENOENT', path });
  }
  throw new UnsafePathError(entry, 'directory');
}
