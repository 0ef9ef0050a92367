import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dir } from '../../src/fs/dir.js';
import { DirentReader, entryName } from '../../src/fs/dirents.js';
import { useGetdentsSyscall } from '../../src/native/libc.js';

const root = mkdtempSync(join(tmpdir(), 'chunkguard-unit-dirents-'));
const big = join(root, 'big');
const small = join(root, 'small');

// 3000 entries of 40-byte names: records of 64 bytes, about 190 KiB of
// getdents64 output, so the 64 KiB buffer is refilled several times.
const MANY = 3000;
const manyNames = Array.from({ length: MANY }, (_, i) => `entry-${String(i).padStart(6, '0')}-${'x'.repeat(27)}`);
const RAW = Buffer.from([0xff, 0xfe, 0x41]);
const SPECIAL = ['a', 'n'.repeat(255), '.hidden', '..double', '.a', '...'];

const key = (name: Buffer) => name.toString('hex');
const expectedKeys = new Set([...manyNames, ...SPECIAL].map((name) => key(Buffer.from(name))).concat(key(RAW)));

beforeAll(() => {
  mkdirSync(big);
  for (const name of manyNames) writeFileSync(join(big, name), '');
  for (const name of SPECIAL) writeFileSync(join(big, name), '');
  writeFileSync(Buffer.concat([Buffer.from(`${big}/`), RAW]), '');
  mkdirSync(small);
  for (const name of ['one', 'two', 'three', 'four', 'five']) writeFileSync(join(small, name), '');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function visitAll(path: string): Buffer[] {
  const dir = Dir.open(path);
  try {
    const names: Buffer[] = [];
    dir.forEachEntry(new DirentReader(), (name) => {
      // The buffer is only valid until the next entry: copy it whole (NUL included).
      names.push(Buffer.from(name));
      return true;
    });
    return names;
  } finally {
    dir.close();
  }
}

for (const mode of ['glibc getdents64 wrapper', 'raw getdents64 syscall'] as const) {
  describe(`directory entries through the ${mode}`, () => {
    afterEach(() => useGetdentsSyscall(false));
    // afterEach resets the switch; each test sets it again.
    const forced = () => useGetdentsSyscall(mode === 'raw getdents64 syscall');

    it('every entry exactly once, with no . or ..', () => {
      forced();
      const names = visitAll(big);
      expect(names).toHaveLength(MANY + SPECIAL.length + 1);
      const keys = names.map((name) => key(entryName(name)));
      expect(new Set(keys).size).toBe(keys.length);
      expect(new Set(keys)).toEqual(expectedKeys);
      expect(keys).not.toContain(key(Buffer.from('.')));
      expect(keys).not.toContain(key(Buffer.from('..')));
    });

    it('agrees with readdir (encoding buffer)', () => {
      forced();
      const fromNode = readdirSync(big, { encoding: 'buffer' }).map(key).sort();
      const ours = visitAll(big)
        .map((name) => key(entryName(name)))
        .sort();
      expect(ours).toEqual(fromNode);
    });

    it('each visited name ends with exactly one NUL, and entryName strips it', () => {
      forced();
      for (const name of visitAll(big)) {
        expect(name.length).toBeGreaterThanOrEqual(2);
        expect(name[name.length - 1]).toBe(0);
        expect(name.indexOf(0)).toBe(name.length - 1);
        const stripped = entryName(name);
        expect(stripped.length).toBe(name.length - 1);
        expect(stripped.includes(0)).toBe(false);
      }
    });

    it('keeps a name that is not UTF-8 as its raw bytes, and names of length 1 and 255', () => {
      forced();
      const names = visitAll(big).map(entryName);
      expect(names.some((name) => name.equals(RAW))).toBe(true);
      expect(names.some((name) => name.equals(Buffer.from('a')))).toBe(true);
      const longest = names.find((name) => name.length === 255);
      expect(longest?.equals(Buffer.from('n'.repeat(255)))).toBe(true);
    });

    it('names starting with a dot are reported (only . and .. are skipped)', () => {
      forced();
      const texts = visitAll(big).map((name) => entryName(name).toString('latin1'));
      for (const name of ['.hidden', '..double', '.a', '...']) expect(texts).toContain(name);
    });

    it('the listing needs several buffer refills, and entryName copies survive them', () => {
      forced();
      const dir = Dir.open(big);
      const copies: Buffer[] = [];
      const views: Buffer[] = [];
      try {
        dir.forEachEntry(new DirentReader(), (name) => {
          copies.push(entryName(name));
          views.push(name);
          return true;
        });
      } finally {
        dir.close();
      }
      expect(new Set(copies.map(key))).toEqual(expectedKeys);
      // The views pointed into the reused buffer: after several refills, many of them no longer say what was visited.
      const changed = views.filter((view, i) => !view.subarray(0, view.length - 1).equals(copies[i]!)).length;
      expect(changed).toBeGreaterThan(0);
    });

    it('a visitor returning false stops the listing', () => {
      forced();
      const dir = Dir.open(big);
      let calls = 0;
      try {
        dir.forEachEntry(new DirentReader(), () => {
          calls++;
          return calls < 3;
        });
      } finally {
        dir.close();
      }
      expect(calls).toBe(3);
    });

    it('stopping on the first entry calls the visitor once, and the directory can be listed again in full', () => {
      forced();
      const dir = Dir.open(small);
      try {
        let calls = 0;
        dir.forEachEntry(new DirentReader(), () => {
          calls++;
          return false;
        });
        expect(calls).toBe(1);
        // Each listing reads through a fresh descriptor from the start.
        const all: string[] = [];
        dir.forEachEntry(new DirentReader(), (name) => {
          all.push(entryName(name).toString());
          return true;
        });
        expect(all.sort()).toEqual(['five', 'four', 'one', 'three', 'two']);
      } finally {
        dir.close();
      }
    });

    it('one DirentReader can be reused for several directories', () => {
      forced();
      const reader = new DirentReader();
      const a = Dir.open(small);
      const b = Dir.open(big);
      try {
        let countA = 0;
        let countB = 0;
        a.forEachEntry(reader, () => ++countA > 0);
        b.forEachEntry(reader, () => ++countB > 0);
        a.forEachEntry(reader, () => ++countA > 0);
        expect(countA).toBe(10);
        expect(countB).toBe(MANY + SPECIAL.length + 1);
      } finally {
        a.close();
        b.close();
      }
    });

    it('Dir#names lists every UTF-8 name, or those with a prefix', () => {
      forced();
      const dir = Dir.open(big);
      try {
        const all = dir.names();
        expect(all).toHaveLength(MANY + SPECIAL.length + 1);
        expect(new Set(all).size).toBe(all.length);
        for (const name of SPECIAL) expect(all).toContain(name);
        expect(all).not.toContain('.');
        expect(all).not.toContain('..');

        expect(dir.names('entry-0001').sort()).toEqual(manyNames.filter((name) => name.startsWith('entry-0001')).sort());
        expect(dir.names('entry-').length).toBe(MANY);
        expect(dir.names('..').sort()).toEqual(['...', '..double']);
        // A prefix equal to a whole name includes it; a longer prefix does not.
        expect(dir.names('a')).toEqual(['a']);
        expect(dir.names('.hidden')).toEqual(['.hidden']);
        expect(dir.names('.hiddenx')).toEqual([]);
        expect(dir.names('no-such-prefix')).toEqual([]);
      } finally {
        dir.close();
      }
    });

    it('an empty directory has no entries', () => {
      forced();
      const empty = mkdtempSync(join(root, 'empty-'));
      expect(visitAll(empty)).toEqual([]);
      const dir = Dir.open(empty);
      try {
        expect(dir.names()).toEqual([]);
      } finally {
        dir.close();
      }
    });
  });
}
