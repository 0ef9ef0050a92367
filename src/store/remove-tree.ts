/**
 * Remove a probe directory chunkguard made, through the descriptor it holds,
 * and nothing but the probe's own layout: `.chunks/<prefix>/` (the probe of a
 * user other than root) or `datastore/.chunks/<prefix>/` (root's), the zero
 * chunk and temp files beside it. Anything else found there stays, and so then
 * does the directory: a directory someone renamed to a probe's name is never
 * emptied. The name itself goes with rmdir, which removes only an empty
 * directory, and only while the name is still the held directory. A symlink
 * inside is unlinked, never followed; a directory swapped for a symlink
 * meanwhile is refused by O_NOFOLLOW.
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import type { Dir } from '../fs/dir.js';
import { sameIdentity } from '../fs/identity.js';
import { CHUNKS_DIR } from './layout.js';

/** Root's probe holds the datastore it hands to the GC user under this name. */
export const DATASTORE_DIR = 'datastore';

/** A probe's directories by their path inside it, and those of them that hold the chunk. */
function layout(): { dirs: Set<string>; prefixDirs: Set<string> } {
  const prefix = zeroChunkDigest().slice(0, 4);
  const prefixDirs = new Set([`${CHUNKS_DIR}/${prefix}`, `${DATASTORE_DIR}/${CHUNKS_DIR}/${prefix}`]);
  return { dirs: new Set([CHUNKS_DIR, DATASTORE_DIR, `${DATASTORE_DIR}/${CHUNKS_DIR}`, ...prefixDirs]), prefixDirs };
}

/** A file of the probe: the zero chunk, or a temp file of its insert (`<digest>.…`), in a prefix directory. */
function isLayoutFile(rel: string, prefixDirs: Set<string>): boolean {
  const slash = rel.lastIndexOf('/');
  const name = rel.slice(slash + 1);
  return prefixDirs.has(rel.slice(0, slash)) && (name === zeroChunkDigest() || name.startsWith(`${zeroChunkDigest()}.`));
}

/** Empty `dir` (at `rel` inside the probe) of the probe's layout; true when nothing is left in it. Never throws. */
function emptyLayout(dir: Dir, rel: string, probe: ReturnType<typeof layout>): boolean {
  let names: string[];
  try {
    names = dir.names();
  } catch {
    return false;
  }
  let left = 0;
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    try {
      const kind = dir.kindOf(name);
      if (kind === 'directory' && probe.dirs.has(path)) {
        const child = dir.openChild(name).dir;
        let empty: boolean;
        try {
          empty = emptyLayout(child, path, probe);
        } finally {
          child.close();
        }
        if (empty && dir.unlink(name, { directory: true }).ok) continue;
      } else if (kind !== 'directory' && isLayoutFile(path, probe.prefixDirs) && dir.unlink(name).ok) {
        continue;
      }
    } catch {
      // Left, and counted below.
    }
    left++;
  }
  return left === 0;
}

/**
 * Empty the probe `held` (open, at `name` in `parent`) of its layout and remove the name
 * (rmdir: only an empty directory goes). True when it is gone. Never throws: it runs in
 * `finally` and on exit.
 */
export function removeProbe(parent: Dir, name: string, held: Dir): boolean {
  try {
    if (!emptyLayout(held, '', layout())) return false;
    // The name must still be the held directory: another empty directory swapped in is not ours.
    const now = parent.stat(name);
    if (!now || !sameIdentity(now, held.statSelf())) return false;
    return parent.unlink(name, { directory: true }).ok;
  } catch {
    return false;
  }
}
