/**
 * Which problems one entry has, as bits: cheap enough to run on every entry
 * of a million-chunk store inside a worker.
 */
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE } from '../fs/stat.js';
import { canRead, canTouch, type GcUser } from '../system/access.js';

export const ISSUE = {
  /** uid or gid differs from the expected owner. */
  FOREIGN: 1,
  /** Owner shown as the overflow uid/gid: not mapped in this user namespace. */
  NOT_MAPPED: 2,
  /** The GC user cannot read the file or list the directory. */
  UNREADABLE: 4,
  /** A chunk the GC user cannot touch (owner is not the GC user). */
  UNTOUCHABLE: 8,
  /** Not a regular file where chunks belong (or a special file anywhere). */
  NON_REGULAR: 16,
  /** Immutable or append-only: no one can touch or delete it. */
  IMMUTABLE: 32,
  /** A symlink where the store layout needs a directory or a chunk. */
  SYMLINK_IN_LAYOUT: 64,
} as const;

export interface ClassifyContext {
  expected: { uid: number; gid: number };
  gcUser: GcUser;
  namespace: { identity: boolean; overflowUid: number; overflowGid: number };
}

/**
 * Where the entry sits. In a chunk store: 'chunks-dir' (.chunks itself),
 * 'prefix-dir' (entries of .chunks,
 * must be directories), 'chunk' (entries of a prefix dir, must be regular
 * files), 'other' (snapshots, indexes: GC reads them, never touches them).
 * In any other repository every entry is a 'blob' (files or directories).
 */
export type Role = 'chunk' | 'prefix-dir' | 'chunks-dir' | 'blob' | 'other';

export function classify(mode: number, uid: number, gid: number, attributes: number, role: Role, ctx: ClassifyContext): number {
  let issues = 0;
  const type = mode & S_IFMT;
  const unmapped =
    !ctx.namespace.identity &&
    ((uid === ctx.namespace.overflowUid && ctx.expected.uid !== uid) || (gid === ctx.namespace.overflowGid && ctx.expected.gid !== gid));
  if (unmapped) issues |= ISSUE.NOT_MAPPED;
  else if (uid !== ctx.expected.uid || gid !== ctx.expected.gid) issues |= ISSUE.FOREIGN;

  if (type === S_IFLNK) {
    // In a chunk store a symlink at a prefix dir or chunk redirects GC; elsewhere in a repository it is unexpected.
    if (role === 'chunk' || role === 'prefix-dir' || role === 'chunks-dir') issues |= ISSUE.SYMLINK_IN_LAYOUT;
    else if (role === 'blob') issues |= ISSUE.NON_REGULAR;
    return issues;
  }
  const isDirectory = type === S_IFDIR;
  if (type === S_IFREG || isDirectory) {
    if (!canRead(mode, uid, gid, ctx.gcUser, isDirectory)) issues |= ISSUE.UNREADABLE;
    if ((attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND)) !== 0) issues |= ISSUE.IMMUTABLE;
  } else {
    issues |= ISSUE.NON_REGULAR;
  }
  if (role === 'chunk' && isDirectory) issues |= ISSUE.NON_REGULAR;
  if ((role === 'prefix-dir' || role === 'chunks-dir') && type === S_IFREG) issues |= ISSUE.NON_REGULAR;
  // Untouchable is reported on its own only when the owner is otherwise right
  // (the expected owner is not the GC user); a foreign owner's finding says it.
  if (type === S_IFREG && (role === 'chunk' || role === 'blob') && !(issues & (ISSUE.FOREIGN | ISSUE.NOT_MAPPED)) && !canTouch(uid, ctx.gcUser)) {
    issues |= ISSUE.UNTOUCHABLE;
  }
  return issues;
}
