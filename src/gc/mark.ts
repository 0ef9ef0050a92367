/**
 * Phase 1 as the server runs it, without touching a chunk: every index the
 * walk found, in the server's marking order, read as its reader reads it,
 * every digest into one DigestSet. What would stop the server on the way (an
 * index the GC user cannot open, a malformed one, a FIFO it would block on)
 * is recorded with its place in that order; chunkguard reads on past it, so
 * the report still says what the rest references.
 */
import type { DirTree } from '../fs/dir-tree.js';
import { FsError } from '../fs/errors.js';
import { baseName, parentRel, type RelPath } from '../fs/rel-path.js';
import { canRead, type GcUser } from '../system/access.js';
import { DigestSet } from './digest-set.js';
import { type DigestVisitor, type IndexProblem, readIndex } from './index-file.js';
import type { FoundIndex, IndexWalk } from './index-walk.js';
import { RepeatFilter } from './repeats.js';

/** What one index did: read (its size), skipped (vanished since the walk), or stopped GC. */
export type IndexOutcome =
  | { read: true; bytes: number; changed?: boolean }
  | { read: false; skipped: true }
  | { read: false; skipped?: false; problem: IndexProblem | { code: 'DENIED' | 'SYMLINK' | 'BLOCKS' | 'NOT_REGULAR'; reason: string; errno?: string } };

export interface Marked {
  set: DigestSet;
  /** One outcome per walk.indexes entry, same order. */
  outcomes: IndexOutcome[];
  files: number;
  bytes: number;
}

/** A problem that the server meets too, or one only the GC user meets (chunkguard, as root, read on). */
export function isStop(outcome: IndexOutcome): boolean {
  return !outcome.read && !outcome.skipped && outcome.problem.code !== 'SYMLINK' && outcome.problem.code !== 'CHANGED';
}

/** Read the index at `rel` through the tree (no symlink followed on the way), its digests to `visit`. */
export function readIndexAt(tree: DirTree, rel: RelPath, visit: DigestVisitor) {
  let dir;
  try {
    dir = tree.open(parentRel(rel));
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    if (error.code === 'ENOENT') return { ok: false as const, problem: { code: 'VANISHED' as const, reason: 'vanished' } };
    return { ok: false as const, problem: { code: 'READ_FAILED' as const, reason: `its directory cannot be opened (${error.code})`, errno: error.code } };
  }
  return readIndex(dir, baseName(rel), visit);
}

/** What the entry is before it is read: the server follows a symlink, blocks on a FIFO, and opens only what its user may read. */
function beforeReading(found: FoundIndex, gcUser: GcUser): IndexOutcome | undefined {
  if (found.type === 'symlink') return { read: false, problem: { code: 'SYMLINK', reason: "is a symlink: the server's GC follows it and marks what its target references; chunkguard never follows a symlink in a store" } };
  if (found.type === 'fifo') return { read: false, problem: { code: 'BLOCKS', reason: "is a FIFO: the server's GC opens it and waits for a writer forever" } };
  if (found.type !== 'file') return { read: false, problem: { code: 'NOT_REGULAR', reason: `is a ${found.type}, not an index file: the server's GC fails on it` } };
  if (!canRead(found.mode, found.uid, found.gid, gcUser, false)) {
    return { read: false, problem: { code: 'DENIED', reason: `cannot be read by uid ${gcUser.uid} (owner ${found.uid}:${found.gid}, mode 0${(found.mode & 0o7777).toString(8)}): the server's GC stops with "permission denied"`, errno: 'EACCES' } };
  }
  return undefined;
}

export function markIndexes(tree: DirTree, walk: IndexWalk, gcUser: GcUser, onIndex: (done: number) => void, signal?: AbortSignal): Marked {
  const set = new DigestSet();
  const repeats = new RepeatFilter(set);
  const marked: Marked = { set, outcomes: [], files: 0, bytes: 0 };
  walk.indexes.forEach((found, position) => {
    signal?.throwIfAborted();
    const refused = beforeReading(found, gcUser);
    // A file only the GC user cannot read is still read here, so the rest of the report stands.
    const visitor = () => repeats.start(lineageOf(found));
    const outcome = refused?.read === false && !refused.skipped && refused.problem.code !== 'DENIED' ? refused : readOnce(tree, found.rel, visitor, refused);
    marked.outcomes.push(outcome);
    if (outcome.read) {
      marked.files++;
      marked.bytes += outcome.bytes;
    }
    onIndex(position + 1);
  });
  set.seal();
  return marked;
}

/** A scheme index's lineage: its group and its file name (an index outside the scheme has none). */
function lineageOf(found: FoundIndex): { group: string; name: string } | undefined {
  if (found.snapshot === undefined || typeof found.rel !== 'string') return undefined;
  return { group: found.snapshot.slice(0, found.snapshot.lastIndexOf('/')), name: found.rel.slice(found.snapshot.length + 1) };
}

/** One read, and a second when the file changed under it (a backup finishing it, a prune); `visitor` gives each read its own. */
function readOnce(tree: DirTree, rel: RelPath, visitor: () => DigestVisitor, refused: IndexOutcome | undefined): IndexOutcome {
  let result = readIndexAt(tree, rel, visitor());
  if (!result.ok && result.problem.code === 'CHANGED') result = readIndexAt(tree, rel, visitor());
  if (result.ok) return refused ?? { read: true, bytes: result.bytes };
  if (result.problem.code === 'VANISHED') return { read: false, skipped: true };
  if (result.problem.code === 'CHANGED') return { read: false, problem: result.problem };
  return { read: false, problem: result.problem };
}
