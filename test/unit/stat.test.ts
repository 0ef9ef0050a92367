import { execFileSync } from 'node:child_process';
import { type BigIntStats, lchownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dir } from '../../src/fs/dir.js';
import {
  decodeStat,
  entryKind,
  fileType,
  formatDev,
  makedev,
  parseDev,
  STATX,
  STATX_REQUIRED,
  STATX_SIZE,
  StatWords,
} from '../../src/fs/stat.js';

const root = mkdtempSync(join(tmpdir(), 'chunkguard-unit-stat-'));
let dir: Dir;

// Distinct owners, so uid/gid cannot agree by accident (as root; another user compares its own ids with lstat's).
const OWNER = { uid: 1234, gid: 5678 };
const FILE_SIZE = 12_345;
// A time with a sub-second part: nanosecond fields must survive the decode.
const FILE_ATIME = new Date('2021-03-04T05:06:07.891Z');
const FILE_MTIME = new Date('2019-11-12T13:14:15.678Z');

beforeAll(() => {
  writeFileSync(join(root, 'file'), Buffer.alloc(FILE_SIZE, 7));
  utimesSync(join(root, 'file'), FILE_ATIME, FILE_MTIME);
  const own = (path: string, uid: number, gid: number) => process.geteuid!() === 0 && lchownSync(path, uid, gid);
  own(join(root, 'file'), OWNER.uid, OWNER.gid);
  mkdirSync(join(root, 'dir'));
  own(join(root, 'dir'), OWNER.uid + 1, OWNER.gid + 1);
  symlinkSync('file-target-that-is-27-long', join(root, 'link'));
  own(join(root, 'link'), OWNER.uid + 2, OWNER.gid + 2);
  execFileSync('mkfifo', [join(root, 'fifo')]);
  dir = Dir.open(root);
});

afterAll(() => {
  dir?.close();
  rmSync(root, { recursive: true, force: true });
});

function statxOf(name: string): Buffer {
  const buf = Buffer.alloc(STATX_SIZE, 0xaa);
  expect(dir.statInto(name, buf)).toBe(0);
  return buf;
}

function splitNs(ns: bigint): number {
  // The same formula StatWords uses, computed from lstat's nanoseconds.
  return Number(ns / 1_000_000_000n) * 1000 + Number(ns % 1_000_000_000n) / 1e6;
}

const CASES: { name: string; type: string; kind: string; isType: (s: BigIntStats) => boolean }[] = [
  { name: 'file', type: 'file', kind: 'file', isType: (s) => s.isFile() },
  { name: 'dir', type: 'directory', kind: 'directory', isType: (s) => s.isDirectory() },
  { name: 'link', type: 'symlink', kind: 'symlink', isType: (s) => s.isSymbolicLink() },
  { name: 'fifo', type: 'fifo', kind: 'other', isType: (s) => s.isFIFO() },
];

describe('decodeStat and StatWords against lstat', () => {
  for (const { name, type, kind, isType } of CASES) {
    it(`${name}: every decoded field equals lstat's`, () => {
      const expected = lstatSync(join(root, name), { bigint: true });
      expect(isType(expected)).toBe(true);
      const stat = decodeStat(statxOf(name));
      expect(stat).toBeDefined();
      expect(stat!.mask & STATX_REQUIRED).toBe(STATX_REQUIRED);
      expect(stat!.mode).toBe(Number(expected.mode));
      expect(stat!.uid).toBe(Number(expected.uid));
      expect(stat!.gid).toBe(Number(expected.gid));
      expect(stat!.dev).toBe(expected.dev);
      expect(stat!.ino).toBe(expected.ino);
      expect(stat!.size).toBe(expected.size);
      expect(stat!.atimeNs).toBe(expected.atimeNs);
      expect(stat!.mtimeNs).toBe(expected.mtimeNs);
      expect(stat!.ctimeNs).toBe(expected.ctimeNs);
      expect(fileType(stat!.mode)).toBe(type);
      expect(entryKind(stat)).toBe(kind);
    });

    it(`${name}: StatWords reads the same fields from the same buffer`, () => {
      const expected = lstatSync(join(root, name), { bigint: true });
      const words = new StatWords(statxOf(name));
      expect(words.complete).toBe(true);
      expect(words.mode).toBe(Number(expected.mode));
      expect(words.uid).toBe(Number(expected.uid));
      expect(words.gid).toBe(Number(expected.gid));
      expect(words.size).toBe(Number(expected.size));
      expect(words.dev).toBe(expected.dev);
      expect(words.ino).toBe(expected.ino);
      expect(words.mtimeMs).toBe(splitNs(expected.mtimeNs));
      expect(words.ctimeMs).toBe(splitNs(expected.ctimeNs));
    });
  }

  it('the regular file has the size, owner and sub-second times it was given', () => {
    const stat = decodeStat(statxOf('file'))!;
    expect(stat.size).toBe(BigInt(FILE_SIZE));
    const root = process.geteuid!() === 0;
    expect(stat.uid).toBe(root ? OWNER.uid : process.geteuid!());
    expect(stat.gid).toBe(root ? OWNER.gid : process.getegid!());
    // utimes goes through a double: allow a microsecond, but the sub-second part must be there.
    const atimeMs = Number(stat.atimeNs) / 1e6;
    const mtimeMs = Number(stat.mtimeNs) / 1e6;
    expect(Math.abs(atimeMs - FILE_ATIME.getTime())).toBeLessThan(0.001);
    expect(Math.abs(mtimeMs - FILE_MTIME.getTime())).toBeLessThan(0.001);
    expect(stat.atimeNs % 1_000_000_000n).not.toBe(0n);
    expect(Math.abs(new StatWords(statxOf('file')).mtimeMs - FILE_MTIME.getTime())).toBeLessThan(0.001);
  });

  it('the symlink is not followed: its size is the length of its target text', () => {
    expect(decodeStat(statxOf('link'))!.size).toBe(27n);
    expect(new StatWords(statxOf('link')).size).toBe(27);
  });

  it('statInto of a missing name returns ENOENT (2) and does not fill the buffer', () => {
    const buf = Buffer.alloc(STATX_SIZE);
    expect(dir.statInto('missing', buf)).toBe(2);
    expect(decodeStat(buf)).toBeUndefined();
  });
});

describe('decodeStat refuses an incomplete mask', () => {
  const REQUIRED_BITS: [string, number][] = [
    ['TYPE', STATX.TYPE],
    ['MODE', STATX.MODE],
    ['UID', STATX.UID],
    ['GID', STATX.GID],
    ['INO', STATX.INO],
  ];

  for (const [bitName, bit] of REQUIRED_BITS) {
    it(`without ${bitName}: undefined, and StatWords.complete is false`, () => {
      const buf = statxOf('file');
      expect(decodeStat(buf)).toBeDefined();
      buf.writeUInt32LE(STATX.BASIC_STATS & ~bit, 0);
      expect(decodeStat(buf)).toBeUndefined();
      expect(new StatWords(buf).complete).toBe(false);
    });
  }

  it('an all-zero buffer decodes to undefined', () => {
    expect(decodeStat(Buffer.alloc(STATX_SIZE))).toBeUndefined();
  });

  it('exactly the required bits are enough', () => {
    const buf = statxOf('file');
    buf.writeUInt32LE(STATX_REQUIRED, 0);
    const stat = decodeStat(buf);
    expect(stat?.mask).toBe(STATX_REQUIRED);
    expect(new StatWords(buf).complete).toBe(true);
  });
});

describe('unsigned 64-bit fields', () => {
  it('an inode >= 2^63 decodes unsigned in decodeStat and StatWords', () => {
    const buf = Buffer.alloc(STATX_SIZE);
    buf.writeUInt32LE(STATX_REQUIRED, 0);
    buf.writeBigUInt64LE(0xffffffffffffff00n, 32);
    expect(decodeStat(buf)!.ino).toBe(0xffffffffffffff00n);
    expect(new StatWords(buf).ino).toBe(0xffffffffffffff00n);
  });

  it('a size above 2^32 is read from both halves', () => {
    const buf = Buffer.alloc(STATX_SIZE);
    buf.writeUInt32LE(STATX_REQUIRED, 0);
    buf.writeBigUInt64LE(5n * 2n ** 32n + 17n, 40);
    expect(decodeStat(buf)!.size).toBe(5n * 2n ** 32n + 17n);
    expect(new StatWords(buf).size).toBe(5 * 2 ** 32 + 17);
  });

  it('device major and minor above 16 bits are packed as glibc makedev', () => {
    const buf = Buffer.alloc(STATX_SIZE);
    buf.writeUInt32LE(STATX_REQUIRED, 0);
    buf.writeUInt32LE(4095, 136);
    buf.writeUInt32LE(1048575, 140);
    expect(decodeStat(buf)!.dev).toBe(makedev(4095, 1048575));
    expect(new StatWords(buf).dev).toBe(makedev(4095, 1048575));
    expect(formatDev(decodeStat(buf)!.dev)).toBe('4095:1048575');
  });

  it('a time before 1970 keeps a positive nanosecond part (tv_sec is signed)', () => {
    const buf = Buffer.alloc(STATX_SIZE);
    buf.writeUInt32LE(STATX_REQUIRED, 0);
    buf.writeBigInt64LE(-2n, 112); // mtime.tv_sec
    buf.writeUInt32LE(500_000_000, 120); // mtime.tv_nsec
    expect(decodeStat(buf)!.mtimeNs).toBe(-1_500_000_000n);
    expect(new StatWords(buf).mtimeMs).toBe(-1500);
  });
});

describe('makedev / formatDev / parseDev', () => {
  it('makedev matches the glibc layout for the classic small devices', () => {
    // sda1 is 8:1 = 0x801; nvme0n1p1 is 259:1.
    expect(makedev(8, 1)).toBe(0x801n);
    expect(makedev(259, 1)).toBe(0x10301n);
    expect(makedev(0, 0)).toBe(0n);
  });

  const PAIRS: [number, number][] = [
    [0, 0],
    [8, 1],
    [259, 65536],
    [4095, 1048575],
    [4096, 256],
    [0xffffffff, 0xffffffff],
    [0x12345678, 0x9abcdef0],
  ];
  for (const [major, minor] of PAIRS) {
    it(`${major}:${minor} round-trips`, () => {
      const dev = makedev(major, minor);
      expect(formatDev(dev)).toBe(`${major}:${minor}`);
      expect(parseDev(`${major}:${minor}`)).toBe(dev);
    });
  }

  it('distinct pairs give distinct devices (no overlap of the bit fields)', () => {
    const devs = new Set(PAIRS.map(([major, minor]) => makedev(major, minor)));
    expect(devs.size).toBe(PAIRS.length);
    expect(makedev(1, 0)).not.toBe(makedev(0, 256));
    expect(makedev(4096, 0)).not.toBe(makedev(0, 4096));
  });

  for (const junk of ['8', '8:1:2', 'a:b', '99999999999:1', '1:99999999999', '4294967296:0', '-1:0', ' 8:1', '8:1\n', '', ':', '8:']) {
    it(`parseDev rejects ${JSON.stringify(junk)}`, () => {
      expect(parseDev(junk)).toBeUndefined();
    });
  }

  it("the device of a real file formats as lstat's major:minor", () => {
    const stat = decodeStat(statxOf('file'))!;
    const expected = lstatSync(join(root, 'file'), { bigint: true }).dev;
    expect(parseDev(formatDev(stat.dev))).toBe(expected);
  });
});

describe('fileType and entryKind', () => {
  const MODES: [number, string, string][] = [
    [0o040755, 'directory', 'directory'],
    [0o100644, 'file', 'file'],
    [0o120777, 'symlink', 'symlink'],
    [0o010644, 'fifo', 'other'],
    [0o140755, 'socket', 'other'],
    [0o020666, 'char device', 'other'],
    [0o060660, 'block device', 'other'],
    [0o000644, 'unknown', 'other'],
    [0o170000, 'unknown', 'other'],
  ];
  for (const [mode, type, kind] of MODES) {
    it(`mode 0${mode.toString(8)} is ${type} (${kind})`, () => {
      expect(fileType(mode)).toBe(type);
      expect(entryKind({ mode })).toBe(kind);
    });
  }

  it('permission and setuid bits do not change the type', () => {
    expect(fileType(0o104755)).toBe('file');
    expect(fileType(0o041777)).toBe('directory');
  });

  it('no stat is missing', () => {
    expect(entryKind(undefined)).toBe('missing');
  });
});
