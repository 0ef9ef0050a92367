/**
 * The two libc calls Node cannot make: utimensat with UTIME_NOW/UTIME_OMIT
 * (fs.utimes always rewrites mtime too) and the FS_IOC_GETFLAGS ioctl
 * (immutable / append-only flags). Loaded through koffi on first use, so
 * importing chunkguard never touches native code.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { ChunkguardError } from '../errors.js';

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
// _IOR('f', 1, long) on 64-bit Linux.
const FS_IOC_GETFLAGS = 0x80086601;
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;

export type NativeResult = { ok: true } | { ok: false; errno: number; code: string };

interface Binding {
  utimensat: (dirfd: number, path: string, times: unknown[], flags: number) => number;
  ioctl: (fd: number, request: number, ...variadic: unknown[]) => number;
  errno: () => number;
  outIntPointer: unknown;
}

let binding: Binding | undefined;

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
  const lib = load();
  const times = [
    { tv_sec: 0, tv_nsec: UTIME_NOW },
    { tv_sec: 0, tv_nsec: UTIME_OMIT },
  ];
  const result = lib.utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
  return result === 0 ? { ok: true } : failure(lib.errno());
}

/** The inode flags (FS_*_FL) of an open file descriptor. */
export function inodeFlags(fd: number): { ok: true; flags: number } | { ok: false; errno: number; code: string } {
  const lib = load();
  const out = [0];
  const result = lib.ioctl(fd, FS_IOC_GETFLAGS, lib.outIntPointer, out);
  if (result !== 0) return failure(lib.errno()) as { ok: false; errno: number; code: string };
  return { ok: true, flags: out[0] ?? 0 };
}

/** Make sure the binding loads, so a platform problem is reported before any work. */
export function loadNative(): void {
  load();
}
