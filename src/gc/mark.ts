/**
 * Phase 1 as the server runs it, without touching a chunk: every index the
 * walk found, in the server's marking order, read as its reader reads it,
 * every digest into one DigestSet. What would stop the server on the way (an
 * index the GC user cannot open, a malformed one, a FIFO it would block on)
 * is recorded with its place in that order; chunkguard reads on past it, so
 * the report still says what the rest references. A read that fails part way
 * (the file changed under it, a read error) takes its digests back out: an
 * index counts whole or not at all, as the report says.
 */
import type { DirTree } from '../fs/dir-tree.js';
import { FsError } from '../fs/errors.js';
import { baseName, parentRel, type RelPath } from '../fs/rel-path.js';
import { canRead, type GcUser } from '../system/access.js';
import { DigestSet } from './digest-set.js';
import { DIGEST_SIZE, type DigestVisitor, type IndexProblem, readIndex } from './index-file.js';
import type { FoundIndex, IndexWalk } from './index-walk.js';

/** A journal's first size: 1,024 digests; it grows for a bigger index and shrinks back after it. */
const JOURNAL_BYTES = 1024 * DIGEST_SIZE;

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

/**
 * The digests one read adds to the set, for `undo` when that read fails.
 * Costs 32 bytes a digest new to the set, while one index is read.
 */
export class ReadJournal {
  private added = Buffer.allocUnsafe(JOURNAL_BYTES);
  private length = 0;

  constructor(private readonly set: DigestSet) {}

  readonly add: DigestVisitor = (bytes, offset) => {
    if (!this.set.add(bytes, offset)) return;
    if (this.length === this.added.length) this.added = Buffer.concat([this.added, Buffer.allocUnsafe(this.added.length)]);
    bytes.copy(this.added, this.length, offset, offset + DIGEST_SIZE);
    this.length += DIGEST_SIZE;
  };

  /** The read succeeded: what it added stays. */
  keep(): void {
    this.length = 0;
    // One huge index does not keep its journal's memory for the rest.
    if (this.added.length > JOURNAL_BYTES) this.added = Buffer.allocUnsafe(JOURNAL_BYTES);
  }

  /** The read failed: what it added goes. */
  undo(): void {
    for (let at = 0; at < this.length; at += DIGEST_SIZE) this.set.remove(this.added, at);
    this.keep();
  }
}

export function markIndexes(tree: DirTree, walk: IndexWalk, gcUser: GcUser, onIndex: (done: number) => void, signal?: AbortSignal): Marked {
  const set = new DigestSet();
  const journal = new ReadJournal(set);
  const marked: Marked = { set, outcomes: [], files: 0, bytes: 0 };
  walk.indexes.forEach((found, position) => {
    signal?.throwIfAborted();
    const refused = beforeReading(found, gcUser);
    // A file only the GC user cannot read is still read here, so the rest of the report stands.
    const outcome = refused?.read === false && !refused.skipped && refused.problem.code !== 'DENIED' ? refused : readOnce(tree, found.rel, journal, refused);
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

/** One read, and a second when the file changed under it (a backup finishing it, a prune). */
function readOnce(tree: DirTree, rel: RelPath, journal: ReadJournal, refused: IndexOutcome | undefined): IndexOutcome {
  let result = readWhole(tree, rel, journal);
  if (!result.ok && result.problem.code === 'CHANGED') result = readWhole(tree, rel, journal);
  if (result.ok) return refused ?? { read: true, bytes: result.bytes };
  if (result.problem.code === 'VANISHED') return { read: false, skipped: true };
  if (result.problem.code === 'CHANGED') return { read: false, problem: result.problem };
  return { read: false, problem: result.problem };
}

/** One read whose digests stay in the set only when it succeeds. */
function readWhole(tree: DirTree, rel: RelPath, journal: ReadJournal): ReturnType<typeof readIndexAt> {
  const result = readIndexAt(tree, rel, journal.add);
  if (result.ok) journal.keep();
  else journal.undo();
  return result;
}
