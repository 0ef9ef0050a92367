/**
 * Opens directories inside the audited tree one component at a time with
 * openat(O_DIRECTORY|O_NOFOLLOW) from a root descriptor it holds, so a
 * symlink planted at any level is refused (ELOOP/ENOTDIR), never followed.
 */
import { AT_FDCWD, closeFd, openDirectoryAt, statxAt, STATX_SIZE } from '../native/libc.js';
import { readDev } from '../native/statx.js';
import { joinRel, relText, splitRel, type RelPath } from './rel-path.js';

export interface DirIdentity {
  dev: string;
  ino: bigint;
}

export class DirOpenError extends Error {
  readonly code: string;
  /** The reason without the path, for callers that name the path themselves. */
  readonly detail: string;
  constructor(
    readonly rel: RelPath,
    code: string,
    detail: string,
    where = relText(rel) || '.',
  ) {
    super(`${where}: ${detail}`);
    this.code = code;
    this.detail = detail;
  }
}

const CACHE_SIZE = 8;

export class DirOpener {
  private readonly cache = new Map<string, number>();
  private readonly statBuf = Buffer.alloc(STATX_SIZE);

  private constructor(readonly rootFd: number) {}

  /**
   * Opens the tree's root (not through a symlink at its last component).
   * `expected`: the identity the caller saw, so a root replaced since is refused.
   */
  static openRoot(root: string, expected?: DirIdentity): DirOpener {
    const opened = openDirectoryAt(AT_FDCWD, root);
    if (!opened.ok) throw new DirOpenError('', opened.code, `cannot open (${opened.code === 'EACCES' ? 'permission denied' : opened.code})`, root);
    const opener = new DirOpener(opened.fd);
    const found = opener.identity();
    if (expected && (found.dev !== expected.dev || found.ino !== expected.ino)) {
      opener.close();
      throw new DirOpenError('', 'ECHANGED', 'replaced while the audit started', root);
    }
    return opener;
  }

  /** Device and inode of an open directory (the root by default). */
  identity(fd = this.rootFd): DirIdentity {
    const errno = statxAt(fd, '', this.statBuf);
    if (errno !== 0) throw new DirOpenError('', 'EIO', `fstat failed (errno ${errno})`);
    return { dev: readDev(this.statBuf), ino: this.statBuf.readBigUInt64LE(32) };
  }

  /** An open descriptor for `rel`, owned by the opener (do not close it). */
  open(rel: RelPath): number {
    if (rel === '' || (Buffer.isBuffer(rel) && rel.length === 0)) return this.rootFd;
    const key = cacheKey(rel);
    let fd = this.cache.get(key);
    if (fd === undefined) {
      const parts = splitRel(rel);
      let parentFd = this.rootFd;
      let soFar: RelPath = '';
      for (const part of parts) {
        soFar = joinRel(soFar, part);
        const cached = this.cache.get(cacheKey(soFar));
        if (cached !== undefined) {
          parentFd = cached;
          continue;
        }
        const opened = openDirectoryAt(parentFd, part);
        if (!opened.ok) {
          const why =
            opened.code === 'ELOOP'
              ? 'is a symlink now (not followed)'
              : opened.code === 'ENOTDIR'
                ? 'is no longer a directory'
                : `cannot be opened (${opened.code})`;
          throw new DirOpenError(soFar, opened.code, why);
        }
        this.remember(cacheKey(soFar), opened.fd);
        parentFd = opened.fd;
      }
      fd = parentFd;
    }
    return fd;
  }

  private remember(key: string, fd: number): void {
    this.cache.set(key, fd);
    if (this.cache.size > CACHE_SIZE) {
      // Evict the oldest entry that is not a prefix of the newest (still in use as a parent).
      for (const [oldKey, oldFd] of this.cache) {
        if (key.startsWith(`${oldKey}/`)) continue;
        this.cache.delete(oldKey);
        closeFd(oldFd);
        break;
      }
    }
  }

  /** Closes every descriptor, the root's too. */
  close(): void {
    for (const fd of this.cache.values()) closeFd(fd);
    this.cache.clear();
    closeFd(this.rootFd);
  }
}

function cacheKey(rel: RelPath): string {
  return typeof rel === 'string' ? rel : `\0${rel.toString('hex')}`;
}
