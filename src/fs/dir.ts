/**
 * A directory held open: the one handle check, insert, audit and fix use.
 * Every operation is relative to its descriptor (openat, statx, utimensat,
 * fchownat, renameat, unlinkat, never following a symlink), so once a
 * directory is open, replacing it or any parent with a symlink cannot
 * redirect a write, a touch or a chown. Opening a child refuses a symlink
 * or a non-directory with an EUNSAFEPATH FsError.
 */
import { constants, fchmodSync } from 'node:fs';
import { join } from 'node:path';
import { libc } from '../native/libc.js';
import { DirentReader, entryName, type EntryVisitor, type NameVisitor } from './dirents.js';
import { errnoName, FsError, type EntryKind } from './errors.js';
import { type Identity, sameIdentity } from './identity.js';
import { relText } from './rel-path.js';
import { decodeStat, entryKind, type Stat, STATX, STATX_SIZE, type StatWords } from './stat.js';
import type { StatRing } from './stat-ring.js';

/** A name inside a directory: a string, or raw bytes (not UTF-8; NUL-terminated or not). */
export type Name = string | Buffer;

/** The outcome of a call whose failure the caller diagnoses (a touch, a chown): no throw. */
export type CallResult = { ok: true } | { ok: false; code: string };

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_NO_AUTOMOUNT = 0x800;
const AT_EMPTY_PATH = 0x1000;
const O_CLOEXEC = 0o2000000;
/** How every entry is stat'ed: the entry itself, a symlink not followed, an automount point not triggered. */
const STAT_ENTRY = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT;
/** O_PATH on x64 and arm64 (the only architectures libc.ts accepts). */
const O_PATH = 0o10000000;
const OPEN_DIRECTORY = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | O_CLOEXEC;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
const RENAME_NOREPLACE = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;

const NUL = Buffer.from([0]);

/** How filesystems say "not this call" for RENAME_NOREPLACE and link (EIO: rclone's link). */
const UNSUPPORTED = new Set(['EINVAL', 'ENOSYS', 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EIO']);

/** What libc gets: strings as they are, raw names NUL-terminated. */
function cName(name: Name): Name {
  return typeof name === 'string' || name[name.length - 1] === 0 ? name : Buffer.concat([name, NUL]);
}

function displayName(name: Name): string {
  return typeof name === 'string' ? name : relText(name[name.length - 1] === 0 ? name.subarray(0, -1) : name);
}

function result(returned: number): CallResult {
  return returned >= 0 ? { ok: true } : { ok: false, code: errnoName(libc().errno()) };
}

/** Close a descriptor from createFile or openFile. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** flock(LOCK_EX|LOCK_NB): true when taken (held until the descriptor closes). */
export function tryLock(fd: number): boolean {
  return libc().flock(fd, LOCK_EX | LOCK_NB) === 0;
}

/** The inode flags (FS_*_FL) of an open file, or undefined when the filesystem has none. */
export function inodeFlags(fd: number): number | undefined {
  const out = [0];
  return libc().getFlags(fd, out) === 0 ? (out[0] ?? 0) : undefined;
}

/**
 * Change the owner of what `fd` refers to (from openPath: a symlink itself,
 * never its target): the file that was checked, not whatever its name
 * refers to by now.
 */
function chownFd(fd: number, uid: number, gid: number): CallResult {
  return result(libc().fchownat(fd, '', uid, gid, AT_EMPTY_PATH));
}

/**
 * Why an entry does not have the owner asked for: the chown's errno, or
 * (`ignored`) the owner a filesystem kept after returning 0 (ntfs-3g without
 * `permissions`, rclone, smbnetfs).
 */
export type OwnerNotSet = { code: string; ignored?: undefined } | { ignored: true; shown?: { uid: number; gid: number } };

const hasOwner = (stat: Stat | undefined, owner: { uid: number; gid: number }): boolean => stat !== undefined && stat.uid === owner.uid && stat.gid === owner.gid;

/** chown through `fd`, then believe the filesystem, not the return value: the owner is read back. Undefined when it is set. */
export function chownVerified(fd: number, owner: { uid: number; gid: number }): OwnerNotSet | undefined {
  const changed = chownFd(fd, owner.uid, owner.gid);
  if (!changed.ok) return { code: changed.code };
  const now = statFd(fd);
  return hasOwner(now, owner) ? undefined : { ignored: true, shown: now && { uid: now.uid, gid: now.gid } };
}

/** errnos of a chown or chmod that say the filesystem keeps no owner or mode, for a caller allowed to change them (root). */
const NOT_KEPT = new Set(['EPERM', 'ENOSYS', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL']);

/**
 * Give the open file or directory `fd` this owner unless it has it already.
 * Undefined when it has it now; what the filesystem did instead when it has
 * no per-file owners (refused by root's chown: exfat, vfat EPERM, ENOSYS; or
 * ignored). Other failures throw (FsError, syscall fchown).
 */
export function setOwner(fd: number, owner: { uid: number; gid: number }, path: string): OwnerNotSet | undefined {
  if (hasOwner(statFd(fd), owner)) return undefined;
  const notSet = chownVerified(fd, owner);
  if (notSet && !notSet.ignored && !(NOT_KEPT.has(notSet.code) && process.geteuid?.() === 0)) throw new FsError(notSet.code, 'fchown', path);
  return notSet;
}

/**
 * Give the open directory or file `fd` this mode, whatever the umask. Where the filesystem
 * keeps no modes of its own (fusefat: ENOSYS) what it shows stays; other failures throw
 * (FsError, syscall fchmod).
 */
export function setMode(fd: number, mode: number, path: string): void {
  try {
    fchmodSync(fd, mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (!NOT_KEPT.has(code)) throw new FsError(code, 'fchmod', path);
  }
}

/** statx of an open descriptor (a file from createFile or openFile); undefined when it cannot be read. */
export function statFd(fd: number): Stat | undefined {
  const buf = Buffer.alloc(STATX_SIZE);
  if (libc().statx(fd, '', AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX.BASIC_STATS, buf) !== 0) return undefined;
  return decodeStat(buf);
}

/** One struct statx per thread for stat(): every call is synchronous and decodes before it returns. */
const scratch = Buffer.alloc(STATX_SIZE);

/** An entry held open, its stat read through that descriptor: what is checked is what is then used. */
export interface OpenedEntry {
  fd: number;
  stat: Stat;
  close(): void;
}

/** `fd` (from openPath or openFile) with its stat; the descriptor is closed again when it cannot be stat'ed. */
export function openedEntry(fd: number, path: string): OpenedEntry {
  const stat = statFd(fd);
  if (!stat) {
    closeFd(fd);
    throw new FsError('EIO', 'statx', path, { detail: 'cannot stat it through its descriptor' });
  }
  return { fd, stat, close: () => closeFd(fd) };
}

/** Linux's PATH_MAX: a longer path is refused (ENAMETOOLONG) by every call that takes one. */
const PATH_MAX = 4096;

/**
 * openat of a directory path, also one longer than PATH_MAX (a probe's datastore below a
 * deep store): opened piece by piece, each piece shorter than PATH_MAX and relative to the
 * last. Every piece's last component is opened O_NOFOLLOW, as the whole path's is.
 */
function openLong(path: string): number {
  if (Buffer.byteLength(path) < PATH_MAX) return libc().openat(AT_FDCWD, path, OPEN_DIRECTORY);
  let fd = AT_FDCWD;
  let rest = path;
  while (rest !== '') {
    let cut = rest.length;
    while (Buffer.byteLength(rest.slice(0, cut)) >= PATH_MAX) cut = rest.lastIndexOf('/', cut - 1);
    if (cut <= 0) cut = rest.indexOf('/', 1) < 0 ? rest.length : rest.indexOf('/', 1);
    const next = libc().openat(fd, rest.slice(0, cut) || '/', OPEN_DIRECTORY);
    if (fd !== AT_FDCWD) closeFd(fd);
    if (next < 0) return next;
    fd = next;
    rest = rest.slice(cut).replace(/^\/+/, '');
  }
  return fd;
}

export class Dir {
  private closed = false;
  /** The descriptor's own listing offset has moved: list through a second one. */
  private listed = false;

  /** The path, made when a message needs it (an audit opens 65,536 prefix directories and names none). */
  private pathText: string | undefined;

  private constructor(
    readonly fd: number,
    /** The path as given, or the parent this directory was opened in. */
    private readonly parent: string | Dir,
    private readonly name: Name = '',
  ) {}

  /** For messages and findings only: never resolved again. */
  get path(): string {
    this.pathText ??= typeof this.parent === 'string' ? this.parent : this.parent.pathOf(this.name);
    return this.pathText;
  }

  /**
   * Open a directory the caller already validated (a store root, the
   * directory to audit). Its last component is not followed; `expected`
   * refuses a directory replaced since it was inspected. Never leaks the
   * descriptor: it is closed again when the identity check fails.
   */
  static open(path: string, expected?: Identity): Dir {
    const fd = openLong(path);
    if (fd < 0) {
      const code = errnoName(libc().errno());
      if (code === 'ELOOP' || code === 'ENOTDIR') throw FsError.unsafe(path, code === 'ELOOP' ? 'symlink' : 'other', 'directory');
      throw new FsError(code, 'open', path);
    }
    const dir = new Dir(fd, path);
    if (!expected) return dir;
    try {
      if (!sameIdentity(dir.statSelf(), expected)) {
        throw FsError.unsafe(path, 'other', 'directory', 'was replaced by another directory while chunkguard started');
      }
      return dir;
    } catch (error) {
      dir.close();
      throw error;
    }
  }

  /** The descriptor, refusing use after close (its number may belong to another file by then). */
  private get live(): number {
    if (this.closed) throw new FsError('EBADF', 'use', this.path, { detail: 'used after it was closed' });
    return this.fd;
  }

  /** The path of an entry, for messages. */
  pathOf(name: Name): string {
    return join(this.path, displayName(name));
  }

  /** statx of an entry into `buf`, not following a symlink: 0, or the errno (stat's step; the audit's hot path is statAt). */
  statInto(name: Name, buf: Buffer): number {
    const flags = STAT_ENTRY | (name === '' ? AT_EMPTY_PATH : 0);
    return libc().statx(this.live, name === '' ? '' : cName(name), flags, STATX.BASIC_STATS, buf) === 0 ? 0 : libc().errno();
  }

  /**
   * statx of the entry `reader` is visiting (its name from `start`, NUL-terminated in
   * the reader's buffer) into `out`: 0, or the errno. The audit's hot path: both by
   * address, nothing allocated, nothing converted.
   */
  statAt(reader: DirentReader, start: number, out: StatWords): number {
    return libc().statxAt(this.live, reader.address + start, STAT_ENTRY, STATX.BASIC_STATS, out.address) === 0 ? 0 : libc().errno();
  }

  /**
   * Queue the statx of the entry `reader` is visiting (its name from `start`, copied
   * by the ring) on `ring`, relative to this directory, which must stay open until
   * the result is collected. Returns the ring's slot.
   */
  queueStat(ring: StatRing, reader: DirentReader, start: number, tag: number): number {
    return ring.queue(this.live, reader.buf, start, STAT_ENTRY, STATX.BASIC_STATS, tag);
  }

  /** A second descriptor of this open directory (fcntl F_DUPFD_CLOEXEC: no second open), closed on its own. */
  duplicate(): Dir {
    const fd = libc().dupCloexec(this.live);
    if (fd < 0) throw new FsError(errnoName(libc().errno()), 'fcntl', this.path);
    const copy = new Dir(fd, this.parent, this.name);
    // The same open file, so the same listing offset: a copy lists through a fresh descriptor.
    copy.listed = true;
    return copy;
  }

  /** statx of an entry ('' for this directory); undefined when it does not exist. */
  stat(name: Name): Stat | undefined {
    const errno = this.statInto(name, scratch);
    const path = name === '' ? this.path : this.pathOf(name);
    if (errno !== 0) {
      const code = errnoName(errno);
      if (code === 'ENOENT') return undefined;
      throw new FsError(code, 'statx', path);
    }
    const stat = decodeStat(scratch);
    if (!stat) throw new FsError('ENODATA', 'statx', path, { detail: 'the filesystem reports no type, mode, owner or inode for it (statx mask)' });
    return stat;
  }

  statSelf(): Stat {
    return this.stat('')!;
  }

  kindOf(name: Name): EntryKind {
    return entryKind(this.stat(name));
  }

  /**
   * Open a child directory. A symlink or non-directory there is EUNSAFEPATH;
   * a missing one is created with `create` (mode, then chown through the new
   * descriptor to `owner`) when given, else ENOENT.
   */
  openChild(name: Name, create?: { mode: number; owner?: { uid: number; gid: number } }): { dir: Dir; created: boolean; ownerNotSet?: OwnerNotSet } {
    let created = false;
    // Bounded: another process may create or remove the entry between our open and mkdir.
    for (let attempt = 1; ; attempt++) {
      const fd = libc().openat(this.live, cName(name), OPEN_DIRECTORY);
      if (fd >= 0) {
        const dir = new Dir(fd, this, name);
        const ownerNotSet = created && create?.owner ? this.chownNew(dir, name, create.owner) : undefined;
        return { dir, created, ...(ownerNotSet ? { ownerNotSet } : {}) };
      }
      const code = errnoName(libc().errno());
      if (code === 'ELOOP') throw FsError.unsafe(this.pathOf(name), 'symlink', 'directory');
      if (code === 'ENOTDIR') {
        const kind = this.kindOf(name);
        if (kind === 'file' || kind === 'symlink' || kind === 'other') throw FsError.unsafe(this.pathOf(name), kind, 'directory');
        throw FsError.unsafe(this.pathOf(name), 'other', 'directory', 'was replaced while chunkguard opened it');
      }
      if (code !== 'ENOENT' || !create || attempt > 5) throw new FsError(code, 'open', this.pathOf(name));
      const made = this.mkdir(name, create.mode);
      // EEXIST: another process created it first; open that one.
      if (!made.ok && made.code !== 'EEXIST') throw new FsError(made.code, 'mkdir', this.pathOf(name));
      created = made.ok;
    }
  }

  /**
   * A directory we just made must not stay behind with the wrong owner: it is
   * empty, ours, and goes. On a filesystem without per-file owners it stays (no owner is wrong there).
   */
  private chownNew(dir: Dir, name: Name, owner: { uid: number; gid: number }): OwnerNotSet | undefined {
    try {
      return setOwner(dir.live, owner, dir.path);
    } catch (error) {
      dir.close();
      this.unlink(name, { directory: true });
      throw error;
    }
  }

  /** lchown of an entry: a symlink itself, never its target ('' changes this directory). */
  chown(name: Name, uid: number, gid: number): CallResult {
    const flags = AT_SYMLINK_NOFOLLOW | (name === '' ? AT_EMPTY_PATH : 0);
    return result(libc().fchownat(this.live, name === '' ? '' : cName(name), uid, gid, flags));
  }

  /** What GC does to mark a chunk: atime := now, mtime untouched, symlink not followed. */
  touch(name: Name): CallResult {
    const times = [
      { tv_sec: 0, tv_nsec: UTIME_NOW },
      { tv_sec: 0, tv_nsec: UTIME_OMIT },
    ];
    return result(libc().utimensat(this.live, cName(name), times, AT_SYMLINK_NOFOLLOW));
  }

  /** A new file only (O_CREAT|O_EXCL|O_NOFOLLOW): an existing name, a symlink included, is EEXIST and never followed. */
  createFile(name: string, mode: number): number {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;
    const fd = libc().openat(this.live, name, flags, mode);
    if (fd < 0) throw new FsError(errnoName(libc().errno()), 'open', this.pathOf(name));
    return fd;
  }

  /**
   * A descriptor for the entry itself (O_PATH|O_NOFOLLOW: a symlink is not
   * followed, nothing is read, a FIFO does not block), to check it and then
   * change exactly it (statFd, chownVerified).
   */
  openPath(name: Name): number {
    const fd = libc().openat(this.live, cName(name), O_PATH | constants.O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw new FsError(errnoName(libc().errno()), 'open', this.pathOf(name));
    return fd;
  }

  /**
   * A file opened to read, never through a symlink, never blocking on a FIFO; with `noAtime`,
   * reading it leaves its atime alone (O_NOATIME: its owner's or CAP_FOWNER's, else EPERM).
   */
  openFile(name: Name, { noAtime = false }: { noAtime?: boolean } = {}): number {
    const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | O_CLOEXEC | (noAtime ? constants.O_NOATIME : 0);
    const fd = libc().openat(this.live, cName(name), flags);
    if (fd < 0) throw new FsError(errnoName(libc().errno()), 'open', this.pathOf(name));
    return fd;
  }

  mkdir(name: Name, mode: number): CallResult {
    return result(libc().mkdirat(this.live, cName(name), mode));
  }

  /** Remove the entry itself (a symlink, not its target). */
  unlink(name: Name, options: { directory?: boolean } = {}): CallResult {
    return result(libc().unlinkat(this.live, cName(name), options.directory ? AT_REMOVEDIR : 0));
  }

  /** rename within this directory, atomically replacing the target. */
  rename(from: string, to: string): CallResult {
    return result(libc().renameat(this.live, from, this.live, to));
  }

  /**
   * Move `from` to `to` only if `to` does not exist (EEXIST otherwise):
   * renameat2(RENAME_NOREPLACE), or, where the filesystem refuses the flag
   * (NFS, every FUSE filesystem but gocryptfs: EINVAL), linkat, which is just
   * as atomic (the caller unlinks `from` afterwards). ENOTSUP when neither
   * works (no hard links: exfat, vfat EPERM; rclone EIO).
   */
  renameNoReplace(from: string, to: string): CallResult {
    const { renameat2 } = libc();
    if (renameat2) {
      const renamed = result(renameat2(this.live, from, this.live, to, RENAME_NOREPLACE));
      if (renamed.ok || !UNSUPPORTED.has(renamed.code)) return renamed;
    }
    const linked = result(libc().linkat(this.live, from, this.live, to, 0));
    if (!linked.ok && UNSUPPORTED.has(linked.code)) return { ok: false, code: 'ENOTSUP' };
    return linked;
  }

  /**
   * Visit every entry but . and .. (see dirents.ts): through this descriptor
   * the first time (its offset is still at the start: a million-entry audit
   * saves an open per directory), through a second one after that.
   */
  forEachEntry(reader: DirentReader, visit: EntryVisitor): void {
    this.list((fd) => reader.forEach(fd, this, visit));
  }

  /** forEachEntry with the name by position in the reader's buffer (see NameVisitor). */
  forEachName(reader: DirentReader, visit: NameVisitor): void {
    this.list((fd) => reader.forEachName(fd, this, visit));
  }

  private list(read: (fd: number) => void): void {
    if (!this.listed) {
      this.listed = true;
      read(this.live);
      return;
    }
    const fd = libc().openat(this.live, '.', OPEN_DIRECTORY);
    if (fd < 0) throw new FsError(errnoName(libc().errno()), 'open', this.path);
    try {
      read(fd);
    } finally {
      closeFd(fd);
    }
  }

  /** Names in this directory that start with `prefix` (UTF-8 names only: chunkguard's own names are). */
  names(prefix = ''): string[] {
    const wanted = Buffer.from(prefix);
    const names: string[] = [];
    this.forEachEntry(new DirentReader(), (name) => {
      if (name.length > wanted.length && name.subarray(0, wanted.length).equals(wanted)) names.push(entryName(name).toString());
      return true;
    });
    return names;
  }

  /** Closes the descriptor once; a second close does nothing (its number may belong to another file by then). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }
}
