/**
 * The libc calls Node cannot make: utimensat with UTIME_NOW/UTIME_OMIT
 * (fs.utimes always rewrites mtime too), the FS_IOC_GETFLAGS ioctl
 * (immutable / append-only flags), and the *at() family (openat, statx,
 * fchownat) that lets audit and fix work relative to a directory they hold
 * open, so no path component is ever resolved through a planted symlink.
 * Loaded through koffi on first use, so importing chunkguard never touches
 * native code.
 */
import { createRequire } from 'node:module';
import { constants as osFs } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { ChunkguardError } from '../errors.js';

export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_NO_AUTOMOUNT = 0x800;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
// _IOR('f', 1, long) on 64-bit Linux.
const FS_IOC_GETFLAGS = 0x80086601;
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;
const O_CLOEXEC = 0o2000000;

export type NativeResult = { ok: true } | { ok: false; errno: number; code: string };

interface Binding {
  utimensat: (dirfd: number, path: string, times: unknown[], flags: number) => number;
  ioctl: (fd: number, request: number, ...variadic: unknown[]) => number;
  errno: () => number;
  outIntPointer: unknown;
  /** The *at() calls, declared on first use: the check never needs them. */
  at: () => AtBinding;
}

interface AtBinding {
  openat: (dirfd: number, path: string | Buffer, flags: number, mode: number) => number;
  /** The same openat, declared variadic as it is, for O_CREAT with a mode. */
  openatCreate: (dirfd: number, path: string, flags: number, modeType: 'uint32', mode: number) => number;
  statx: (dirfd: number, path: string | Buffer, flags: number, mask: number, out: Buffer) => number;
  fchownat: (dirfd: number, path: string | Buffer, uid: number, gid: number, flags: number) => number;
  close: (fd: number) => number;
  mkdirat: (dirfd: number, path: string, mode: number) => number;
  unlinkat: (dirfd: number, path: string, flags: number) => number;
  renameat: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string) => number;
  linkat: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number;
  /** glibc >= 2.28; undefined on older ones (callers fall back to linkat). */
  renameat2: ((olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number) | undefined;
  flock: (fd: number, operation: number) => number;
  /** glibc >= 2.30; undefined on older ones (callers fall back to readdir). */
  getdents64: ((fd: number, out: Buffer, size: number) => number | bigint) | undefined;
}

let binding: Binding | undefined;
let atBinding: AtBinding | undefined;

function load(): Binding {
  if (binding) return binding;
  if (process.platform !== 'linux') {
    throw new ChunkguardError('ENATIVE', `chunkguard needs Linux (utimensat with UTIME_OMIT); this is ${process.platform}`);
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    // Registered by name; the signature below refers to it.
    koffi.struct('chunkguard_timespec', { tv_sec: 'int64', tv_nsec: 'long' });
    binding = {
      utimensat: libc.func('int utimensat(int, const char *, chunkguard_timespec *, int)'),
      ioctl: libc.func('int ioctl(int, unsigned long, ...)'),
      errno: () => koffi.errno(),
      outIntPointer: koffi.out(koffi.pointer('int')),
      at: () =>
        (atBinding ??= {
          // Never called with O_CREAT, so the variadic mode is passed as a plain int.
          openat: libc.func('int openat(int, const char *, int, int)'),
          openatCreate: libc.func('int openat(int, const char *, int, ...)'),
          statx: libc.func('int statx(int, const char *, int, unsigned int, void *)'),
          fchownat: libc.func('int fchownat(int, const char *, unsigned int, unsigned int, int)'),
          close: libc.func('int close(int)'),
          mkdirat: libc.func('int mkdirat(int, const char *, unsigned int)'),
          unlinkat: libc.func('int unlinkat(int, const char *, int)'),
          renameat: libc.func('int renameat(int, const char *, int, const char *)'),
          linkat: libc.func('int linkat(int, const char *, int, const char *, int)'),
          renameat2: optional(() => libc.func('int renameat2(int, const char *, int, const char *, unsigned int)')),
          flock: libc.func('int flock(int, int)'),
          getdents64: optional(() => libc.func('long getdents64(int, void *, unsigned long)')),
        }),
    };
    return binding;
  } catch (error) {
    throw new ChunkguardError(
      'ENATIVE',
      `cannot load the native utimensat binding (koffi, libc.so.6) on ${process.platform}/${process.arch}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function optional<T>(declare: () => T): T | undefined {
  try {
    return declare();
  } catch {
    return undefined;
  }
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) {
    if (value === errno) return name;
  }
  return `E${errno}`;
}

function failure(errno: number): NativeResult {
  return { ok: false, errno, code: errnoName(errno) };
}

/**
 * What a GC does to mark a chunk in use: atime := now, mtime untouched,
 * never following a symlink. Needs ownership or CAP_FOWNER (man 2 utimensat).
 */
export function touchAtime(path: string): NativeResult {
  return touchAtimeAt(AT_FDCWD, path);
}

/** The inode flags (FS_*_FL) of an open file descriptor. */
export function inodeFlags(fd: number): { ok: true; flags: number } | { ok: false; errno: number; code: string } {
  const lib = load();
  const out = [0];
  const result = lib.ioctl(fd, FS_IOC_GETFLAGS, lib.outIntPointer, out);
  if (result !== 0) return failure(lib.errno()) as { ok: false; errno: number; code: string };
  return { ok: true, flags: out[0] ?? 0 };
}

/** A name for an *at() call: strings as they are, raw names (non-UTF-8) NUL-terminated. */
function cName(name: string | Buffer): string | Buffer {
  return typeof name === 'string' ? name : Buffer.concat([name, NUL]);
}
const NUL = Buffer.from([0]);

/** Size of struct statx (the layout is the same on every architecture). */
export const STATX_SIZE = 256;

/**
 * statx(dirfd, name, AT_SYMLINK_NOFOLLOW) into `out`: 0, or the errno.
 * With name '' it describes dirfd itself. No allocation: audit calls this a
 * million times.
 */
export function statxAt(dirfd: number, name: string | Buffer, out: Buffer): number {
  const lib = load();
  const flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name === '' ? AT_EMPTY_PATH : 0);
  return at().statx(dirfd, typeof name === 'string' ? name : cName(name), flags, STATX_BASIC_STATS, out) === 0 ? 0 : lib.errno();
}

/** statx of a NUL-terminated name inside a getdents64 buffer (no string is made). */
export function statxAtRaw(dirfd: number, nulTerminatedName: Buffer, out: Buffer): number {
  const lib = load();
  return at().statx(dirfd, nulTerminatedName, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, out) === 0 ? 0 : lib.errno();
}

/** openat(dirfd, name, O_DIRECTORY|O_NOFOLLOW): a symlink or a non-directory fails (ELOOP, ENOTDIR). */
export function openDirectoryAt(dirfd: number, name: string | Buffer): { ok: true; fd: number } | { ok: false; errno: number; code: string } {
  const lib = load();
  const flags = osFs.O_RDONLY | osFs.O_DIRECTORY | osFs.O_NOFOLLOW | O_CLOEXEC;
  const fd = at().openat(dirfd, cName(name), flags, 0);
  return fd >= 0 ? { ok: true, fd } : (failure(lib.errno()) as { ok: false; errno: number; code: string });
}

/** lchown relative to a directory: changes a symlink itself, never its target. */
export function chownAt(dirfd: number, name: string | Buffer, uid: number, gid: number): NativeResult {
  const lib = load();
  // '' changes dirfd itself (the audited root, whose parent is outside the tree).
  const flags = AT_SYMLINK_NOFOLLOW | (name === '' ? AT_EMPTY_PATH : 0);
  return at().fchownat(dirfd, name === '' ? '' : cName(name), uid, gid, flags) === 0 ? { ok: true } : failure(lib.errno());
}

/**
 * Raw directory entries of an open directory into `out` (struct
 * linux_dirent64 records): the byte count, 0 at the end, -errno on failure,
 * or undefined when this libc has no getdents64.
 */
export function readDirectoryEntries(fd: number, out: Buffer): number | undefined {
  const getdents64 = at().getdents64;
  if (!getdents64) return undefined;
  const result = Number(getdents64(fd, out, out.length));
  return result >= 0 ? result : -load().errno();
}

/** Close a descriptor from openDirectoryAt (Node's closeSync warns about fds it did not open). */
export function closeFd(fd: number): void {
  at().close(fd);
}

/** touchAtime relative to an open directory: utimensat(dirfd, name, {UTIME_NOW, UTIME_OMIT}, AT_SYMLINK_NOFOLLOW). */
export function touchAtimeAt(dirfd: number, name: string): NativeResult {
  const lib = load();
  const times = [
    { tv_sec: 0, tv_nsec: UTIME_NOW },
    { tv_sec: 0, tv_nsec: UTIME_OMIT },
  ];
  return lib.utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW) === 0 ? { ok: true } : failure(lib.errno());
}

type FdResult = { ok: true; fd: number } | { ok: false; errno: number; code: string };

/**
 * openat(dirfd, name, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW): a new file only.
 * An existing name, a symlink included, fails with EEXIST and is never followed.
 */
export function createFileAt(dirfd: number, name: string, mode: number): FdResult {
  const lib = load();
  const flags = osFs.O_WRONLY | osFs.O_CREAT | osFs.O_EXCL | osFs.O_NOFOLLOW | O_CLOEXEC;
  const fd = at().openatCreate(dirfd, name, flags, 'uint32', mode);
  return fd >= 0 ? { ok: true, fd } : (failure(lib.errno()) as FdResult);
}

/** openat(dirfd, name, O_RDONLY|O_NOFOLLOW|O_NONBLOCK): read a file, never through a symlink, never blocking on a FIFO. */
export function openFileAt(dirfd: number, name: string): FdResult {
  const lib = load();
  const flags = osFs.O_RDONLY | osFs.O_NOFOLLOW | osFs.O_NONBLOCK | O_CLOEXEC;
  const fd = at().openat(dirfd, name, flags, 0);
  return fd >= 0 ? { ok: true, fd } : (failure(lib.errno()) as FdResult);
}

export function mkdirAt(dirfd: number, name: string, mode: number): NativeResult {
  return at().mkdirat(dirfd, name, mode) === 0 ? { ok: true } : failure(load().errno());
}

const AT_REMOVEDIR = 0x200;

/** unlinkat(dirfd, name): removes the entry itself (a symlink, not its target). */
export function unlinkAt(dirfd: number, name: string, options: { directory?: boolean } = {}): NativeResult {
  return at().unlinkat(dirfd, name, options.directory ? AT_REMOVEDIR : 0) === 0 ? { ok: true } : failure(load().errno());
}

/** rename within or between open directories, replacing the target. */
export function renameAt(dirfd: number, from: string, to: string): NativeResult {
  return at().renameat(dirfd, from, dirfd, to) === 0 ? { ok: true } : failure(load().errno());
}

const RENAME_NOREPLACE = 1;

/**
 * Move `from` to `to` only if `to` does not exist (EEXIST otherwise):
 * renameat2(RENAME_NOREPLACE), or, where the filesystem refuses the flag
 * (NFS, some FUSE), linkat + unlinkat, which is just as atomic.
 * { ok: false, code: 'ENOTSUP' } when neither works (the caller decides).
 */
export function renameNoReplaceAt(dirfd: number, from: string, to: string): NativeResult {
  const lib = load();
  const renameat2 = at().renameat2;
  if (renameat2) {
    if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) === 0) return { ok: true };
    const errno = lib.errno();
    if (errno !== osConstants.errno.EINVAL && errno !== osConstants.errno.ENOSYS && errno !== osConstants.errno.ENOTSUP) return failure(errno);
  }
  if (at().linkat(dirfd, from, dirfd, to, 0) === 0) {
    // The caller unlinks `from` again in its cleanup if this fails.
    at().unlinkat(dirfd, from, 0);
    return { ok: true };
  }
  const errno = lib.errno();
  // No hard links here (FUSE without a link op, some network filesystems).
  const noLinks = errno === osConstants.errno.EPERM || errno === osConstants.errno.ENOSYS || errno === osConstants.errno.ENOTSUP;
  return noLinks ? { ok: false, errno, code: 'ENOTSUP' } : failure(errno);
}

const LOCK_EX = 2;
const LOCK_NB = 4;

/** flock(LOCK_EX|LOCK_NB): true when taken (held until the descriptor closes). */
export function tryLockExclusive(fd: number): boolean {
  return at().flock(fd, LOCK_EX | LOCK_NB) === 0;
}

export { errnoName };

function at(): AtBinding {
  return atBinding ?? load().at();
}

/** Make sure the binding loads, so a platform problem is reported before any work (`at`: the *at() calls too). */
export function loadNative(options: { at?: boolean } = {}): void {
  load();
  if (options.at) at();
}
