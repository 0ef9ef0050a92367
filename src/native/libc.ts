/**
 * The koffi declarations of the libc calls Node cannot make, and nothing
 * else: every call returns what libc returns (a descriptor, 0, or -1 with
 * errno), and src/fs/ turns that into values and FsErrors.
 *
 * Loaded on first use, so importing chunkguard never touches native code.
 * The layouts used here (64-bit time_t, struct statx and linux_dirent64 read
 * little-endian, the FS_IOC_GETFLAGS number, the getdents64 syscall number)
 * hold on 64-bit little-endian Linux on x64 and arm64; anything else is
 * refused at load with ENATIVE instead of being called with a wrong layout.
 */
import { endianness } from 'node:os';
import { ChunkguardError } from '../errors.js';
import { loadKoffi } from './koffi.js';

/**
 * Per architecture: syscall numbers (getdents64, the per-thread credential calls, io_uring's
 * three, which glibc does not wrap) and FS_IOC_GETFLAGS (_IOR('f', 1, long)).
 */
const ARCHITECTURES: Record<string, { getdents64: number; setgroups: number; setresuid: number; setresgid: number; ioUring: [number, number, number]; getFlags: number }> = {
  x64: { getdents64: 217, setgroups: 116, setresuid: 117, setresgid: 119, ioUring: [425, 426, 427], getFlags: 0x80086601 },
  arm64: { getdents64: 61, setgroups: 159, setresuid: 147, setresgid: 149, ioUring: [425, 426, 427], getFlags: 0x80086601 },
};

/** fcntl's F_DUPFD_CLOEXEC. */
const F_DUPFD_CLOEXEC = 1030;

export const SUPPORTED = 'Linux on x64 or arm64 (64-bit, little-endian, glibc)';

type Name = string | Buffer;

export interface Libc {
  /** openat, declared variadic as it is: the mode is passed only with O_CREAT. */
  openat(dirfd: number, path: Name, flags: number, mode?: number): number;
  statx(dirfd: number, path: Name, flags: number, mask: number, out: Buffer): number;
  /** statx with the name and the struct statx by address (the audit's hot path: no Buffer to pass per entry). */
  statxAt(dirfd: number, pathAddress: number, flags: number, mask: number, outAddress: number): number;
  fchownat(dirfd: number, path: Name, uid: number, gid: number, flags: number): number;
  close(fd: number): number;
  mkdirat(dirfd: number, path: Name, mode: number): number;
  unlinkat(dirfd: number, path: Name, flags: number): number;
  renameat(olddirfd: number, oldpath: Name, newdirfd: number, newpath: Name): number;
  /** glibc >= 2.28; undefined on older ones. */
  renameat2: ((olddirfd: number, oldpath: Name, newdirfd: number, newpath: Name, flags: number) => number) | undefined;
  linkat(olddirfd: number, oldpath: Name, newdirfd: number, newpath: Name, flags: number): number;
  flock(fd: number, operation: number): number;
  utimensat(dirfd: number, path: Name, times: { tv_sec: number; tv_nsec: number }[], flags: number): number;
  /** ioctl(FS_IOC_GETFLAGS) into out[0]. */
  getFlags(fd: number, out: number[]): number;
  /**
   * The raw setgroups, setresgid and setresuid syscalls: unlike glibc's wrappers, which
   * change every thread of the process, they change only the calling thread. -1 keeps an id.
   */
  threadSetgroups(groups: number[]): number;
  threadSetresgid(real: number, effective: number, saved: number): number;
  threadSetresuid(real: number, effective: number, saved: number): number;
  /** getdents64: through glibc's wrapper (2.30+), else the raw syscall; the same records either way. */
  getdents64(fd: number, out: Buffer, size: number): number;
  /** fcntl(F_DUPFD_CLOEXEC): a second descriptor for the same open file. */
  dupCloexec(fd: number): number;
  /** The raw io_uring_setup, io_uring_enter (no signal mask) and io_uring_register syscalls. */
  ioUringSetup(entries: number, params: Buffer): number;
  ioUringEnter(fd: number, toSubmit: number, minComplete: number, flags: number): number;
  ioUringRegister(fd: number, opcode: number, arg: Buffer, count: number): number;
  /** mmap(NULL, ...): the mapping, or null with errno set (MAP_FAILED). */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): NativePointer | null;
  munmap(pointer: NativePointer, length: number): number;
  /** koffi.view: the memory at `pointer` as an ArrayBuffer, without a copy. */
  view(pointer: NativePointer, length: number): ArrayBuffer;
  /** koffi.address: where a pointer or a Buffer's bytes are, for the kernel to read or write. */
  address(value: NativePointer | Buffer): bigint;
  errno(): number;
}

/** A pointer koffi returned (opaque to JavaScript). */
export type NativePointer = object;

const MAP_FAILED = 0xffffffffffffffffn;

let loaded: Libc | undefined;
/** Tests force the raw-syscall path of getdents64 (what glibc < 2.30 gets). */
let forceGetdentsSyscall = false;

export function useGetdentsSyscall(force: boolean): void {
  forceGetdentsSyscall = force;
}

function refuseUnsupported(): (typeof ARCHITECTURES)[string] {
  const arch = ARCHITECTURES[process.arch];
  if (process.platform !== 'linux' || !arch || endianness() !== 'LE') {
    throw new ChunkguardError('ENATIVE', `chunkguard supports ${SUPPORTED}; this is ${process.platform}/${process.arch} (${endianness()})`);
  }
  return arch;
}

function declare(): Libc {
  const arch = refuseUnsupported();
  const koffi = loadKoffi(import.meta.url);
  const lib = koffi.load('libc.so.6');
  // time_t and long are 64-bit on every supported architecture.
  koffi.struct('chunkguard_timespec', { tv_sec: 'int64', tv_nsec: 'int64' });
  const optional = <T>(make: () => T): T | undefined => {
    try {
      return make();
    } catch {
      return undefined;
    }
  };
  const openat = lib.func('int openat(int, const char *, int, ...)');
  const ioctl = lib.func('int ioctl(int, unsigned long, ...)');
  const syscall = lib.func('long syscall(long, ...)');
  const wrapper = optional(() => lib.func('long getdents64(int, void *, unsigned long)'));
  const outInt = koffi.out(koffi.pointer('int'));
  const fcntl = lib.func('int fcntl(int, int, ...)');
  const mmap = lib.func('void *mmap(void *, size_t, int, int, int, int64_t)');
  const [ioUringSetup, ioUringEnter, ioUringRegister] = arch.ioUring;
  return {
    openat: (dirfd, path, flags, mode) => (mode === undefined ? openat(dirfd, path, flags) : openat(dirfd, path, flags, 'uint32', mode)),
    statx: lib.func('int statx(int, const char *, int, unsigned int, void *)'),
    // Pointers as uintptr_t: passed the same way on LP64 (x64, arm64).
    statxAt: lib.func('int statx(int, uintptr_t, int, unsigned int, uintptr_t)'),
    fchownat: lib.func('int fchownat(int, const char *, unsigned int, unsigned int, int)'),
    close: lib.func('int close(int)'),
    mkdirat: lib.func('int mkdirat(int, const char *, unsigned int)'),
    unlinkat: lib.func('int unlinkat(int, const char *, int)'),
    renameat: lib.func('int renameat(int, const char *, int, const char *)'),
    renameat2: optional(() => lib.func('int renameat2(int, const char *, int, const char *, unsigned int)')),
    linkat: lib.func('int linkat(int, const char *, int, const char *, int)'),
    flock: lib.func('int flock(int, int)'),
    utimensat: lib.func('int utimensat(int, const char *, chunkguard_timespec *, int)'),
    getFlags: (fd, out) => ioctl(fd, arch.getFlags, outInt, out),
    getdents64: (fd, out, size) =>
      Number(wrapper && !forceGetdentsSyscall ? wrapper(fd, out, size) : syscall(arch.getdents64, 'int', fd, 'void *', out, 'unsigned long', size)),
    dupCloexec: (fd) => fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0),
    ioUringSetup: (entries, params) => Number(syscall(ioUringSetup, 'uint32_t', entries, 'void *', params)),
    ioUringEnter: (fd, toSubmit, minComplete, flags) =>
      Number(syscall(ioUringEnter, 'int', fd, 'uint32_t', toSubmit, 'uint32_t', minComplete, 'uint32_t', flags, 'void *', null, 'size_t', 0)),
    ioUringRegister: (fd, opcode, arg, count) => Number(syscall(ioUringRegister, 'int', fd, 'uint32_t', opcode, 'void *', arg, 'uint32_t', count)),
    mmap: (length, prot, flags, fd, offset) => {
      const pointer = mmap(null, length, prot, flags, fd, offset) as NativePointer | null;
      return pointer === null || koffi.address(pointer) === MAP_FAILED ? null : pointer;
    },
    munmap: lib.func('int munmap(void *, size_t)'),
    view: (pointer, length) => koffi.view(pointer, length),
    address: (value) => koffi.address(value),
    threadSetgroups: (groups) => Number(syscall(arch.setgroups, 'long', groups.length, 'uint32_t *', groups.length ? groups : null)),
    threadSetresgid: (real, effective, saved) => Number(syscall(arch.setresgid, 'long', real, 'long', effective, 'long', saved)),
    threadSetresuid: (real, effective, saved) => Number(syscall(arch.setresuid, 'long', real, 'long', effective, 'long', saved)),
    errno: () => koffi.errno(),
  };
}

/** The binding, declared once per thread; ENATIVE when this platform is not supported or koffi cannot load. */
export function libc(): Libc {
  if (loaded) return loaded;
  try {
    loaded = declare();
  } catch (error) {
    if (error instanceof ChunkguardError) throw error;
    throw new ChunkguardError('ENATIVE', `cannot load the native binding (koffi, libc.so.6) on ${process.platform}/${process.arch}: ${(error as Error).message}`, { cause: error });
  }
  return loaded;
}
