/**
 * V8's compile cache for the command line (Node 22.1+: module.enableCompileCache):
 * the bundle's compiled code kept on disk, so that a start deserialises it instead of
 * parsing and compiling ~500 KB again (~6 ms of every run, docs/design.md "Start-up").
 *
 * Code read from a cache runs with this process's rights, so the cache must be no
 * easier to write than the program itself: a directory of this user's own, made
 * 0700 in the temp directory, used only when it is a real directory owned by this
 * user that no one else may write, in a parent where no one else can replace it
 * (not writable by others, or sticky like /tmp). Anything else: no cache, nothing
 * said (it only saves time). NODE_DISABLE_COMPILE_CACHE=1 turns it off, as for any
 * Node program; NODE_COMPILE_CACHE chooses another directory.
 */
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const S_ISVTX = 0o1000;

/** This user's cache directory under `base` (made when missing), or undefined when it cannot be trusted. */
export function compileCacheDir(base = tmpdir()): string | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined) return undefined;
  const dir = join(base, `chunkguard-compile-cache-${uid}`);
  try {
    const parent = statSync(base);
    // Others may make entries here only where they cannot remove or rename this user's (sticky).
    if (!parent.isDirectory() || (parent.uid !== 0 && parent.uid !== uid) || ((parent.mode & 0o022) !== 0 && (parent.mode & S_ISVTX) === 0)) return undefined;
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') return undefined;
    }
    const own = lstatSync(dir);
    return own.isDirectory() && own.uid === uid && (own.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Turns the compile cache on for what this process loads from now on, where Node has one; the directory used, if any. */
export function enableCompileCache(): string | undefined {
  const nodeModule = process.getBuiltinModule('node:module') as { enableCompileCache?: (dir?: string) => { directory?: string } };
  if (!nodeModule.enableCompileCache || process.env.NODE_DISABLE_COMPILE_CACHE === '1') return undefined;
  // A directory the user chose for every Node program: theirs to trust.
  if (process.env.NODE_COMPILE_CACHE) return nodeModule.enableCompileCache().directory;
  const dir = compileCacheDir();
  return dir === undefined ? undefined : nodeModule.enableCompileCache(dir).directory;
}
