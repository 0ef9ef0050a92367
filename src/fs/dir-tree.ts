/**
 * Directories inside a tree, reached from its root one component at a time
 * with openat(O_DIRECTORY|O_NOFOLLOW): a symlink planted at any level is
 * refused (EUNSAFEPATH), never followed, and a component that could climb
 * out ('..', '.', empty) is refused before any call. A few recently used
 * directories stay open, so walking a tree depth-first reopens little.
 */
import { Dir } from './dir.js';
import { FsError } from './errors.js';
import type { Identity } from './identity.js';
import { joinRel, relText, splitRel, unsafeComponent, type RelPath } from './rel-path.js';

const CACHE_SIZE = 8;

function cacheKey(rel: RelPath): string {
  return typeof rel === 'string' ? rel : `\0${rel.toString('hex')}`;
}

export function isRootRel(rel: RelPath): boolean {
  return rel.length === 0;
}

/** Refuses `name` (the last component of `rel`) when it could leave its directory ('', '.', '..', a slash, a NUL). */
function refuseUnsafe(name: RelPath, rel: RelPath, syscall: string): void {
  const why = unsafeComponent(name);
  if (why) throw new FsError('EUNSAFEPATH', syscall, relText(rel), { detail: `has ${why}, which would leave the directory (refused)` });
}

export class DirTree {
  private readonly cache = new Map<string, Dir>();
  /** The keys on the way down of the current open(), reused (an audit opens a directory per 16 chunks). */
  private readonly chain: string[] = [];
  private closed = false;

  private constructor(readonly root: Dir) {}

  /** Open the tree's root (its last component not followed); `expected` refuses a root replaced since it was inspected. */
  static open(path: string, expected?: Identity): DirTree {
    return new DirTree(Dir.open(path, expected));
  }

  /** A tree below a root the caller opened (the tree closes it). */
  static from(root: Dir): DirTree {
    return new DirTree(root);
  }

  /**
   * The directory at `rel` below the root, owned by the tree: do not close
   * it, and do not keep it across another open() (it may be evicted and closed
   * then; a closed Dir refuses every call).
   */
  open(rel: RelPath): Dir {
    if (isRootRel(rel)) return this.root;
    const cached = this.cache.get(cacheKey(rel));
    if (cached) return cached;
    let parent = this.root;
    let soFar: RelPath = '';
    const { chain } = this;
    chain.length = 0;
    for (const part of splitRel(rel)) {
      soFar = joinRel(soFar, part);
      refuseUnsafe(part, soFar, 'openat');
      const key = cacheKey(soFar);
      chain.push(key);
      const known = this.cache.get(key);
      if (known) {
        parent = known;
        continue;
      }
      parent = this.remember(key, parent.openChild(part).dir);
    }
    return parent;
  }

  /**
   * The directory `name` (one component) in the directory at `parent`, for the caller
   * to close: its parents through the cache, itself opened apart (the root, '' in '':
   * a second descriptor of it). It stays open while statx calls relative to it are in
   * flight, whatever the tree closes meanwhile. Parent and name apart, as the audit's
   * tasks carry them: no path is split or joined, and the parent's key is the one
   * string every directory of a run shares (its hash is computed once).
   */
  openOwned(parent: RelPath, name: RelPath): Dir {
    if (isRootRel(name) && isRootRel(parent)) return this.root.duplicate();
    return this.parentOf(parent, name, 'openat').openChild(name).dir;
  }

  /**
   * statx of the entry `name` in the directory at `parent`, into `buf`, not following
   * a symlink: 0, or the errno (for a directory that could not be opened).
   */
  statEntry(parent: RelPath, name: RelPath, buf: Buffer): number {
    return this.parentOf(parent, name, 'statx').statInto(name, buf);
  }

  /** The directory at `parent` (open), once `name` is known not to leave it. */
  private parentOf(parent: RelPath, name: RelPath, syscall: string): Dir {
    refuseUnsafe(name, joinRel(parent, name), syscall);
    return this.open(parent);
  }

  /** Keep `dir` open; evict the oldest one not on the current way down. */
  private remember(key: string, dir: Dir): Dir {
    this.cache.set(key, dir);
    if (this.cache.size > CACHE_SIZE) {
      for (const [oldKey, old] of this.cache) {
        if (this.chain.includes(oldKey)) continue;
        this.cache.delete(oldKey);
        old.close();
        break;
      }
    }
    return dir;
  }

  /** Closes every directory, the root's too; a second call does nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const dir of this.cache.values()) dir.close();
    this.cache.clear();
    this.root.close();
  }
}
