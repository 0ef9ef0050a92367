/**
 * Opens directories inside the audited tree one component at a time with
 * openat(O_DIRECTORY|O_NOFOLLOW) from a root descriptor, so a symlink
 * planted at any level is refused (ELOOP/ENOTDIR), never followed. Checks
 * the device and inode it reached against what the listing saw, which
 * catches a directory swapped between the listing and the open.
 */
import { openDirectoryAt, statxAt, STATX_SIZE, closeFd } from '../native/libc.js';
import { readDev } from '../native/statx.js';
import { joinRel, relText, splitRel, type RelPath } from './rel-path.js';

export interface DirIdentity {
  dev: string;
  ino: bigint;
}

export class DirOpenError extends Error {
  readonly code: string;
  constructor(readonly rel: RelPath, code: string, detail: string) {
    super(`${relText(rel) || '.'}: ${detail}`);
    this.code = code;
  }
}

const CACHE_SIZE = 8;

export class DirOpener {
  private readonly cache = new Map<string, number>();
  private readonly statBuf = Buffer.alloc(STATX_SIZE);

  /** rootFd stays owned by the caller. */
  constructor(private readonly rootFd: number) {}

  identity(fd: number): DirIdentity {
    const errno = statxAt(fd, '', this.statBuf);
    if (errno !== 0) throw new DirOpenError('', 'EIO', `fstat failed (errno ${errno})`);
    return { dev: readDev(this.statBuf), ino: this.statBuf.readBigUInt64LE(32) };
  }

  /**
   * An open descriptor for `rel`, owned by the opener (do not close it).
   * `expected` is the identity the parent's listing reported.
   */
  open(rel: RelPath, expected?: DirIdentity): number {
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
    if (expected) {
      const found = this.identity(fd);
      if (found.dev !== expected.dev || found.ino !== expected.ino) {
        throw new DirOpenError(rel, 'ECHANGED', `was replaced while being audited (inode ${expected.dev}/${expected.ino} became ${found.dev}/${found.ino})`);
      }
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

  close(): void {
    for (const fd of this.cache.values()) closeFd(fd);
    this.cache.clear();
  }
}

function cacheKey(rel: RelPath): string {
  return typeof rel === 'string' ? rel : `\0${rel.toString('hex')}`;
}
