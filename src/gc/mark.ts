/**
 * Phase 1 as the server runs it, without touching a chunk: every index the
 * walk found, in the server's marking order, read as its reader reads it,
 * every digest into one DigestSet. What would stop the server on the way (an
 * index the GC user cannot open, a malformed one, a FIFO it would block on)
 * is recorded with its place in that order; chunkguard reads on past it, so
 * the report still says what the rest references. A read's digests reach the
 * set only once the read succeeded (the file changed under it, a read error:
 * none): an index counts whole or not at all, as the report says.
 */
import type { DirTree } from '../fs/dir-tree.js';
import { formatMode } from '../findings.js';
import { FsError } from '../fs/errors.js';
import { baseName, parentRel, type RelPath } from '../fs/rel-path.js';
import { canRead, type GcUser } from '../system/access.js';
import { DigestSet } from './digest-set.js';
import { copyWords, DIGEST_WORDS, type DigestSink } from './digest-words.js';
import { type DigestVisitor, entriesIn, type IndexProblem, readIndex } from './index-file.js';
import type { FoundIndex, IndexWalk } from './index-walk.js';
import { RepeatFilter } from './repeats.js';

export type OutcomeCode = IndexProblem['code'] | 'DENIED' | 'SYMLINK' | 'BLOCKS' | 'NOT_REGULAR';

/**
 * What one index did. `counted`: its digests are in the set (read whole, or read by
 * chunkguard where only the GC user is refused, or read while it changed). `problem`:
 * why the server's GC would stop at it, or (SYMLINK, CHANGED) why chunkguard could not
 * read it as the server would. `skipped`: vanished since the walk, as the server skips it.
 */
export interface IndexOutcome {
  counted: boolean;
  /** The file's size, when the GC user can read it whole (the server's index-data-bytes count it). */
  bytes?: number;
  skipped?: boolean;
  problem?: { code: OutcomeCode; reason: string; errno?: string };
}

export interface Marked {
  set: DigestSet;
  /** One outcome per walk.indexes entry, same order. */
  outcomes: IndexOutcome[];
  files: number;
  bytes: number;
}

/** Where the server's GC stops: every problem but those only chunkguard has (SYMLINK, CHANGED). */
export function isStop(outcome: IndexOutcome): boolean {
  return outcome.problem !== undefined && outcome.problem.code !== 'SYMLINK' && outcome.problem.code !== 'CHANGED';
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

/** A journal's first size: 1,024 digests; it grows for a bigger index. */
const JOURNAL_WORDS = 1024 * DIGEST_WORDS;
/** What it keeps between reads at most (131,072 digests, 4 MiB): past that, one huge index does not keep its memory for the rest. */
const JOURNAL_KEPT_WORDS = 131_072 * DIGEST_WORDS;

/**
 * The digests of the read in progress, held until it ends: `keep` adds them to the
 * set, `undo` drops them. Costs 32 bytes a digest of the one index being read.
 */
export class ReadJournal {
  private held = new Uint32Array(JOURNAL_WORDS);
  private length = 0;

  constructor(private readonly set: DigestSet) {}

  readonly add: DigestSink = (words, at) => {
    if (this.length === this.held.length) {
      const grown = new Uint32Array(2 * this.held.length);
      grown.set(this.held);
      this.held = grown;
    }
    copyWords(words, at, this.held, this.length);
    this.length += DIGEST_WORDS;
  };

  /** The read succeeded: its digests go into the set. */
  keep(): void {
    for (let at = 0; at < this.length; at += DIGEST_WORDS) this.set.addWords(this.held, at);
    this.undo();
  }

  /** The read failed: its digests are dropped. */
  undo(): void {
    this.length = 0;
    if (this.held.length > JOURNAL_KEPT_WORDS) this.held = new Uint32Array(JOURNAL_WORDS);
  }
}

/** What the entry is before it is read: the server follows a symlink, blocks on a FIFO, and opens only what its user may read. */
function beforeReading(found: FoundIndex, gcUser: GcUser): IndexOutcome['problem'] {
  if (found.type === 'symlink') return { code: 'SYMLINK', reason: "is a symlink: the server's GC follows it and marks what its target references; chunkguard never follows a symlink in a store" };
  if (found.type === 'fifo') return { code: 'BLOCKS', reason: "is a FIFO: the server's GC opens it and waits for a writer forever" };
  if (found.type !== 'file') return { code: 'NOT_REGULAR', reason: `is a ${found.type}, not an index file: the server's GC fails on it` };
  if (!canRead(found.mode, found.uid, found.gid, gcUser, false)) {
    return { code: 'DENIED', reason: `cannot be read by uid ${gcUser.uid} (owner ${found.uid}:${found.gid}, mode ${formatMode(found.mode)}): the server's GC stops with "permission denied"`, errno: 'EACCES' };
  }
  return undefined;
}

/**
 * Phase 1 an index at a time, so that the caller can let other work run
 * between two reads (the chunk walk's threads wait for tasks only this
 * thread hands out): `step` reads the next index, and seals the set after
 * the last.
 */
export class Marker {
  readonly marked: Marked;
  private readonly readers: Readers;
  private position = 0;

  constructor(
    private readonly tree: DirTree,
    private readonly walk: IndexWalk,
    private readonly gcUser: GcUser,
    private readonly onIndex: (done: number) => void,
    private readonly signal?: AbortSignal,
  ) {
    // Sized for every entry the indexes hold: no table doubling on the way.
    const expected = walk.indexes.reduce((sum, found) => sum + (found.type === 'file' ? entriesIn(found.kind, found.size) : 0), 0);
    this.marked = { set: new DigestSet({ expected }), outcomes: [], files: 0, bytes: 0 };
    const journal = new ReadJournal(this.marked.set);
    this.readers = { journal, repeats: new RepeatFilter(journal.add) };
  }

  /** Reads the next index; true once every index is read and the set sealed. */
  step(): boolean {
    const { marked, walk } = this;
    const found = walk.indexes[this.position];
    if (found === undefined) {
      marked.set.seal();
      return true;
    }
    this.signal?.throwIfAborted();
    const refused = beforeReading(found, this.gcUser);
    // Only a file the GC user alone cannot read is still read here, so the rest of the report stands.
    const outcome = refused && refused.code !== 'DENIED' ? { counted: false, problem: refused } : readTwice(this.tree, found, this.readers, refused);
    marked.outcomes.push(outcome);
    if (outcome.bytes !== undefined) {
      marked.files++;
      marked.bytes += outcome.bytes;
    }
    this.onIndex(++this.position);
    return false;
  }
}

/** A scheme index's lineage: its group and its file name (an index outside the scheme has none). */
function lineageOf(found: FoundIndex): { group: string; name: string } | undefined {
  if (found.snapshot === undefined || typeof found.rel !== 'string') return undefined;
  return { group: found.snapshot.slice(0, found.snapshot.lastIndexOf('/')), name: found.rel.slice(found.snapshot.length + 1) };
}

interface Readers {
  journal: ReadJournal;
  repeats: RepeatFilter;
}

/** Read once, and again when the file changed under it (a backup finishing it, a prune); `denied`: the GC user's refusal, which comes first. */
function readTwice(tree: DirTree, found: FoundIndex, readers: Readers, denied: IndexOutcome['problem']): IndexOutcome {
  let result = readWhole(tree, found, readers);
  if (!result.ok && result.problem.code === 'CHANGED') result = readWhole(tree, found, readers);
  if (!result.ok && result.problem.code === 'VANISHED') return { counted: false, skipped: true };
  if (denied) return { counted: result.ok, problem: denied };
  return result.ok ? { counted: true, bytes: result.bytes } : { counted: false, problem: result.problem };
}

/** One read whose digests reach the set only when it succeeds. */
function readWhole(tree: DirTree, found: FoundIndex, { journal, repeats }: Readers): ReturnType<typeof readIndexAt> {
  const result = readIndexAt(tree, found.rel, repeats.start(lineageOf(found)));
  if (result.ok) journal.keep();
  else {
    journal.undo();
    repeats.forget();
  }
  return result;
}
