import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Dir, FS_IMMUTABLE_FL, inodeFlags } from '../../src/fs/dir.js';

/** The GC's touch of one file, relative to its open directory. */
function touchAtime(path: string) {
  const parent = Dir.open(dirname(path));
  try {
    return parent.touch(basename(path));
  } finally {
    parent.close();
  }
}
import { describeAsRoot } from '../helpers/privileged.js';

const dir = mkdtempSync(join(tmpdir(), 'chunkguard-native-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Dir#touch (utimensat UTIME_NOW, UTIME_OMIT)', () => {
  it('sets atime to now and leaves mtime alone', () => {
    const file = join(dir, 'a');
    writeFileSync(file, 'x');
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(file, past, past);
    expect(touchAtime(file)).toEqual({ ok: true });
    const stat = statSync(file, { bigint: true });
    expect(stat.mtimeNs).toBe(BigInt(past.getTime()) * 1_000_000n);
    expect(Number(stat.atimeNs / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('returns the errno name on failure', () => {
    expect(touchAtime(join(dir, 'missing'))).toEqual({ ok: false, code: 'ENOENT' });
  });

  it('never follows a symlink: the target keeps its atime', () => {
    const target = join(dir, 'target');
    const link = join(dir, 'link');
    writeFileSync(target, 'x');
    const past = new Date('2020-01-01T00:00:00Z');
    utimesSync(target, past, past);
    symlinkSync(target, link);
    touchAtime(link);
    expect(statSync(target).atimeMs).toBe(past.getTime());
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });
});

describeAsRoot('inodeFlags (FS_IOC_GETFLAGS)', () => {
  it('sees the immutable flag chattr +i sets, and touchAtime fails with EPERM even as root', () => {
    const file = join(dir, 'immutable');
    writeFileSync(file, 'x');
    execFileSync('chattr', ['+i', file]);
    try {
      const fd = openSync(file, 'r');
      const flags = inodeFlags(fd);
      closeSync(fd);
      expect(flags !== undefined && (flags & FS_IMMUTABLE_FL) !== 0).toBe(true);
      expect(touchAtime(file)).toMatchObject({ ok: false, code: 'EPERM' });
    } finally {
      execFileSync('chattr', ['-i', file]);
    }
  });
});
