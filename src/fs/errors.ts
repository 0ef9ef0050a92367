/**
 * The one error type of the filesystem layer, as node-tar's CwdError and
 * SymlinkError: `code` (an errno name, or EUNSAFEPATH), `syscall`, `path`.
 * EUNSAFEPATH is something other than what the layout needs where a name
 * was opened without following symlinks (a planted symlink, a file where a
 * directory belongs); `found` and `expected` say what.
 */
import { constants } from 'node:os';

/** What a name refers to, in the terms the layout checks use. */
export type EntryKind = 'missing' | 'directory' | 'file' | 'symlink' | 'other';

export class FsError extends Error {
  readonly code: string;
  readonly syscall: string;
  readonly path: string;
  /** The reason without the path, for messages that name the path themselves. */
  readonly detail: string;
  readonly found: EntryKind | undefined;
  readonly expected: 'directory' | 'file' | undefined;

  constructor(code: string, syscall: string, path: string, options: { detail?: string; found?: EntryKind; expected?: 'directory' | 'file' } = {}) {
    const detail = options.detail ?? `${syscall} failed with ${code}`;
    super(`${path}: ${detail}`);
    this.name = 'FsError';
    this.code = code;
    this.syscall = syscall;
    this.path = path;
    this.detail = detail;
    this.found = options.found;
    this.expected = options.expected;
  }

  /** Something not followed or not usable where the layout needs a directory or a regular file. */
  static unsafe(path: string, found: EntryKind, expected: 'directory' | 'file', detail?: string): FsError {
    const what = found === 'symlink' ? 'a symlink' : found === 'other' ? 'a special file' : `a ${found}`;
    const reason = detail ?? `is ${what} where the store layout needs a ${expected === 'file' ? 'regular file' : 'directory'}`;
    const error = new FsError('EUNSAFEPATH', 'openat', path, { detail: reason, found, expected });
    // "<path> is a symlink …": the reason reads on from the path.
    error.message = `${path} ${reason}`;
    return error;
  }
}

export function isUnsafePath(error: unknown): error is FsError {
  return error instanceof FsError && error.code === 'EUNSAFEPATH';
}

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** ENOENT for 2; `E<n>` for a number Node has no name for. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}
