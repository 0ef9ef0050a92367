/**
 * Scans one directory of the audited tree: lists it through the descriptor
 * the opener holds, statx()es every entry relative to it (never following a
 * symlink), tallies owners, and returns the entries with problems and the
 * subdirectories still to visit. Runs inside a worker thread.
 */
import { readdirSync } from 'node:fs';
import { endianness } from 'node:os';
import { ChunkguardError } from '../errors.js';
import { join } from 'node:path';
import { errnoName, readDirectoryEntries, statxAt, statxAtRaw, STATX_SIZE } from '../native/libc.js';
import { readDev, S_IFDIR, S_IFMT, S_IFREG } from '../native/statx.js';
import { classify, type ClassifyContext, type Role } from './classify.js';
import { DirOpenError, DirOpener } from './dir-opener.js';
import { joinRel, nameFromBytes, type RelPath } from './rel-path.js';
import { OwnerTallies } from './tally.js';

/** What a directory is in the layout; decides its children's roles. */
export type DirRole = 'store-root' | 'chunks-root' | 'prefix-dir' | 'blob' | 'other';

export interface DirTask {
  rel: RelPath;
  dev: string;
  ino: bigint;
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
  dev: string;
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
  /** Absolute path of the audited directory (fallback listing when /proc is missing). */
  root: string;
  rootDev: string;
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

const procFd = (() => {
  try {
    readdirSync('/proc/self/fd');
    return true;
  } catch {
    return false;
  }
})();

const HAND_OVER_SUBDIRS = 1024;

export class DirScanner {
  readonly tallies = new OwnerTallies();

  private readonly buf = Buffer.alloc(STATX_SIZE);
  private readonly dents = Buffer.alloc(64 * 1024);
  // struct statx read as 32-bit words: much cheaper than Buffer#readUInt32LE a million times.
  private readonly words: Uint32Array;

  /**
   * `handOver` receives the first parts of a large directory (.chunks has
   * 65536 subdirectories): the other workers start on them while this one
   * is still listing.
   */
  constructor(
    private readonly opener: DirOpener,
    private readonly settings: ScanSettings,
    private readonly handOver?: (part: DirScanResult) => void,
  ) {
    const { buf } = this;
    // struct statx is in the machine's byte order; a view of words needs little-endian.
    if (endianness() !== 'LE') throw new ChunkguardError('ENATIVE', 'the audit reads struct statx as little-endian words; this machine is big-endian');
    this.words = new Uint32Array(buf.buffer, buf.byteOffset, STATX_SIZE / 4);
  }

  /** Fallback listing where getdents64 is missing: names as strings, raw bytes when not UTF-8. */
  private list(fd: number, rel: RelPath): RelPath[] {
    const where = procFd ? `/proc/self/fd/${fd}` : join(this.settings.root, String(rel));
    const names = readdirSync(where);
    if (!names.some((name) => name.includes('\uFFFD'))) return names;
    return readdirSync(where, { encoding: 'buffer' }).map(nameFromBytes);
  }

  scan(task: DirTask): DirScanResult {
    const result: DirScanResult = { subdirs: [], offenders: [], problems: [], entries: 0, role: task.role };
    let fd: number;
    try {
      // openat(O_NOFOLLOW|O_DIRECTORY) one component at a time already refuses a
      // symlink or a non-directory; the listing's inode is not re-checked here.
      fd = this.opener.open(task.rel);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'EIO';
      const kind = error instanceof DirOpenError && (code === 'ELOOP' || code === 'ENOTDIR') ? 'unsafe' : 'unlistable';
      result.problems.push({ kind, rel: task.rel, detail: (error as Error).message, errno: code });
      return result;
    }
    const roles = childRoles(task.role, '');
    const dents = this.dents;
    let length = readDirectoryEntries(fd, dents);
    if (length === undefined) {
      let names: RelPath[];
      try {
        names = this.list(fd, task.rel);
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'EIO';
        result.problems.push({ kind: 'unlistable', rel: task.rel, detail: `cannot list (${code})`, errno: code });
        return result;
      }
      for (const name of names) {
        if (!this.examine(fd, task, name, -1, -1, result, roles)) break;
      }
      return result;
    }
    // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name (NUL-terminated).
    while (length !== 0) {
      if (length < 0) {
        const code = errnoName(-length);
        result.problems.push({ kind: 'unlistable', rel: task.rel, detail: `cannot list (${code})`, errno: code });
        return result;
      }
      for (let offset = 0; offset < length; ) {
        const recordLength = dents.readUInt16LE(offset + 16);
        const nameStart = offset + 19;
        const nameEnd = dents.indexOf(0, nameStart);
        offset += recordLength;
        const dot = dents[nameStart] === 0x2e;
        if (dot && (nameEnd === nameStart + 1 || (nameEnd === nameStart + 2 && dents[nameStart + 1] === 0x2e))) continue;
        if (!this.examine(fd, task, dents.subarray(nameStart, nameEnd + 1), nameStart, nameEnd, result, roles)) return result;
      }
      length = readDirectoryEntries(fd, dents)!;
    }
    return result;
  }

  /** The entry's name, made only for the entries that are kept. */
  private nameOf(name: string | Buffer, nameStart: number, nameEnd: number): RelPath {
    return typeof name === 'string' ? name : nameFromBytes(Buffer.from(this.dents.subarray(nameStart, nameEnd)));
  }

  /**
   * One entry: statx relative to the directory, tally, classify; keeps it
   * when it is a subdirectory to visit or has a problem. `name` is what
   * statx gets (a string, or NUL-terminated bytes inside the getdents
   * buffer at nameStart..nameEnd, decoded only when needed). False stops
   * the directory.
   */
  private examine(fd: number, task: DirTask, name: string | Buffer, nameStart: number, nameEnd: number, result: DirScanResult, roles: ReturnType<typeof childRoles>): boolean {
    const { buf, settings } = this;
    const errno = typeof name === 'string' ? statxAt(fd, name, buf) : statxAtRaw(fd, name, buf);
    if (errno !== 0) {
      const code = errnoName(errno);
      if (code === 'ENOENT') return true; // removed since the listing (GC or a writer running beside)
      result.problems.push({ kind: 'unlistable', rel: task.rel, detail: `cannot stat entries (${code})`, errno: code });
      return false;
    }
    result.entries++;
    const words = this.words;
    const mode = words[7]! & 0xffff;
    const uid = words[5]!;
    const gid = words[6]!;
    const type = mode & S_IFMT;
    // 64-bit sizes and seconds as two 32-bit halves: exact below 2^53, no BigInt per entry.
    const size = type === S_IFREG ? words[11]! * 2 ** 32 + words[10]! : 0;
    const mtimeMs = ((words[29]! | 0) * 2 ** 32 + words[28]!) * 1000 + words[30]! / 1e6;
    const ctimeMs = ((words[25]! | 0) * 2 ** 32 + words[24]!) * 1000 + words[26]! / 1e6;
    const isDirectory = type === S_IFDIR;
    this.tallies.add(uid, gid, size, isDirectory, mtimeMs, ctimeMs);
    let entryName: RelPath | undefined;
    const { role, dirRole } = task.role === 'store-root' ? childRoles(task.role, (entryName = this.nameOf(name, nameStart, nameEnd))) : roles;
    const attributes = words[2]!;
    const issues = classify(mode, uid, gid, attributes, role, settings);
    if (!isDirectory && issues === 0) return true;

    const rel = joinRel(task.rel, entryName ?? this.nameOf(name, nameStart, nameEnd));
    const dev = readDev(buf);
    if (isDirectory) {
      if (dev !== settings.rootDev && !settings.crossFilesystems) {
        result.problems.push({ kind: 'mount-not-crossed', rel, detail: `another filesystem (device ${dev}) is mounted here` });
        return true;
      }
      result.subdirs.push({ rel, dev, ino: buf.readBigUInt64LE(32), role: dirRole });
      if (result.subdirs.length >= HAND_OVER_SUBDIRS && this.handOver) {
        this.handOver({ partial: true, subdirs: result.subdirs, offenders: result.offenders, problems: result.problems, entries: result.entries, role: result.role });
        result.subdirs = [];
        result.offenders = [];
        result.problems = [];
        result.entries = 0;
      }
    }
    if (issues !== 0) {
      result.offenders.push({ rel, mode, uid, gid, size, mtimeMs, ctimeMs, dev, ino: buf.readBigUInt64LE(32), attributes, issues, role });
    }
    return true;
  }
}
