/**
 * A directory inside a store, held open. Every operation is relative to its
 * descriptor (openat, statx, utimensat, renameat, unlinkat with no-follow),
 * so once a directory is open, replacing it or any parent with a symlink
 * cannot redirect a write, a touch or a chown outside the store. Opening a
 * child refuses a symlink (ELOOP) or a non-directory with UnsafePathError.
 */
import { fchownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AT_FDCWD,
  closeFd,
  errnoName,
  mkdirAt,
  openDirectoryAt,
  readDirectoryEntries,
  statxAt,
  STATX_SIZE,
  touchAtimeAt,
  unlinkAt,
  type NativeResult,
} from '../native/libc.js';
import { entryType } from '../native/statx.js';
import { type EntryKind, UnsafePathError } from './safe-path.js';

/** lstat-like facts with nanosecond times (BigIntStats' shape, from statx). */
export interface NsStat {
  dev: bigint;
  ino: bigint;
  mode: bigint;
  uid: bigint;
  gid: bigint;
  size: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** An errno failure as a Node-style error, with the path it concerns. */
export function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

/** What a stat describes, in the layout's terms ('missing' for no stat). */
export function kindOfStat(stat: NsStat | undefined): EntryKind {
  if (!stat) return 'missing';
  const type = entryType(Number(stat.mode));
  return type === 'directory' || type === 'file' || type === 'symlink' ? type : 'other';
}

function timeNs(buf: Buffer, offset: number): bigint {
  return buf.readBigInt64LE(offset) * 1_000_000_000n + BigInt(buf.readUInt32LE(offset + 8));
}

/** glibc's makedev(), so `dev` matches what fs.lstat reports. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

function toNsStat(buf: Buffer): NsStat {
  return {
    dev: makedev(buf.readUInt32LE(136), buf.readUInt32LE(140)),
    ino: buf.readBigUInt64LE(32),
    mode: BigInt(buf.readUInt16LE(28)),
    uid: BigInt(buf.readUInt32LE(20)),
    gid: BigInt(buf.readUInt32LE(24)),
    size: buf.readBigUInt64LE(40),
    atimeNs: timeNs(buf, 64),
    mtimeNs: timeNs(buf, 112),
    ctimeNs: timeNs(buf, 96),
  };
}

export class OpenDir {
  private readonly statBuf = Buffer.alloc(STATX_SIZE);
  private closed = false;

  private constructor(
    readonly fd: number,
    /** For messages and findings only: never resolved again. */
    readonly path: string,
  ) {}

  /**
   * Open a directory the caller already validated (the store root, or the
   * directory to probe). Its last component is not followed; `expected`
   * refuses a directory replaced since it was inspected.
   */
  static open(path: string, expected?: { dev: bigint; ino: bigint }): OpenDir {
    const opened = openDirectoryAt(AT_FDCWD, path);
    if (!opened.ok) {
      if (opened.code === 'ELOOP' || opened.code === 'ENOTDIR') throw new UnsafePathError({ path, kind: opened.code === 'ELOOP' ? 'symlink' : 'other' }, 'directory');
      throw errnoError(opened.code, 'open', path);
    }
    const dir = new OpenDir(opened.fd, path);
    if (expected) {
      let found: NsStat;
      try {
        found = dir.statSelf();
      } catch (error) {
        dir.close();
        throw error;
      }
      if (found.dev !== expected.dev || found.ino !== expected.ino) {
        dir.close();
        throw new UnsafePathError({ path, kind: 'other' }, 'directory', 'was replaced by another directory while chunkguard started');
      }
    }
    return dir;
  }

  /** The path of an entry, for messages. */
  pathOf(name: string): string {
    return join(this.path, name);
  }

  /** statx of an entry, not following a symlink; undefined when it does not exist. */
  stat(name: string): NsStat | undefined {
    const errno = statxAt(this.fd, name, this.statBuf);
    if (errno === 0) return toNsStat(this.statBuf);
    const code = errnoName(errno);
    if (code === 'ENOENT') return undefined;
    throw errnoError(code, 'statx', this.pathOf(name));
  }

  statSelf(): NsStat {
    const errno = statxAt(this.fd, '', this.statBuf);
    if (errno !== 0) throw errnoError(errnoName(errno), 'statx', this.path);
    return toNsStat(this.statBuf);
  }

  kindOf(name: string): EntryKind {
    return kindOfStat(this.stat(name));
  }

  /**
   * Open a child directory. A symlink or non-directory there is an
   * UnsafePathError; a missing one is created with `create` (mode; chown
   * to `owner` through the new descriptor) when given, else ENOENT.
   */
  openChild(name: string, create?: { mode: number; owner?: { uid: number; gid: number } }): { dir: OpenDir; created: boolean } {
    let created = false;
    // Bounded: another process may create or remove the entry between our open and mkdir.
    for (let attempt = 1; ; attempt++) {
      const opened = openDirectoryAt(this.fd, name);
      if (opened.ok) {
        const dir = new OpenDir(opened.fd, this.pathOf(name));
        if (created && create?.owner) {
          try {
            dir.chown(create.owner.uid, create.owner.gid);
          } catch (error) {
            // A directory GC could not write to must not stay behind: it is empty, ours, and goes.
            dir.close();
            unlinkAt(this.fd, name, { directory: true });
            throw Object.assign(error as Error, { syscall: 'fchown' });
          }
        }
        return { dir, created };
      }
      // O_NOFOLLOW refused a symlink (ELOOP) or O_DIRECTORY something else: say what is there.
      if (opened.code === 'ELOOP') throw new UnsafePathError({ path: this.pathOf(name), kind: 'symlink' }, 'directory');
      if (opened.code === 'ENOTDIR') {
        const kind = this.kindOf(name);
        if (kind === 'file' || kind === 'symlink' || kind === 'other') throw new UnsafePathError({ path: this.pathOf(name), kind }, 'directory');
        throw new UnsafePathError({ path: this.pathOf(name), kind: 'other' }, 'directory', 'was replaced while chunkguard opened it');
      }
      if (opened.code !== 'ENOENT' || !create || attempt > 5) throw errnoError(opened.code, 'open', this.pathOf(name));
      const made = mkdirAt(this.fd, name, create.mode);
      // EEXIST: another process created it first; open that one.
      if (!made.ok && made.code !== 'EEXIST') throw errnoError(made.code, 'mkdir', this.pathOf(name));
      created = made.ok;
    }
  }

  /** Set this directory's owner through its descriptor (never a path). */
  chown(uid: number, gid: number): void {
    fchownSync(this.fd, uid, gid);
  }

  /** What GC does to mark a chunk: atime := now, mtime untouched, symlink not followed. */
  touch(name: string): NativeResult {
    return touchAtimeAt(this.fd, name);
  }

  /** Names in this directory (not . and ..) that start with `prefix` (read from a second descriptor, so this one's offset is untouched). */
  namesStartingWith(prefix: string): string[] {
    const opened = openDirectoryAt(this.fd, '.');
    if (!opened.ok) throw errnoError(opened.code, 'open', this.path);
    const names: string[] = [];
    const wanted = Buffer.from(prefix);
    const buf = Buffer.allocUnsafe(64 * 1024);
    try {
      for (;;) {
        const length = readDirectoryEntries(opened.fd, buf);
        if (length === undefined) {
          // glibc < 2.30 has no getdents64: list the open directory through its /proc link.
          return readdirSync(`/proc/self/fd/${opened.fd}`).filter((name) => name.startsWith(prefix));
        }
        if (length < 0) throw errnoError(errnoName(-length), 'getdents64', this.path);
        if (length === 0) return names;
        // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name (NUL-terminated).
        for (let offset = 0; offset < length; offset += buf.readUInt16LE(offset + 16)) {
          const start = offset + 19;
          const end = buf.indexOf(0, start);
          const dots = end - start <= 2 && buf[start] === 0x2e && (end - start === 1 || buf[start + 1] === 0x2e);
          if (!dots && end - start >= wanted.length && buf.subarray(start, start + wanted.length).equals(wanted)) {
            names.push(buf.toString('utf8', start, end));
          }
        }
      }
    } finally {
      closeFd(opened.fd);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }
}
