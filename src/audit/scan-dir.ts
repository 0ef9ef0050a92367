/**
 * Scans one directory of the audited tree: lists it through the descriptor
 * the tree holds, statx()es every entry relative to it (never following a
 * symlink), tallies owners, and returns the entries with problems and the
 * subdirectories still to visit. Runs inside a worker thread.
 */
import { DirentReader, entryName } from '../fs/dirents.js';
import type { DirTree } from '../fs/dir-tree.js';
import { errnoName, FsError, isUnsafePath } from '../fs/errors.js';
import { joinRel, nameFromBytes, type RelPath } from '../fs/rel-path.js';
import { formatDev, S_IFDIR, S_IFMT, S_IFREG, STATX_SIZE, StatWords } from '../fs/stat.js';
import type { Dir } from '../fs/dir.js';
import { classify, type ClassifyContext, type Role } from './classify.js';
import { OwnerTallies } from './tally.js';

/** What a directory is in the layout; decides its children's roles. */
export type DirRole = 'store-root' | 'chunks-root' | 'prefix-dir' | 'blob' | 'other';

export interface DirTask {
  rel: RelPath;
  role: DirRole;
}

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
}

export interface ScanSettings extends ClassifyContext {
  /** The root's device as StatWords#majorMinor reads it (a number: compared for every directory). */
  rootDevice: number;
  crossFilesystems: boolean;
}

export interface DirScanResult {
  /** A first part of a large directory, handed over early so other workers can start on its subdirectories. */
  partial?: boolean;
  subdirs: DirTask[];
  offenders: Offender[];
  problems: Problem[];
  entries: number;
  role: DirRole;
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

export class DirScanner {
  readonly tallies = new OwnerTallies();

  private readonly stat = new StatWords(Buffer.alloc(STATX_SIZE));
  private readonly reader = new DirentReader();

  /**
   * `handOver` receives the first parts of a large directory (.chunks has
   * 65536 subdirectories): the other workers start on them while this one
   * is still listing.
   */
  constructor(
    private readonly tree: DirTree,
    private readonly settings: ScanSettings,
    private readonly handOver?: (part: DirScanResult) => void,
  ) {}

  // The directory being scanned, read by the one visitor: no closure or object per directory (a store has 65,536).
  private dir!: Dir;
  private task!: DirTask;
  private result!: DirScanResult;
  private roles!: ReturnType<typeof childRoles>;
  private readonly visit = (name: Buffer): boolean => this.examine(name);

  scan(task: DirTask): DirScanResult {
    const result: DirScanResult = { subdirs: [], offenders: [], problems: [], entries: 0, role: task.role };
    try {
      // openat(O_NOFOLLOW|O_DIRECTORY) one component at a time refuses a symlink or a non-directory.
      const dir = this.tree.open(task.rel);
      this.dir = dir;
      this.task = task;
      this.result = result;
      this.roles = childRoles(task.role, '');
      dir.forEachEntry(this.reader, this.visit);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      const kind = isUnsafePath(error) ? 'unsafe' : 'unlistable';
      result.problems.push({ kind, rel: task.rel, detail: kind === 'unsafe' ? error.detail : `cannot list (${error.code})`, errno: error.code });
    }
    return result;
  }

  /**
   * One entry: statx relative to the directory, tally, classify; keeps it
   * when it is a subdirectory to visit or has a problem. `name` is
   * NUL-terminated inside the getdents buffer, decoded only when kept.
   * False stops the directory.
   */
  private examine(name: Buffer): boolean {
    const { stat, settings, dir, task, result, roles } = this;
    const errno = dir.statInto(name, stat.buf);
    if (errno !== 0 || !stat.complete) {
      const code = errno === 0 ? 'ENODATA' : errnoName(errno);
      if (code === 'ENOENT') return true; // removed since the listing (GC or a writer running beside)
      result.problems.push({ kind: 'unlistable', rel: task.rel, detail: `cannot stat entries (${code})`, errno: code });
      return false;
    }
    result.entries++;
    const { mode, uid, gid } = stat;
    const type = mode & S_IFMT;
    const size = type === S_IFREG ? stat.size : 0;
    const { mtimeMs, ctimeMs } = stat;
    const isDirectory = type === S_IFDIR;
    this.tallies.add(uid, gid, size, isDirectory, mtimeMs, ctimeMs);
    let entry: RelPath | undefined;
    const { role, dirRole } = task.role === 'store-root' ? childRoles(task.role, (entry = nameFromBytes(entryName(name)))) : roles;
    const attributes = stat.attributes;
    const issues = classify(mode, uid, gid, attributes, role, settings);
    if (!isDirectory && issues === 0) return true;

    const rel = joinRel(task.rel, entry ?? nameFromBytes(entryName(name)));
    if (isDirectory) {
      if (stat.majorMinor !== settings.rootDevice && !settings.crossFilesystems) {
        result.problems.push({ kind: 'mount-not-crossed', rel, detail: `another filesystem (device ${formatDev(stat.dev)}) is mounted here` });
        return true;
      }
      result.subdirs.push({ rel, role: dirRole });
      if (result.subdirs.length >= HAND_OVER_SUBDIRS && this.handOver) this.handOverPart(result);
    }
    if (issues !== 0) result.offenders.push({ rel, mode, uid, gid, size, mtimeMs, ctimeMs, dev: stat.dev, ino: stat.ino, attributes, issues, role });
    return true;
  }

  private handOverPart(result: DirScanResult): void {
    this.handOver!({ partial: true, subdirs: result.subdirs, offenders: result.offenders, problems: result.problems, entries: result.entries, role: result.role });
    result.subdirs = [];
    result.offenders = [];
    result.problems = [];
    result.entries = 0;
  }
}
