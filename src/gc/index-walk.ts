/**
 * Every index file the server's GC would read, in the order it reads them,
 * judged for the GC user (pbs-datastore datastore.rs mark_used_chunks and
 * list_index_files, hierarchy.rs, backup_info.rs, 4.2.3; walkdir 2.5).
 *
 * GC finds indexes twice. First a whole-store walk (walkdir): no symlink
 * followed, other filesystems crossed, every entry whose name is UTF-8 and
 * starts with `.` skipped with what is below it (`.chunks`), every name with
 * the extension fidx or didx kept, whatever its type. Then the scheme's
 * listings (scheme.ts) read each snapshot's regular index files in order;
 * what the walk kept and the scheme did not reach is read last ("outside the
 * scheme"). One pass here gives both: each directory is listed once, as
 * chunkguard (root may read what the GC user cannot), and judged from its
 * mode bits for the GC user.
 *
 * Where the server stops: the walk aborts GC at a directory it cannot list
 * (EACCES, EPERM) or at any other error, except `lost+found` right below the
 * root, whose EACCES is skipped; an entry that vanished is skipped (a prune).
 * The scheme's listings abort at a name they cannot take (SchemeStop).
 *
 * The walk's filter sees the root too: a store whose own directory name
 * starts with `.` gets no whole-store walk at all. GC then reads only the
 * scheme, and an index outside it is never read (`unread`).
 */
import type { Dir } from '../fs/dir.js';
import { DirTree } from '../fs/dir-tree.js';
import { DirentReader, DT_DIR, DT_UNKNOWN, entryName } from '../fs/dirents.js';
import { FsError } from '../fs/errors.js';
import { joinRel, nameFromBytes, relBytes, type RelPath } from '../fs/rel-path.js';
import { fileType, type FileType, type Stat } from '../fs/stat.js';
import { canRead, canSearch, type GcUser } from '../system/access.js';
import { throwIfAborted } from '../errors.js';
import { type IndexKind, indexKindOf } from './index-file.js';
import {
  compareMarking,
  isSchemeIndex,
  type MarkingKey,
  MAX_NAMESPACE_DEPTH,
  NAMESPACE_DIR,
  ROOT_NAMESPACE,
  type SchemeDir,
  schemeChild,
  type SchemeRefusal,
  snapshotRel,
} from './scheme.js';

export interface FoundIndex {
  rel: RelPath;
  kind: IndexKind;
  /** The snapshot directory (relative) when the scheme reads it; absent for an index outside the scheme. */
  snapshot?: string;
  /** From lstat: a symlink named x.fidx is listed (the server's open() follows it), a FIFO too (never opened here). */
  type: FileType;
  uid: number;
  gid: number;
  mode: number;
  /** From the same lstat, in bytes. */
  size: number;
}

export interface WalkStop {
  rel: RelPath;
  errno: string;
  uid?: number;
  gid?: number;
  mode?: number;
  /**
   * What the GC user lacks there, from the mode bits: `read` (it cannot list
   * it), `search` (it can list it but not open what GC opens in it). Absent
   * when only chunkguard was refused (the mode bits let the GC user in).
   */
  lacks?: 'read' | 'search';
  /** chunkguard listed it: what is below it is in the walk, read with more rights than GC has. */
  listed: boolean;
}

/**
 * A name that stops the server's scheme listings (its GC aborts there, after
 * the whole-store walk): `BAD_NAMESPACE`, a directory in `ns/` whose name is
 * no namespace name (`.hidden` too); `BAD_SNAPSHOT_TIME`, a snapshot name
 * with a field out of range (month 13); `NOT_A_DIRECTORY`, a namespace's
 * `ns` that is a file (ENOTDIR) or a FIFO, socket or device (the server's
 * open of a FIFO waits for a writer: GC hangs).
 */
export type SchemeStopCode = 'BAD_NAMESPACE' | 'BAD_SNAPSHOT_TIME' | 'NOT_A_DIRECTORY';

export interface SchemeStop {
  rel: RelPath;
  code: SchemeStopCode;
  reason: string;
  /** NOT_A_DIRECTORY: what it is. */
  type?: FileType;
}

export interface IndexWalk {
  /**
   * In the server's marking order: first the scheme (root namespace, then
   * child namespaces depth first; groups in order; a group's snapshots
   * newest first; a snapshot's files by name), then those outside the
   * scheme (sorted by path).
   */
  indexes: FoundIndex[];
  /** How many of `indexes` are outside the scheme. */
  outsideScheme: number;
  /** Every snapshot directory of the scheme (relative), sorted, also one without indexes. */
  snapshots: string[];
  /**
   * Directories GC opens that the GC user cannot list or enter (or that
   * chunkguard itself was refused), in walk order: GC aborts at the first.
   * Below one of them nothing is judged again (the GC user never gets there).
   */
  denied: WalkStop[];
  /** Directories chunkguard could not list for another reason (EIO, …): GC aborts there too. */
  unreadable: WalkStop[];
  /** Names the scheme's listings stop at, in marking order. */
  schemeStops: SchemeStop[];
  /** The store's own directory name starts with `.`: the server's whole-store walk reads nothing. */
  hiddenRoot: boolean;
  /** With `hiddenRoot`: the indexes outside the scheme, which GC then never reads (sorted by path). */
  unread: FoundIndex[];
}

/** Test seams. */
export interface WalkHooks {
  /** Called after a directory is listed, before its entries are stat'ed. */
  listed?: (rel: RelPath) => void;
}

/** How often (in directories) the signal is looked at. */
const CHECK_SIGNAL_EVERY = 256;
const LOST_FOUND = 'lost+found';

interface Owner {
  uid: number;
  gid: number;
  mode: number;
}

interface Task {
  rel: RelPath;
  name: RelPath;
  /** Its place in the scheme; undefined outside it. */
  role: SchemeDir | undefined;
  depth: number;
  owner: Owner;
  /** A directory above it is denied to the GC user. */
  blocked: boolean;
}

interface Entry {
  name: RelPath;
  bytes: Buffer;
  dtype: number;
}

interface Found {
  index: FoundIndex;
  /** Scheme indexes only. */
  key?: MarkingKey;
  /** Outside ones only: the path's bytes, to sort by. */
  bytes?: Buffer;
}

/** What one directory's listing adds to the walk. */
interface Listing {
  found: Found[];
  stops: Array<{ stop: SchemeStop; key: MarkingKey }>;
  snapshots: string[];
  children: Task[];
  /** GC opens something in it (a subdirectory, an index): searching it matters. */
  opensInside: boolean;
}

/** walkdir's filter: a UTF-8 name starting with `.` (a name that is not UTF-8 is never hidden). */
function isHidden(name: RelPath): boolean {
  return typeof name === 'string' && name.startsWith('.');
}

/**
 * The root's name as walkdir's filter sees it (Rust's file_name): the last
 * component with `.` components normalised away; a path ending in `..` has
 * none, and the whole path (absolute: never hidden) stands for it.
 */
function rootName(path: string): string {
  const last = path.split('/').filter((part) => part !== '' && part !== '.').at(-1);
  return last === undefined || last === '..' ? path : last;
}

const ownerOf = (stat: Stat): Owner => ({ uid: stat.uid, gid: stat.gid, mode: stat.mode });

/** What the GC user lacks on a directory: opendir needs the read bit, opening anything in it the search bit. */
function lacking(owner: Owner, user: GcUser): 'read' | 'search' | undefined {
  if (!canRead(owner.mode, owner.uid, owner.gid, user, false)) return 'read';
  if (!canSearch(owner.mode, owner.uid, owner.gid, user)) return 'search';
  return undefined;
}

/** The entries of a directory, by name (bytes): the server's order is readdir's, so any order is its; this one is the same everywhere. */
function listEntries(dir: Dir, reader: DirentReader): Entry[] {
  const entries: Entry[] = [];
  dir.forEachName(reader, (start) => {
    const bytes = entryName(reader.nameAt(start));
    entries.push({ name: nameFromBytes(bytes), bytes, dtype: reader.typeAt(start) });
    return true;
  });
  return entries.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
}

/** Whether an entry can matter without an index name: a directory (or unknown type), or a namespace's `ns`. */
function mayMatter(entry: Entry, role: SchemeDir | undefined): boolean {
  return entry.dtype === DT_DIR || entry.dtype === DT_UNKNOWN || (entry.name === NAMESPACE_DIR && role?.kind === 'namespace');
}

function foundIndex(rel: RelPath, kind: IndexKind, stat: Stat, snapshot?: string): FoundIndex {
  const index: FoundIndex = { rel, kind, type: fileType(stat.mode), uid: stat.uid, gid: stat.gid, mode: stat.mode, size: Number(stat.size) };
  if (snapshot !== undefined) index.snapshot = snapshot;
  return index;
}

function markingKeyOf(role: SchemeDir): MarkingKey {
  switch (role.kind) {
    case 'group':
      return { ns: role.ns, type: role.type, id: role.id };
    case 'snapshot':
      return { ns: role.ns, type: role.type, id: role.id, time: role.time, snapshot: role.name };
    default:
      return { ns: role.ns };
  }
}

/** A snapshot's index as the scheme reads it, with its place in the marking order. */
function schemeIndex(rel: RelPath, name: string, stat: Stat, snapshot: Extract<SchemeDir, { kind: 'snapshot' }>): Found {
  return { index: foundIndex(rel, indexKindOf(name)!, stat, snapshotRel(snapshot)), key: { ...markingKeyOf(snapshot), file: name } };
}

/** A refused name and where it stops GC: a bad namespace where that namespace would come, a bad snapshot before the group's snapshots. */
function refusal(rel: RelPath, parent: SchemeDir, name: string, refused: SchemeRefusal): { stop: SchemeStop; key: MarkingKey } {
  const key = parent.kind === 'namespaces' ? { ns: [...parent.ns, name] } : markingKeyOf(parent);
  return { stop: { rel, code: refused.code, reason: refused.reason }, key };
}

class IndexWalker {
  private readonly reader = new DirentReader();
  private readonly found: Found[] = [];
  private readonly stops: Array<{ stop: SchemeStop; key: MarkingKey }> = [];
  private readonly snapshots: string[] = [];
  readonly denied: WalkStop[] = [];
  readonly unreadable: WalkStop[] = [];

  constructor(
    private readonly user: GcUser,
    /** The server's whole-store walk runs (the root is not hidden). */
    private readonly walkMode: boolean,
    private readonly hooks: WalkHooks,
  ) {}

  run(tree: DirTree, rootOwner: Owner, signal: AbortSignal | undefined): void {
    const stack: Task[] = [{ rel: '', name: '', role: ROOT_NAMESPACE, depth: 0, owner: rootOwner, blocked: false }];
    for (let visited = 0; stack.length > 0; visited++) {
      if (visited % CHECK_SIGNAL_EVERY === 0) throwIfAborted(signal, 'the GC preview');
      const children = this.visit(tree, stack.pop()!);
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
  }

  /** One directory: judged, listed, its entries sorted into the walk; returns its subdirectories in order. */
  private visit(tree: DirTree, task: Task): Task[] {
    // The server opens it: always in the walk, else only a scheme directory.
    const opened = this.walkMode || task.role !== undefined;
    const judged = opened && !task.blocked;
    const lacks = judged ? lacking(task.owner, this.user) : undefined;
    if (lacks === 'read' && this.walkMode && task.depth === 1 && task.name === LOST_FOUND) return [];
    let listing: Listing;
    try {
      const dir = tree.open(task.rel);
      const entries = listEntries(dir, this.reader);
      this.hooks.listed?.(task.rel);
      listing = this.classifyEntries(dir, task, entries);
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      this.refused(task, error, { opened, judged, lacks });
      return [];
    }
    const denied = lacks === 'read' || (lacks === 'search' && listing.opensInside);
    if (denied) this.denied.push({ rel: task.rel, errno: 'EACCES', ...task.owner, lacks, listed: true });
    this.found.push(...listing.found);
    this.stops.push(...listing.stops);
    this.snapshots.push(...listing.snapshots);
    for (const child of listing.children) child.blocked = task.blocked || denied;
    return listing.children;
  }

  /**
   * chunkguard could not open, list or stat in a directory: vanished
   * (skipped), refused (denied, when GC would get there), or unreadable
   * (when GC opens it).
   */
  private refused(task: Task, error: FsError, as: { opened: boolean; judged: boolean; lacks: WalkStop['lacks'] }): void {
    const { code } = error;
    // Gone, or swapped for something else since its parent was listed (a prune, a rename): skipped.
    if (code === 'ENOENT' || code === 'EUNSAFEPATH' || code === 'ENOTDIR' || !as.opened) return;
    const stop: WalkStop = { rel: task.rel, errno: code, ...task.owner, listed: false };
    if (code !== 'EACCES' && code !== 'EPERM') this.unreadable.push(stop);
    else if (as.judged) this.denied.push(as.lacks ? { ...stop, lacks: as.lacks } : stop);
  }

  /** Each entry of a listed directory: an index (in the scheme or not), a subdirectory, a scheme stop, or nothing. */
  private classifyEntries(dir: Dir, task: Task, entries: Entry[]): Listing {
    const { role } = task;
    const listing: Listing = { found: [], stops: [], snapshots: [], children: [], opensInside: role?.kind === 'namespace' };
    for (const entry of entries) {
      const hidden = isHidden(entry.name);
      // Hidden names matter only to the scheme: a directory in ns/, an index in a snapshot.
      if (hidden && role?.kind !== 'namespaces' && role?.kind !== 'snapshot') continue;
      const kind = indexKindOf(entry.bytes);
      if (kind === undefined && !mayMatter(entry, role)) continue;
      const stat = dir.stat(entry.name);
      if (!stat) continue;
      const rel = joinRel(task.rel, entry.name);
      if (hidden) this.hiddenEntry(listing, role, entry, rel, stat);
      else this.visibleEntry(listing, task, entry, rel, stat);
    }
    return listing;
  }

  /** A hidden name the walk skips but the scheme reads or refuses. */
  private hiddenEntry(listing: Listing, role: SchemeDir | undefined, entry: Entry, rel: RelPath, stat: Stat): void {
    const type = fileType(stat.mode);
    if (role?.kind === 'snapshot' && type === 'file' && isSchemeIndex(entry.name)) {
      listing.found.push(schemeIndex(rel, entry.name as string, stat, role));
      listing.opensInside = true;
    } else if (role?.kind === 'namespaces' && type === 'directory') {
      const child = schemeChild(role, entry.name);
      if (child?.kind === 'refused') listing.stops.push(refusal(rel, role, entry.name as string, child));
    }
  }

  private visibleEntry(listing: Listing, task: Task, entry: Entry, rel: RelPath, stat: Stat): void {
    const { role } = task;
    const type = fileType(stat.mode);
    // walkdir stats an entry whose type the listing does not give.
    if (entry.dtype === DT_UNKNOWN && this.walkMode) listing.opensInside = true;
    const kind = indexKindOf(entry.bytes);
    if (kind !== undefined) {
      const inScheme = role?.kind === 'snapshot' && type === 'file' && isSchemeIndex(entry.name);
      if (inScheme) listing.found.push(schemeIndex(rel, entry.name as string, stat, role));
      else listing.found.push({ index: foundIndex(rel, kind, stat), bytes: relBytes(rel) });
      if (inScheme || this.walkMode) listing.opensInside = true;
    }
    if (type === 'directory') {
      const child = role && schemeChild(role, entry.name);
      const childRole = child?.kind === 'refused' ? undefined : child;
      if (child?.kind === 'refused') listing.stops.push(refusal(rel, role!, entry.name as string, child));
      if (childRole?.kind === 'snapshot') listing.snapshots.push(snapshotRel(childRole));
      if (childRole || this.walkMode) listing.opensInside = true;
      listing.children.push({ rel, name: entry.name, role: childRole, depth: task.depth + 1, owner: ownerOf(stat), blocked: false });
    } else if (entry.name === NAMESPACE_DIR && role?.kind === 'namespace' && role.ns.length < MAX_NAMESPACE_DEPTH && type !== 'symlink') {
      // Listed by path after the namespace's groups: ENOTDIR for a file; a FIFO's open() waits for a writer.
      const reason = `is a ${type} where the namespace's child namespaces belong: the server's listing of it fails${type === 'fifo' ? ' (its open waits for a writer: GC hangs)' : ''}`;
      listing.stops.push({ stop: { rel, code: 'NOT_A_DIRECTORY', reason, type }, key: { ns: [...role.ns, ''] } });
    }
  }

  /** The indexes in marking order, and what the walk stopped at. */
  result(hiddenRoot: boolean): IndexWalk {
    const scheme = this.found.filter((found) => found.key).sort((a, b) => compareMarking(a.key!, b.key!));
    const outside = this.found.filter((found) => !found.key).sort((a, b) => Buffer.compare(a.bytes!, b.bytes!));
    const indexOf = (found: Found) => found.index;
    return {
      indexes: [...scheme, ...(hiddenRoot ? [] : outside)].map(indexOf),
      outsideScheme: hiddenRoot ? 0 : outside.length,
      snapshots: this.snapshots.sort(),
      denied: this.denied,
      unreadable: this.unreadable,
      schemeStops: this.stops.sort((a, b) => compareMarking(a.key, b.key)).map((stop) => stop.stop),
      hiddenRoot,
      unread: hiddenRoot ? outside.map(indexOf) : [],
    };
  }
}

/**
 * Every index file GC would read below the open store root, in GC's order,
 * judged for `gcUser` (synchronous; the signal is looked at every few hundred
 * directories). Nothing is opened but directories; no symlink is followed.
 * Whether the root is hidden is judged from the name it was opened by, as
 * the server judges its configured path.
 */
export function walkIndexes(root: Dir, gcUser: GcUser, signal?: AbortSignal, hooks: WalkHooks = {}): IndexWalk {
  const hiddenRoot = isHidden(rootName(root.path));
  const walker = new IndexWalker(gcUser, !hiddenRoot, hooks);
  // The tree closes its root: a second descriptor of the caller's.
  const tree = DirTree.from(root.duplicate());
  try {
    walker.run(tree, ownerOf(root.statSelf()), signal);
  } finally {
    tree.close();
  }
  return walker.result(hiddenRoot);
}
