/**
 * Scans directories of the audited tree: lists each through the descriptor
 * the tree holds, statx()es every entry relative to it (never following a
 * symlink), tallies owners, and returns the entries with problems and the
 * subdirectories still to visit. Two scanners, one answer: DirScanner stats
 * one entry at a time; RingScanner keeps many stats in flight through
 * io_uring, across directories, and lists the next directory meanwhile.
 * Both run inside a worker thread, or in the calling thread with workers: 0.
 */
import { DirentReader, DT_DIR, entryName } from '../fs/dirents.js';
import type { DirTree } from '../fs/dir-tree.js';
import { errnoName, FsError, isUnsafePath } from '../fs/errors.js';
import { joinRel, nameFromBytes, parentRel, type RelPath } from '../fs/rel-path.js';
import { formatDev, S_IFDIR, S_IFMT, S_IFREG, STATX_SIZE, StatWords } from '../fs/stat.js';
import { StatRing } from '../fs/stat-ring.js';
import type { Dir } from '../fs/dir.js';
import { NOT_A_PREFIX, prefixAt, prefixOfPath } from '../store/chunk-names.js';
import { type ChunkRecordBatch, ChunkRecordWriter } from './chunk-records.js';
import { classify, type ClassifyContext, type Role } from './classify.js';
import type { RingPlan } from './concurrency.js';
import { type DirRole, type DirTask, RunBuilder, type TaskRun } from './task-runs.js';
import { OwnerTallies, type OwnerTally } from './tally.js';

export interface Offender {
  rel: RelPath;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Which file it was (makedev device, unsigned inode): fix re-checks it before a chown. */
  dev: bigint;
  ino: bigint;
  attributes: number;
  issues: number;
  role: Role;
}

export type ProblemKind = 'unlistable' | 'mount-not-crossed' | 'unsafe';

export interface Problem {
  kind: ProblemKind;
  rel: RelPath;
  detail: string;
  errno?: string;
  /**
   * "Cannot stat entries": reported for a directory by its own scan and by each
   * of its subdirectories (DirScan#parentCannotStat); the collector keeps one.
   */
  repeated?: boolean;
}

export interface ScanSettings extends ClassifyContext {
  /** The root's device as StatWords#majorMinor reads it (a number: compared for every directory). */
  rootDevice: number;
  crossFilesystems: boolean;
  /**
   * A subdirectory is opened before it is stat'ed (DirScan#subdirectory):
   * only when nothing is mounted below the tree, as opening a mount point
   * triggers an automount, which a stat (AT_NO_AUTOMOUNT) does not.
   */
  openSubdirsFirst: boolean;
  /**
   * The GC preview's walk of `.chunks` (chunk-records.ts): every entry of
   * `.chunks` and of its prefix directories becomes a record instead of an
   * offender (owners are not tallied: the records carry them), and only
   * what the server's sweep opens is listed: prefix directories named
   * `0000`..`ffff`, never a directory at a chunk's name.
   */
  chunkRecords?: boolean;
}

export interface DirScanResult {
  /** A first part of a large directory, handed over early so other workers can start on its subdirectories. */
  partial?: boolean;
  /** The subdirectories to visit, as runs (task-runs.ts). */
  subdirs: TaskRun[];
  offenders: Offender[];
  problems: Problem[];
  entries: number;
  role: DirRole;
  /** Set when `entries` leaves out the directory's own stat, taken here as its parent's entry with this role (DirScan#self). */
  selfRole?: Role;
  /** That stat showed a directory on this filesystem (or crossing was asked for): one its parent's listing would have counted as a subdirectory. */
  selfIsSubdir?: boolean;
}

/**
 * The results of several directories merged, for one message from a worker and
 * one pass of the collector (a store has 65,536 directories; per-directory
 * objects cost more to copy between threads than to scan): counts by role,
 * the kept entries together, and the owner tallies.
 */
export interface ScanBatch {
  /** Directories scanned completely (a first part of a large one is not). */
  directories: number;
  entries: number;
  /** Chunk stores: subdirectories of .chunks found in its listing (the progress total). */
  prefixDirsListed: number;
  /** Chunk stores: those of them stat'ed and found to be directories on this filesystem (the owner census). */
  prefixDirsCounted: number;
  /** Chunk stores: prefix directories scanned completely, and the entries found in them. */
  prefixDirsDone: number;
  chunksListed: number;
  /** .chunks itself in this batch: a part of it, or its last part. */
  chunksRoot?: 'part' | 'done';
  subdirs: TaskRun[];
  offenders: Offender[];
  problems: Problem[];
  tallies: OwnerTally[];
  /**
   * With ScanSettings#chunkRecords: the records of this batch (a buffer transferred, not
   * copied). Read them inside the sink: the buffer goes back to the thread that wrote it
   * once the sink returns (Scanner#recycle), to be written again.
   */
  chunkRecords?: ChunkRecordBatch;
}

export function emptyBatch(): ScanBatch {
  return { directories: 0, entries: 0, prefixDirsListed: 0, prefixDirsCounted: 0, prefixDirsDone: 0, chunksListed: 0, subdirs: [], offenders: [], problems: [], tallies: [] };
}

function append<T>(to: T[], items: T[]): void {
  for (const item of items) to.push(item); // not push(...items): .chunks has 65,536 subdirectories
}

/** Add one directory's result (or a part of one) to `batch`. */
export function addToBatch(batch: ScanBatch, result: DirScanResult): void {
  if (!result.partial) batch.directories++;
  batch.entries += result.entries;
  if (result.selfRole) {
    batch.entries++;
    // A directory inside a prefix directory is one of that directory's entries.
    if (result.selfRole === 'chunk') batch.chunksListed++;
    if (result.selfRole === 'prefix-dir' && result.selfIsSubdir) batch.prefixDirsCounted++;
  }
  if (result.role === 'chunks-root') {
    for (const run of result.subdirs) {
      batch.prefixDirsListed += run.count;
      // The ones stat'ed in the listing; the others count once their own stat is in (above).
      if (!run.entryRole) batch.prefixDirsCounted += run.count;
    }
    batch.chunksRoot = result.partial && batch.chunksRoot !== 'done' ? 'part' : 'done';
  }
  if (result.role === 'prefix-dir') {
    batch.chunksListed += result.entries;
    if (!result.partial) batch.prefixDirsDone++;
  }
  append(batch.subdirs, result.subdirs);
  append(batch.offenders, result.offenders);
  append(batch.problems, result.problems);
}

function childRoles(parent: DirRole, name: RelPath): { role: Role; dirRole: DirRole } {
  switch (parent) {
    case 'store-root':
      return name === '.chunks' ? { role: 'chunks-dir', dirRole: 'chunks-root' } : { role: 'other', dirRole: 'other' };
    case 'chunks-root':
      return { role: 'prefix-dir', dirRole: 'prefix-dir' };
    case 'prefix-dir':
      return { role: 'chunk', dirRole: 'other' };
    case 'blob':
      return { role: 'blob', dirRole: 'blob' };
    default:
      return { role: 'other', dirRole: 'other' };
  }
}

const HAND_OVER_SUBDIRS = 1024;

/** A failed statx as a code: its errno, or ENODATA when it succeeded without a field chunkguard needs. */
function statError(errno: number): string {
  return errno === 0 ? 'ENODATA' : errnoName(errno);
}

function offender(rel: RelPath, stat: StatWords, issues: number, role: Role): Offender {
  const type = stat.mode & S_IFMT;
  return { rel, mode: stat.mode, uid: stat.uid, gid: stat.gid, size: type === S_IFREG ? stat.size : 0, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs, dev: stat.dev, ino: stat.ino, attributes: stat.attributes, issues, role };
}

/** Where a scanner reads the name of the entry whose stat it hands over: decoded only for the entries kept. */
interface EntryNames {
  nameOf(ref: number): Buffer;
  /** The same name without a Buffer made for it: NUL-terminated at nameStart(ref) of nameBuffer. */
  readonly nameBuffer: Buffer;
  nameStart(ref: number): number;
}

/** What the scanners share: the tree, the settings, the tallies, the hand-over of large directories. */
export abstract class Scanner {
  readonly tallies = new OwnerTallies();
  /** Set with ScanSettings#chunkRecords. */
  readonly records: ChunkRecordWriter | undefined;
  protected readonly reader = new DirentReader();

  /**
   * `handOver` receives the first parts of a large directory (.chunks has
   * 65536 subdirectories): the other workers start on them while this one
   * is still listing.
   */
  constructor(
    protected readonly tree: DirTree,
    readonly settings: ScanSettings,
    readonly handOver?: (part: DirScanResult) => void,
  ) {
    this.records = settings.chunkRecords ? new ChunkRecordWriter() : undefined;
  }

  /** What this thread has gathered since the last drain, into `batch`: the owner tallies and the chunk records. */
  drainInto(batch: ScanBatch): void {
    batch.tallies = this.tallies.drain();
    const records = this.records?.drain();
    if (records) batch.chunkRecords = records;
  }

  /** The buffers of records read in the main thread, handed back to be written again. */
  recycle(buffers: ArrayBuffer[]): void {
    for (const buffer of buffers) this.records?.recycle(buffer);
  }

  /** Scan the tasks `next` hands out, each result to `done` once its directory is complete; until `next` has none left and nothing is in flight. */
  abstract run(next: () => DirTask | undefined, done: (result: DirScanResult) => void): void;

  /** Releases what the scanner holds (a ring waits for its stats in flight first). */
  close(): void {}

  /**
   * The listed entry at `start` handed to `scan` as a subdirectory to open
   * before it is stat'ed (DirScan#subdirectory), when the settings allow it
   * and the listing says it is a directory; false when it is to be stat'ed now.
   */
  protected listedSubdirectory(scan: DirScan, start: number): boolean {
    if (!this.settings.openSubdirsFirst || this.reader.typeAt(start) !== DT_DIR || !scan.opensFirst(this.reader.buf, start)) return false;
    scan.subdirectory(this.reader.nameAt(start));
    return true;
  }

  /** A directory's own stat (DirScan#self), into scratch. */
  private readonly selfStat = new StatWords(Buffer.alloc(STATX_SIZE));

  /**
   * Open the task's directory, a descriptor of its own for the caller to
   * close, and, when its own stat is still to be taken, take it from the
   * open directory. Undefined when it is not to be listed: it could not be
   * opened, is on another filesystem, or is no longer a directory (`scan`
   * says which, where there is something to say).
   */
  protected openTask(scan: DirScan): Dir | undefined {
    const { task } = scan;
    let dir: Dir;
    try {
      dir = this.tree.openOwned(task.parent, task.name);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      if (!task.entryRole || this.statThroughParent(scan)) scan.cannotList(error);
      return undefined;
    }
    if (!task.entryRole) return dir;
    let listable = false;
    try {
      const { selfStat } = this;
      const errno = dir.statInto('', selfStat.buf);
      // What a failed stat in the parent's listing said: its parent is reported, this one not visited.
      if (errno !== 0 || !selfStat.complete) scan.parentCannotStat(statError(errno));
      else listable = scan.self(selfStat);
    } finally {
      if (!listable) dir.close();
    }
    return listable ? dir : undefined;
  }

  /**
   * The stat of a directory that could not be opened, through its parent.
   * True when it is still a directory here (so: it cannot be listed); false
   * when it is gone, on another filesystem, or replaced by something else
   * since the listing (then it is an entry like any other).
   */
  private statThroughParent(scan: DirScan): boolean {
    let errno: number;
    try {
      errno = this.tree.statEntry(scan.task.parent, scan.task.name, this.selfStat.buf);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      return true; // the parent itself cannot be opened again: the child's open error says enough
    }
    if (errno === 0 && this.selfStat.complete) return scan.self(this.selfStat);
    const code = statError(errno);
    // Gone since the listing (GC or a writer running beside): nothing to report.
    if (code !== 'ENOENT') scan.parentCannotStat(code);
    return false;
  }
}

/**
 * One directory while it is scanned: its result so far, fed entry by entry
 * in whatever order the stats finish. An entry that cannot be stat'ed (but is
 * there) makes the directory UNREADABLE once, with the errno of the first such
 * entry in listing order; the other entries are still examined.
 */
class DirScan {
  readonly result: DirScanResult;
  private readonly roles: ReturnType<typeof childRoles>;
  private readonly subdirs: RunBuilder;
  private failedAt = Infinity;
  private failedCode = '';
  /** Chunk records: written for `.chunks` and the prefix directories, not for other directories. */
  private readonly records: ChunkRecordWriter | undefined;
  /** Chunk records: this prefix directory's number. */
  private readonly prefix: number = NOT_A_PREFIX;
  /** Chunk records: a PREFIX_STAT said this prefix directory will be listed, so a PREFIX_DONE follows. */
  private announced = false;
  private listError: string | undefined;

  constructor(
    readonly task: DirTask,
    private readonly core: Scanner,
  ) {
    this.result = { subdirs: [], offenders: [], problems: [], entries: 0, role: task.role };
    this.roles = childRoles(task.role, '');
    this.subdirs = new RunBuilder(task.rel);
    const { records } = core;
    if (records && (task.role === 'chunks-root' || task.role === 'prefix-dir')) {
      this.records = records;
      if (task.role === 'prefix-dir') {
        this.prefix = prefixOfPath(task.rel);
        // Stat'ed in `.chunks`' listing: announced there. Else its own stat (self) announces it.
        this.announced = !task.entryRole && this.prefix !== NOT_A_PREFIX;
      }
    }
  }

  /** The directory itself could not be opened or listed. */
  cannotList(error: FsError): void {
    const kind = isUnsafePath(error) ? 'unsafe' : 'unlistable';
    this.listError ??= error.code;
    this.result.problems.push({ kind, rel: this.task.rel, detail: kind === 'unsafe' ? error.detail : `cannot list (${error.code})`, errno: error.code });
  }

  /**
   * Whether the subdirectory named at `start` of `names` (NUL-terminated) is
   * opened before it is stat'ed (Scanner#listedSubdirectory). With chunk
   * records only prefix directories are listed: other entries are stat'ed
   * in place, as the sweep stats a directory at a chunk's name and passes on.
   */
  opensFirst(names: Buffer, start: number): boolean {
    if (!this.records) return true;
    return this.task.role === 'chunks-root' && prefixAt(names, start) !== NOT_A_PREFIX;
  }

  /** The statx of the entry listed at `index` failed with `errno` (0: it left out a field chunkguard needs). */
  statFailed(index: number, errno: number): void {
    const code = statError(errno);
    if (code === 'ENOENT' || index > this.failedAt) return; // removed since the listing (GC or a writer running beside)
    this.failedAt = index;
    this.failedCode = code;
  }

  /**
   * One entry's stat: tally, classify; keeps it when it is a subdirectory to
   * visit or has a problem. The name (NUL-terminated) is decoded only then.
   */
  entry(stat: StatWords, names: EntryNames, ref: number): void {
    const { task, result } = this;
    result.entries++;
    let entry: RelPath | undefined;
    const { role, dirRole } = task.role === 'store-root' ? childRoles(task.role, (entry = nameFromBytes(entryName(names.nameOf(ref))))) : this.roles;
    const issues = this.examine(stat, role);
    if (this.records) {
      this.record(stat, names, ref, issues);
      return;
    }
    const isDirectory = (stat.mode & S_IFMT) === S_IFDIR;
    if (!isDirectory && issues === 0) return;

    const name = entry ?? nameFromBytes(entryName(names.nameOf(ref)));
    if (isDirectory) {
      if (this.otherFilesystem(stat, name)) return;
      this.visit(name, dirRole);
    }
    if (issues !== 0) result.offenders.push(offender(joinRel(task.rel, name), stat, issues, role));
  }

  /**
   * Chunk records: an entry of a prefix directory (ignored in a directory of
   * `.chunks` with another name: the sweep never opens one), or of `.chunks`
   * (a prefix directory is visited when it is a directory on this
   * filesystem, or crossing was asked for).
   */
  private record(stat: StatWords, names: EntryNames, ref: number, issues: number): void {
    const { records, task } = this;
    if (task.role === 'prefix-dir') {
      if (this.prefix !== NOT_A_PREFIX) records!.entry(this.prefix, names.nameBuffer, names.nameStart(ref), stat, issues);
      return;
    }
    const prefix = prefixAt(names.nameBuffer, names.nameStart(ref));
    let name: RelPath | undefined;
    if (prefix !== NOT_A_PREFIX && (stat.mode & S_IFMT) === S_IFDIR) {
      name = nameFromBytes(entryName(names.nameOf(ref)));
      if (this.otherFilesystem(stat, name)) name = undefined;
    }
    records!.prefixStat(prefix, stat, issues, name !== undefined);
    if (name !== undefined) this.visit(name, 'prefix-dir');
  }

  /**
   * An entry the listing says is a directory (d_type), `name` NUL-terminated:
   * to visit, and stat'ed (and counted) only once it is open (self). On a
   * FUSE or network filesystem the kernel keeps a name's lookup for a moment
   * only (sshfs: a second); a stat here and an open seconds later, when a
   * thread gets to it, cost two lookups, each a round trip. Opened first, the
   * stat of the open directory is the one its lookup brought.
   */
  subdirectory(name: Buffer): void {
    const { task } = this;
    const entry = nameFromBytes(entryName(name));
    const { role, dirRole } = task.role === 'store-root' ? childRoles(task.role, entry) : this.roles;
    this.visit(entry, dirRole, role);
  }

  /**
   * This directory's own stat, taken once opened or, when it could not be
   * opened, through its parent (the task's entryRole): tally, classify.
   * Returns whether to list it: a directory on this filesystem (or crossing
   * was asked for); it may have been replaced by something else since the listing.
   */
  self(stat: StatWords): boolean {
    const { task, result } = this;
    const role = task.entryRole!;
    result.selfRole = role;
    const issues = this.examine(stat, role);
    const isDirectory = (stat.mode & S_IFMT) === S_IFDIR;
    const elsewhere = isDirectory && this.otherFilesystem(stat);
    if (this.records && role === 'prefix-dir') {
      this.announced = isDirectory && !elsewhere && this.prefix !== NOT_A_PREFIX;
      this.records.prefixStat(this.prefix, stat, issues, this.announced);
    } else if (issues !== 0 && !elsewhere) result.offenders.push(offender(task.rel, stat, issues, role));
    if (elsewhere) return false;
    result.selfIsSubdir = isDirectory;
    return isDirectory;
  }

  /** Tally the entry (the audit's owners; chunk records carry their own), then what is wrong with it for its role (0: nothing). */
  private examine(stat: StatWords, role: Role): number {
    const { mode, uid, gid } = stat;
    const type = mode & S_IFMT;
    if (!this.records) this.core.tallies.add(uid, gid, type === S_IFREG ? stat.size : 0, type === S_IFDIR, stat.mtimeMs, stat.ctimeMs);
    return classify(mode, uid, gid, stat.attributes, role, this.core.settings);
  }

  /**
   * A directory on another filesystem (a mount inside the tree): reported, not visited,
   * unless crossing was asked for. `name`: an entry of this directory; else this directory.
   */
  private otherFilesystem(stat: StatWords, name?: RelPath): boolean {
    const { settings } = this.core;
    if (stat.majorMinor === settings.rootDevice || settings.crossFilesystems) return false;
    const rel = name === undefined ? this.task.rel : joinRel(this.task.rel, name);
    this.result.problems.push({ kind: 'mount-not-crossed', rel, detail: `another filesystem (device ${formatDev(stat.dev)}) is mounted here` });
    return true;
  }

  private visit(name: RelPath, role: DirRole, entryRole?: Role): void {
    this.subdirs.add(name, role, entryRole);
    if (this.subdirs.count >= HAND_OVER_SUBDIRS && this.core.handOver) this.handOverPart();
  }

  /**
   * This directory could not be opened, nor stat'ed through its parent: what
   * the parent's scan would have said had it stat'ed it there (the parent
   * has no search permission, say). The collector counts a directory once.
   */
  parentCannotStat(code: string): void {
    this.result.problems.push({ kind: 'unlistable', rel: parentRel(this.task.rel), detail: `cannot stat entries (${code})`, errno: code, repeated: true });
  }

  /** The result, once every entry is in. */
  finish(): DirScanResult {
    if (this.announced) this.records!.prefixDone(this.prefix, this.listError);
    if (this.failedAt !== Infinity) {
      this.result.problems.push({ kind: 'unlistable', rel: this.task.rel, detail: `cannot stat entries (${this.failedCode})`, errno: this.failedCode, repeated: true });
    }
    this.result.subdirs = this.subdirs.take();
    return this.result;
  }

  private handOverPart(): void {
    const { result } = this;
    this.core.handOver!({ partial: true, subdirs: this.subdirs.take(), offenders: result.offenders, problems: result.problems, entries: result.entries, role: result.role });
    result.offenders = [];
    result.problems = [];
    result.entries = 0;
  }
}

/** One statx at a time, synchronously: where io_uring cannot be used. */
export class DirScanner extends Scanner implements EntryNames {
  private readonly stat = new StatWords(Buffer.alloc(STATX_SIZE));

  // The directory being scanned, read by the one visitor: no closure per directory (a store has 65,536).
  private dir!: Dir;
  private scanning!: DirScan;
  private index = 0;
  private start = 0;
  private readonly visit = (start: number): boolean => this.examine(start);

  run(next: () => DirTask | undefined, done: (result: DirScanResult) => void): void {
    for (let task = next(); task; task = next()) done(this.scan(task));
  }

  scan(task: DirTask): DirScanResult {
    const scan = new DirScan(task, this);
    // openat(O_NOFOLLOW|O_DIRECTORY) one component at a time refuses a symlink or a non-directory.
    const dir = this.openTask(scan);
    if (!dir) return scan.finish();
    try {
      this.dir = dir;
      this.scanning = scan;
      this.index = 0;
      dir.forEachName(this.reader, this.visit);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      scan.cannotList(error);
    } finally {
      dir.close();
    }
    return scan.finish();
  }

  nameOf(): Buffer {
    return this.reader.nameAt(this.start);
  }

  get nameBuffer(): Buffer {
    return this.reader.buf;
  }

  nameStart(): number {
    return this.start;
  }

  private examine(start: number): boolean {
    if (this.listedSubdirectory(this.scanning, start)) {
      this.index++;
      return true;
    }
    const { stat } = this;
    const errno = this.dir.statAt(this.reader, start, stat);
    const index = this.index++;
    if (errno !== 0 || !stat.complete) this.scanning.statFailed(index, errno);
    else {
      this.start = start;
      this.scanning.entry(stat, this, 0);
    }
    return true;
  }
}

/** A directory whose stats are in flight, held open (its own descriptor) until the last one is in. */
interface Pending {
  scan: DirScan;
  dir: Dir;
  stats: number;
  listed: boolean;
}

/**
 * Many stats in flight through an io_uring (StatRing): it lists a directory,
 * queues a statx per entry, and goes on to the next directory while the
 * kernel runs them; results are examined as they come back. At most
 * MAX_DIRECTORIES directories are in flight (each holds a descriptor).
 */
export class RingScanner extends Scanner {
  private static readonly MAX_DIRECTORIES = 64;
  private readonly pending: (Pending | undefined)[] = [];
  private readonly freeIds: number[] = [];
  /** The listing index of the entry in each ring slot (the first failure in listing order is the one reported). */
  private readonly indexOf: Int32Array;
  private done: (result: DirScanResult) => void = () => {};
  private readonly complete = (id: number, errno: number, stat: StatWords, slot: number): void => this.examine(id, errno, stat, slot);

  // The directory being listed, read by the one visitor.
  private listing!: Pending;
  private listingId = 0;
  private index = 0;
  private readonly visit = (start: number): boolean => this.queue(start);

  constructor(
    tree: DirTree,
    settings: ScanSettings,
    private readonly ring: StatRing,
    handOver?: (part: DirScanResult) => void,
  ) {
    super(tree, settings, handOver);
    this.indexOf = new Int32Array(ring.depth);
    for (let id = RingScanner.MAX_DIRECTORIES - 1; id >= 0; id--) this.freeIds.push(id);
  }

  run(next: () => DirTask | undefined, done: (result: DirScanResult) => void): void {
    this.done = done;
    for (;;) {
      let task: DirTask | undefined;
      while (this.freeIds.length > 0 && !this.ring.full && (task = next())) this.start(task);
      // Nothing in flight and nothing to start: every directory is done (a result may still bring new tasks, so only then).
      if (this.ring.inFlight === 0) return;
      this.ring.collect(true, this.complete);
    }
  }

  override close(): void {
    try {
      this.ring.close();
    } finally {
      for (const pending of this.pending) pending?.dir.close();
    }
  }

  private start(task: DirTask): void {
    const scan = new DirScan(task, this);
    // Its own descriptor: the tree may close its copy while stats relative to it are in flight.
    const dir = this.openTask(scan);
    if (!dir) {
      this.done(scan.finish());
      return;
    }
    const id = this.freeIds.pop()!;
    const pending: Pending = { scan, dir, stats: 0, listed: false };
    this.pending[id] = pending;
    this.listing = pending;
    this.listingId = id;
    this.index = 0;
    try {
      dir.forEachName(this.reader, this.visit);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      scan.cannotList(error); // the entries queued before the failure still count
    }
    pending.listed = true;
    if (pending.stats === 0) this.finish(id);
  }

  private queue(start: number): boolean {
    const { ring, listing } = this;
    if (this.listedSubdirectory(listing.scan, start)) {
      this.index++;
      return true;
    }
    while (ring.full) ring.collect(true, this.complete);
    this.indexOf[listing.dir.queueStat(ring, this.reader, start, this.listingId)] = this.index++;
    listing.stats++;
    return true;
  }

  private examine(id: number, errno: number, stat: StatWords, slot: number): void {
    const pending = this.pending[id]!;
    if (errno !== 0 || !stat.complete) pending.scan.statFailed(this.indexOf[slot]!, errno);
    else pending.scan.entry(stat, this.ring, slot);
    if (--pending.stats === 0 && pending.listed) this.finish(id);
  }

  private finish(id: number): void {
    const pending = this.pending[id]!;
    this.pending[id] = undefined;
    this.freeIds.push(id);
    pending.dir.close();
    this.done(pending.scan.finish());
  }
}

/**
 * The scanner for this thread: through its own io_uring when there is a ring
 * plan and a ring opens here, else one statx at a time (the same answer).
 */
export function openScanner(tree: DirTree, settings: ScanSettings, plan: RingPlan | undefined, handOver?: (part: DirScanResult) => void): Scanner {
  const ring = plan && StatRing.open(plan.depth, plan.kernelWorkers);
  return ring instanceof StatRing ? new RingScanner(tree, settings, ring, handOver) : new DirScanner(tree, settings, handOver);
}
