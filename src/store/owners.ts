/**
 * Who owns a store or a tree: the owner of its top directory, of `.chunks`
 * and its prefix directories, and of the entries below, counted by owner.
 * The check and env take a bounded sample (a few hundred stats, first
 * entries of each directory: on ext4 and xfs that order is hash order, so a
 * fair sample); the audit counts every entry.
 */
import { Dir } from '../fs/dir.js';
import { DirentReader, entryName } from '../fs/dirents.js';
import { S_IFDIR, S_IFMT, type Stat } from '../fs/stat.js';
import { CHUNKS_DIR } from './layout.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** An owner and the mode of the entry it was read from (for what a user may do there). */
export interface OwnedEntry extends Owner {
  mode: number;
}

export const ownerKey = (owner: Owner): string => `${owner.uid}:${owner.gid}`;

export function parseOwnerKey(key: string): Owner {
  const [uid, gid] = key.split(':').map(Number) as [number, number];
  return { uid, gid };
}

export interface OwnerCensus {
  /** The store root, or the directory given. */
  top: OwnedEntry;
  /** Every entry below the top (or the sampled ones), by `uid:gid`. */
  contents: Map<string, number>;
  /** Chunk stores: the owner of `.chunks` (a directory). */
  chunksDir?: OwnedEntry;
  /** Chunk stores: prefix directories by `uid:gid`, and the mode of one of each owner's. */
  prefixDirs?: PrefixDirCensus;
  /** Chunk stores: the entries of prefix directories (chunks) by `uid:gid`. */
  chunks?: Map<string, number>;
  /** Every entry was counted (audit), not a sample (check, env). */
  complete: boolean;
}

export interface PrefixDirCensus {
  owners: Map<string, number>;
  modes: Map<string, number>;
}

const SAMPLE = {
  /** Entries taken from each directory listing. */
  perDirectory: 48,
  /** Directories listed in all. */
  directories: 12,
};

/** Add `by` entries to the count of the owner `key` (`uid:gid`). */
export function tally(counts: Map<string, number>, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

/** How many entries the counts hold. */
export function totalOf(counts: Map<string, number> | undefined): number {
  let total = 0;
  for (const count of counts?.values() ?? []) total += count;
  return total;
}

/** One prefix directory of the owner `key`, keeping the lowest mode seen for that owner. */
export function tallyPrefixDir(prefixDirs: PrefixDirCensus, key: string, mode: number): void {
  tally(prefixDirs.owners, key);
  // The same mode whatever order the directories were counted in.
  const known = prefixDirs.modes.get(key);
  if (known === undefined || mode < known) prefixDirs.modes.set(key, mode);
}

/** The first `limit` names of a directory (never `.` or `..`). */
function firstNames(dir: Dir, limit: number): Buffer[] {
  const names: Buffer[] = [];
  dir.forEachEntry(new DirentReader(), (name) => {
    names.push(Buffer.from(entryName(name)));
    return names.length < limit;
  });
  return names;
}

/**
 * A sample of the owners under `root` (opened by the caller, not closed here):
 * breadth first, never following a symlink, not leaving the filesystem.
 * Directories that cannot be listed or opened are skipped: a sample, not a verdict.
 */
export function sampleOwners(root: Dir, rootStat: Stat): OwnerCensus {
  const census: OwnerCensus = { top: { uid: rootStat.uid, gid: rootStat.gid, mode: rootStat.mode }, contents: new Map(), complete: false };
  const queue: { dir: Dir; role: 'top' | 'chunks' | 'prefix' | 'other' }[] = [{ dir: root, role: 'top' }];
  const opened: Dir[] = [];
  try {
    for (let listed = 0; queue.length > 0 && listed < SAMPLE.directories; listed++) {
      const { dir, role } = queue.shift()!;
      let names: Buffer[];
      try {
        names = firstNames(dir, SAMPLE.perDirectory);
      } catch {
        continue;
      }
      for (const name of names) {
        const stat = safeStat(dir, name);
        if (!stat) continue;
        const owner = { uid: stat.uid, gid: stat.gid };
        tally(census.contents, ownerKey(owner));
        const isDirectory = (stat.mode & S_IFMT) === S_IFDIR;
        const isChunks = role === 'top' && name.toString() === CHUNKS_DIR && isDirectory;
        if (isChunks) census.chunksDir = { ...owner, mode: stat.mode };
        if (role === 'chunks' && isDirectory) {
          tallyPrefixDir((census.prefixDirs ??= { owners: new Map(), modes: new Map() }), ownerKey(owner), stat.mode);
        }
        if (role === 'prefix') tally((census.chunks ??= new Map()), ownerKey(owner));
        if (!isDirectory || stat.dev !== rootStat.dev || (queue.length >= SAMPLE.directories && !isChunks)) continue;
        const child = safeOpen(dir, name);
        if (!child) continue;
        opened.push(child);
        // .chunks first: its prefix directories and chunks are what GC works on.
        const entry = { dir: child, role: isChunks ? ('chunks' as const) : role === 'chunks' ? ('prefix' as const) : ('other' as const) };
        if (isChunks) queue.unshift(entry);
        else queue.push(entry);
      }
    }
  } finally {
    for (const dir of opened) dir.close();
  }
  return census;
}

function safeStat(dir: Dir, name: Buffer): Stat | undefined {
  try {
    return dir.stat(name);
  } catch {
    return undefined;
  }
}

function safeOpen(dir: Dir, name: Buffer): Dir | undefined {
  try {
    return dir.openChild(name).dir;
  } catch {
    return undefined;
  }
}
