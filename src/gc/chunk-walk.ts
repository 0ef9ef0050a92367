/**
 * The GC preview's walk of `.chunks`: what the server's sweep
 * (chunk_store.rs sweep_unused_chunks) would meet, with the audit's scanner
 * and its concurrency (worker threads, io_uring on a network filesystem).
 * The scanning threads hand over chunk records (audit/chunk-records.ts);
 * here, in the main thread, each record goes to a callback through one
 * reused view, and each prefix directory's stat is joined to the outcome of
 * its listing, which may come from another thread.
 *
 * What the sweep sees, and so the walk: only `.chunks/0000`..`ffff`, by
 * name (the prefix number is that name; a directory of `.chunks` with
 * another name is counted, never listed); in each, every entry whose name
 * the sweep takes (chunk-names.ts), whatever its type (the sweep skips a
 * non-regular one after its stat: so does the caller), crashed inserts'
 * temp files too; other names counted. A chunk in the wrong prefix
 * directory is reported there: the sweep goes by the directory it lists,
 * the mark by the digest. Nothing is followed, opened for writing or touched.
 */
import { type ChunkKind, ChunkRecordReader, RECORD_BYTES, RECORD_TYPE, type ChunkRecordBatch } from '../audit/chunk-records.js';
import type { ClassifyContext } from '../audit/classify.js';
import { throwIfAborted } from '../errors.js';
import { chooseConcurrency, type Concurrency, type RingPlan } from '../audit/concurrency.js';
import { scanTree } from '../audit/pool.js';
import type { Problem, ScanBatch, ScanSettings } from '../audit/scan-dir.js';
import { Dir } from '../fs/dir.js';
import { type Identity, identityOf } from '../fs/identity.js';
import { relBytes } from '../fs/rel-path.js';
import { majorMinorOf, S_IFDIR, S_IFLNK, S_IFMT, type Stat } from '../fs/stat.js';
import { CHUNKS_DIR } from '../store/layout.js';
import { NOT_A_PREFIX } from '../store/chunk-names.js';
import { filesystemAt } from '../system/filesystems.js';
import { hasMountsBelow } from '../system/mounts.js';
import { PreludeRunner } from './prelude.js';

export type { ChunkKind };

/** One entry of a prefix directory, valid only during the onChunk call (the object is reused). */
export type ChunkView = Pick<
  ChunkRecordReader,
  'prefix' | 'kind' | 'digest' | 'bytes' | 'digestOffset' | 'words' | 'digestWord' | 'lowercase' | 'badIndex' | 'atime' | 'size' | 'uid' | 'gid' | 'mode' | 'attributes' | 'issues'
>;

/** One entry of `.chunks` named `0000`..`ffff`, valid only during the onPrefixDir call (the object is reused). */
export interface PrefixDirView {
  prefix: number;
  /** Its stat, not following a symlink (0 when it could not be stat'ed). */
  mode: number;
  uid: number;
  gid: number;
  attributes: number;
  /** The audit's classify bits for it as a prefix directory, for the GC user. */
  issues: number;
  /** chunkguard listed it (it never follows a symlink; the server does). */
  listable: boolean;
  /** The errno name of the failed open or listing; undefined when listed, or never opened (not a directory). */
  errno: string | undefined;
}

export interface ChunkWalkProgress {
  /** Prefix directories listed, and how many there are (`.chunks`' link count, else 65,536, until it is listed). */
  done: number;
  total: number;
}

export interface ChunkWalkOptions extends ClassifyContext {
  onChunk: (view: ChunkView) => void;
  onPrefixDir?: (view: PrefixDirView) => void;
  onProgress?: (progress: ChunkWalkProgress) => void;
  /** The store root as validated by the caller: a root replaced since then ends the walk. */
  identity?: Identity;
  /** Worker threads; 0 walks in the calling thread. Default: chosen for the filesystem, as the audit does. */
  workers?: number;
  signal?: AbortSignal;
  /** Test seam: scan through io_uring with this plan whatever the filesystem. */
  ring?: RingPlan;
  /**
   * Work for this thread while the walk's threads scan (the GC preview's phase 1),
   * done before the first onChunk or onPrefixDir. What it throws ends the walk.
   */
  prelude?: Prelude;
  /** Test seam: the records held while the prelude runs, at most, in bytes (default HOLD_BYTES). */
  holdBytes?: number;
}

/**
 * Work done a step at a time: with worker threads, in slices between which this
 * thread hands them tasks (they scan meanwhile, and what they hand over waits); in
 * this thread's walk, all of it first.
 */
export interface Prelude {
  /** Does the next step; true once all is done. */
  step(): boolean;
}

export interface ChunkWalkTotals {
  /** Entries of `.chunks` named `0000`..`ffff` that are directories. */
  prefixDirs: number;
  /** Entries of those directories: every onChunk call, and the names the sweep ignores. */
  entries: number;
  /** Names in prefix directories the sweep ignores (temp files are records, not these). */
  ignored: number;
  /** Directories of `.chunks` with any other name (the sweep never opens them), and other entries there. */
  otherDirs: number;
  otherEntries: number;
  /** Symlinks at a prefix directory's or a chunk's name (never followed here; the server follows the first). */
  symlinks: number;
  /** What the scanner could not do: directories it could not open or list (errno), entries it could not stat. */
  problems: Problem[];
  concurrency: Concurrency;
}

/** Records held while the prelude runs, at most (about 400,000 chunks' records): past that it runs to its end at once. */
const HOLD_BYTES = 32 * 1024 * 1024;

/** The server layout's prefix directories, 0000 to ffff. */
const PREFIX_DIRS = 0x10000;

/** A prefix directory's stat, from the listing of `.chunks`, until its own listing is done (possibly in another thread). */
class PrefixDirTable {
  private readonly words = new Uint32Array(PREFIX_DIRS * 5);
  private readonly view: PrefixDirView = { prefix: 0, mode: 0, uid: 0, gid: 0, attributes: 0, issues: 0, listable: false, errno: undefined };

  keep(record: ChunkRecordReader): void {
    const { words } = this;
    const at = record.prefix * 5;
    words[at] = record.mode;
    words[at + 1] = record.uid;
    words[at + 2] = record.gid;
    words[at + 3] = record.attributes;
    words[at + 4] = record.issues;
  }

  /** The view of `prefix` with its kept stat, or with the one `record` carries. */
  fill(prefix: number, listable: boolean, errno: string | undefined, record?: ChunkRecordReader): PrefixDirView {
    const { view, words } = this;
    const at = prefix * 5;
    view.prefix = prefix;
    view.mode = record ? record.mode : words[at]!;
    view.uid = record ? record.uid : words[at + 1]!;
    view.gid = record ? record.gid : words[at + 2]!;
    view.attributes = record ? record.attributes : words[at + 3]!;
    view.issues = record ? record.issues : words[at + 4]!;
    view.listable = listable;
    view.errno = errno;
    return view;
  }
}

const isDirectory = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;

/** Reads each batch's records in the main thread, joins prefix directories, counts. */
class RecordSink {
  private readonly reader = new ChunkRecordReader();
  private readonly table = new PrefixDirTable();
  private readonly repeated = new Set<string>();
  readonly totals: Omit<ChunkWalkTotals, 'concurrency'> = { prefixDirs: 0, entries: 0, ignored: 0, otherDirs: 0, otherEntries: 0, symlinks: 0, problems: [] };
  private readonly progress: ChunkWalkProgress;
  private listed = 0;
  /** Records that came while the prelude ran (copies), in order, and their bytes. */
  private held: ChunkRecordBatch[] = [];
  private heldBytes = 0;

  constructor(
    private readonly options: ChunkWalkOptions,
    private readonly prelude: PreludeRunner,
    expectedPrefixDirs: number,
  ) {
    this.progress = { done: 0, total: expectedPrefixDirs };
  }

  readonly add = (batch: ScanBatch): void => {
    this.prelude.rethrow();
    // A prelude that ended in a slice left records held: they came first, so they go first
    // (a prefix directory's stat, held, before the end of its listing, come since).
    if (this.prelude.done && this.held.length > 0) this.release();
    if (batch.chunkRecords) {
      if (this.prelude.done) this.records(batch.chunkRecords);
      else this.hold(batch.chunkRecords);
    }
    for (const problem of batch.problems) this.problem(problem);
    this.advance(batch);
    // An abort from a callback: the scan in this thread looks at the signal only between directories.
    throwIfAborted(this.options.signal, 'the walk of .chunks');
  };

  /** The prelude done (now, if it was not): the records held meanwhile, judged in the order they came. */
  finish(): void {
    this.prelude.finish();
    this.release();
  }

  /** A copy: the batch's buffer goes back to its worker. Past HOLD_BYTES (holdBytes) the prelude runs to its end now. */
  private hold(batch: ChunkRecordBatch): void {
    const bytes = batch.count * RECORD_BYTES;
    this.held.push({ buffer: batch.buffer.slice(0, bytes), count: batch.count, ignored: batch.ignored });
    this.heldBytes += bytes;
    if (this.heldBytes > (this.options.holdBytes ?? HOLD_BYTES)) this.finish();
  }

  private release(): void {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const batch of held) this.records(batch);
    this.options.onProgress?.(this.progress);
  }

  private records(batch: ChunkRecordBatch): void {
    const { reader, totals, options } = this;
    totals.ignored += batch.ignored;
    totals.entries += batch.ignored;
    reader.load(batch);
    for (let index = 0; index < batch.count; index++) {
      reader.select(index);
      const type = reader.type;
      if (type === RECORD_TYPE.ENTRY) {
        totals.entries++;
        if ((reader.mode & S_IFMT) === S_IFLNK) totals.symlinks++;
        options.onChunk(reader);
      } else if (type === RECORD_TYPE.PREFIX_STAT) this.prefixStat();
      else this.prefixDone();
    }
  }

  private prefixStat(): void {
    const { reader, totals } = this;
    const { mode } = reader;
    if (reader.prefix === NOT_A_PREFIX) {
      if (isDirectory(mode)) totals.otherDirs++;
      else totals.otherEntries++;
      return;
    }
    if (isDirectory(mode)) totals.prefixDirs++;
    if ((mode & S_IFMT) === S_IFLNK) totals.symlinks++;
    // To be listed: reported once that is done. Otherwise (not a directory) now.
    if (reader.listing) this.table.keep(reader);
    else this.options.onPrefixDir?.(this.table.fill(reader.prefix, false, undefined, reader));
  }

  private prefixDone(): void {
    const { reader } = this;
    const errno = reader.errno;
    this.options.onPrefixDir?.(this.table.fill(reader.prefix, errno === undefined, errno));
  }

  /** Kept once: "cannot stat entries" is reported by a directory and by each of its subdirectories (scan-dir). */
  private problem(problem: Problem): void {
    if (problem.repeated) {
      const key = relBytes(problem.rel).toString('latin1');
      if (this.repeated.has(key)) return;
      this.repeated.add(key);
    }
    this.totals.problems.push(problem);
  }

  private advance(batch: ScanBatch): void {
    const { progress } = this;
    this.listed += batch.prefixDirsListed;
    // Until `.chunks` is listed whole, the total is the expected count; then the count found.
    if (batch.chunksRoot) progress.total = batch.chunksRoot === 'part' ? Math.max(progress.total, this.listed) : this.listed;
    progress.done += batch.prefixDirsDone;
    // The prelude reports its own progress until it is done.
    if (this.prelude.done) this.options.onProgress?.(progress);
  }
}

/** The store root's identity and device, and how many prefix directories `.chunks` has by its link count (where the filesystem counts subdirectories). */
function inspectStore(store: string, identity: Identity | undefined): { stat: Stat; expectedPrefixDirs: number } {
  const root = Dir.open(store, identity);
  try {
    const stat = root.statSelf();
    const chunks = root.stat(CHUNKS_DIR);
    const counted = chunks !== undefined && isDirectory(chunks.mode) && chunks.nlink > 2;
    return { stat, expectedPrefixDirs: counted ? chunks.nlink - 2 : PREFIX_DIRS };
  } finally {
    root.close();
  }
}

/**
 * Walk `<store>/.chunks` (`store` absolute, as the caller validated it) as
 * the server's sweep would, every record to `options.onChunk` and every
 * prefix directory to `options.onPrefixDir`, in no particular order.
 * Rejects with an FsError when the store root cannot be opened; `.chunks`
 * itself missing, a symlink or unlistable is a problem in the totals.
 */
export async function walkChunks(store: string, options: ChunkWalkOptions): Promise<ChunkWalkTotals> {
  const { stat, expectedPrefixDirs } = inspectStore(store, options.identity);
  const { concurrency, ring } = chooseConcurrency(filesystemAt(store).mount?.fsType, options.workers, options.ring);
  const settings: ScanSettings = {
    rootDevice: majorMinorOf(stat.dev),
    // The sweep opens a prefix directory whatever is mounted there.
    crossFilesystems: true,
    openSubdirsFirst: !hasMountsBelow(store),
    expected: options.expected,
    gcUser: options.gcUser,
    namespace: options.namespace,
    chunkRecords: true,
  };
  const prelude = new PreludeRunner(options.prelude);
  const sink = new RecordSink(options, prelude, expectedPrefixDirs);
  const task = { rel: CHUNKS_DIR, role: 'chunks-root' as const };
  // Walked in this thread, the prelude runs first: nothing would turn the event loop for its slices.
  const started = concurrency.workers === 0 ? () => sink.finish() : () => prelude.start();
  try {
    await scanTree({ path: store, identity: identityOf(stat), task, settings }, sink.add, { workers: concurrency.workers, ring, signal: options.signal, started });
  } catch (error) {
    prelude.stop();
    throw error;
  }
  sink.finish();
  return { ...sink.totals, concurrency };
}
