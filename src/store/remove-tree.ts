/**
 * Remove a directory chunkguard created (a probe directory), relative to
 * open descriptors: a symlink inside is unlinked, never followed, and a
 * directory swapped for a symlink meanwhile is refused by O_NOFOLLOW.
 */
import type { Dir } from '../fs/dir.js';

/** A probe holds .chunks/<prefix>/<chunk>: anything deeper is not ours to remove. */
const MAX_DEPTH = 4;

/** True when `name` is gone from `parent` afterwards. Never throws: it runs in `finally` and on exit. */
export function removeTree(parent: Dir, name: string, depth = 0): boolean {
  try {
    if (parent.kindOf(name) !== 'directory') return parent.unlink(name).ok || parent.kindOf(name) === 'missing';
    if (depth >= MAX_DEPTH) return false;
    const dir = parent.openChild(name).dir;
    try {
      for (const child of dir.names()) removeTree(dir, child, depth + 1);
    } finally {
      dir.close();
    }
    return parent.unlink(name, { directory: true }).ok;
  } catch {
    return false;
  }
}
