/**
 * The only decoder of struct statx (offsets from linux/stat.h, the same on
 * every architecture; read little-endian, which libc.ts guarantees). Two
 * ways to read the same offsets: decodeStat() makes a Stat for the check,
 * insert and fix; StatWords reads single fields as 32-bit words without an
 * allocation, for the audit's million entries.
 */
import { libc } from '../native/libc.js';
import type { EntryKind } from './errors.js';

export const STATX_SIZE = 256;

/** stx_mask bits (what the filesystem filled in). */
export const STATX = {
  TYPE: 0x1,
  MODE: 0x2,
  NLINK: 0x4,
  UID: 0x8,
  GID: 0x10,
  ATIME: 0x20,
  MTIME: 0x40,
  CTIME: 0x80,
  INO: 0x100,
  SIZE: 0x200,
  BASIC_STATS: 0x7ff,
} as const;
/** Without these a stat says nothing chunkguard can use. */
export const STATX_REQUIRED = STATX.TYPE | STATX.MODE | STATX.UID | STATX.GID | STATX.INO;

// stx_attributes bits the kernel reports without an ioctl.
export const STATX_ATTR_IMMUTABLE = 0x10;
export const STATX_ATTR_APPEND = 0x20;

const OFFSET = {
  mask: 0,
  attributes: 8,
  nlink: 16,
  uid: 20,
  gid: 24,
  mode: 28,
  ino: 32,
  size: 40,
  atime: 64,
  ctime: 96,
  mtime: 112,
  devMajor: 136,
  devMinor: 140,
} as const;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export type FileType = 'directory' | 'file' | 'symlink' | 'fifo' | 'socket' | 'char device' | 'block device' | 'unknown';

const TYPES = new Map<number, FileType>([
  [S_IFDIR, 'directory'],
  [S_IFREG, 'file'],
  [S_IFLNK, 'symlink'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
  [0o020000, 'char device'],
  [0o060000, 'block device'],
]);

/** The file type of a mode, in words reports use. */
export function fileType(mode: number): FileType {
  return TYPES.get(mode & S_IFMT) ?? 'unknown';
}

/** The file type in the layout checks' terms ('missing' for no stat). */
export function entryKind(stat: { mode: number } | undefined): EntryKind {
  if (!stat) return 'missing';
  const type = fileType(stat.mode);
  return type === 'directory' || type === 'file' || type === 'symlink' ? type : 'other';
}

/** lstat's facts with unsigned 64-bit inode and device and nanosecond times. */
export interface Stat {
  /** The stx_mask bits the filesystem filled in. */
  mask: number;
  mode: number;
  /** Hard links (0 when the filesystem does not say). */
  nlink: number;
  uid: number;
  gid: number;
  /** The device as glibc's makedev() packs it (what fs.lstat reports). */
  dev: bigint;
  /** Unsigned: some filesystems hand out inode numbers >= 2^63. */
  ino: bigint;
  size: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** stx_attributes: immutable, append-only without opening the file. */
  attributes: number;
}

/** glibc's makedev(). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Major and minor of a makedev() value. */
function devParts(dev: bigint): [number, number] {
  const major = ((dev >> 32n) & 0xfffff000n) | ((dev >> 8n) & 0xfffn);
  const minor = ((dev >> 12n) & 0xffffff00n) | (dev & 0xffn);
  return [Number(major), Number(minor)];
}

/** major:minor of a makedev() value, as journals and /proc write devices. */
export function formatDev(dev: bigint): string {
  return devParts(dev).join(':');
}

/** major·2^32 + minor of a makedev() value: the number StatWords#majorMinor reads, for a quick same-device test. */
export function majorMinorOf(dev: bigint): number {
  const [major, minor] = devParts(dev);
  return major * 2 ** 32 + minor;
}

/** The inverse of formatDev, or undefined for text that is not `major:minor`. */
export function parseDev(text: string): bigint | undefined {
  const match = /^(\d{1,10}):(\d{1,10})$/.exec(text);
  if (!match) return undefined;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  if (major > 0xffffffff || minor > 0xffffffff) return undefined;
  return makedev(major, minor);
}

function timeNs(buf: Buffer, offset: number): bigint {
  return buf.readBigInt64LE(offset) * 1_000_000_000n + BigInt(buf.readUInt32LE(offset + 8));
}

/** A Stat from a filled struct statx, or undefined when the filesystem left out a required field. */
export function decodeStat(buf: Buffer): Stat | undefined {
  const mask = buf.readUInt32LE(OFFSET.mask);
  if ((mask & STATX_REQUIRED) !== STATX_REQUIRED) return undefined;
  return {
    mask,
    mode: buf.readUInt16LE(OFFSET.mode),
    nlink: mask & STATX.NLINK ? buf.readUInt32LE(OFFSET.nlink) : 0,
    uid: buf.readUInt32LE(OFFSET.uid),
    gid: buf.readUInt32LE(OFFSET.gid),
    dev: makedev(buf.readUInt32LE(OFFSET.devMajor), buf.readUInt32LE(OFFSET.devMinor)),
    ino: buf.readBigUInt64LE(OFFSET.ino),
    size: buf.readBigUInt64LE(OFFSET.size),
    atimeNs: timeNs(buf, OFFSET.atime),
    mtimeNs: timeNs(buf, OFFSET.mtime),
    ctimeNs: timeNs(buf, OFFSET.ctime),
    attributes: Number(buf.readBigUInt64LE(OFFSET.attributes) & 0xffffffffn),
  };
}

/**
 * Single fields of the struct statx in `buf`, read as 32-bit words: no
 * allocation per entry. 64-bit values are read as two halves, exact below 2^53.
 */
export class StatWords {
  private readonly words: Uint32Array;
  private bufAddress: number | undefined;

  constructor(readonly buf: Buffer) {
    this.words = new Uint32Array(buf.buffer, buf.byteOffset, STATX_SIZE / 4);
  }

  /** Where `buf` is, for a statx that writes it by address (see DirentReader#address). */
  get address(): number {
    this.bufAddress ??= Number(libc().address(this.buf));
    return this.bufAddress;
  }

  get complete(): boolean {
    return (this.words[OFFSET.mask / 4]! & STATX_REQUIRED) === STATX_REQUIRED;
  }
  get mode(): number {
    return this.words[OFFSET.mode / 4]! & 0xffff;
  }
  get uid(): number {
    return this.words[OFFSET.uid / 4]!;
  }
  get gid(): number {
    return this.words[OFFSET.gid / 4]!;
  }
  get attributes(): number {
    return this.words[OFFSET.attributes / 4]!;
  }
  get size(): number {
    return this.words[OFFSET.size / 4 + 1]! * 2 ** 32 + this.words[OFFSET.size / 4]!;
  }
  /** stx_atime's whole seconds, signed, as st_atime (what the server's GC compares). */
  get atimeSeconds(): number {
    return this.seconds(OFFSET.atime);
  }
  get mtimeMs(): number {
    return this.timeMs(OFFSET.mtime);
  }
  get ctimeMs(): number {
    return this.timeMs(OFFSET.ctime);
  }
  get majorMinor(): number {
    // One number for a quick same-device test: major and minor are each below 2^32.
    return this.words[OFFSET.devMajor / 4]! * 2 ** 32 + this.words[OFFSET.devMinor / 4]!;
  }
  get dev(): bigint {
    return makedev(this.words[OFFSET.devMajor / 4]!, this.words[OFFSET.devMinor / 4]!);
  }
  get ino(): bigint {
    return this.buf.readBigUInt64LE(OFFSET.ino);
  }

  private seconds(offset: number): number {
    return (this.words[offset / 4 + 1]! | 0) * 2 ** 32 + this.words[offset / 4]!;
  }

  private timeMs(offset: number): number {
    return this.seconds(offset) * 1000 + this.words[offset / 4 + 2]! / 1e6;
  }
}
