/** Reading a struct statx filled by statxAt (offsets from linux/stat.h, the same on every architecture). */

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

// stx_attributes bits the kernel reports without an ioctl.
export const STATX_ATTR_IMMUTABLE = 0x10;
export const STATX_ATTR_APPEND = 0x20;

export interface EntryStat {
  mode: number;
  uid: number;
  gid: number;
  /** major:minor of the filesystem holding the entry. */
  dev: string;
  ino: bigint;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** stx_attributes: immutable / append-only without opening the file. */
  attributes: number;
}

const readMode = (buf: Buffer): number => buf.readUInt16LE(28);
const readUid = (buf: Buffer): number => buf.readUInt32LE(20);
const readGid = (buf: Buffer): number => buf.readUInt32LE(24);
export const readDev = (buf: Buffer): string => `${buf.readUInt32LE(136)}:${buf.readUInt32LE(140)}`;

function readTimeMs(buf: Buffer, offset: number): number {
  return Number(buf.readBigInt64LE(offset)) * 1000 + buf.readUInt32LE(offset + 8) / 1e6;
}

export function readStatx(buf: Buffer): EntryStat {
  return {
    mode: readMode(buf),
    uid: readUid(buf),
    gid: readGid(buf),
    dev: readDev(buf),
    ino: buf.readBigUInt64LE(32),
    size: Number(buf.readBigUInt64LE(40)),
    mtimeMs: readTimeMs(buf, 112),
    ctimeMs: readTimeMs(buf, 96),
    attributes: Number(buf.readBigUInt64LE(8) & 0xffffffffn),
  };
}

export type EntryType = 'directory' | 'file' | 'symlink' | 'fifo' | 'socket' | 'char device' | 'block device' | 'unknown';

export function entryType(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return 'directory';
    case S_IFREG:
      return 'file';
    case S_IFLNK:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'char device';
    case 0o060000:
      return 'block device';
    default:
      return 'unknown';
  }
}
