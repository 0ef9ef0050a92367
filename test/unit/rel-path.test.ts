import { describe, expect, it } from 'vitest';
import {
  baseName,
  displayPath,
  joinRel,
  nameFromBytes,
  parentRel,
  relBytes,
  relText,
  reviveRel,
  splitRel,
  unsafeComponent,
  unsafeRel,
  type RelPath,
} from '../../src/fs/rel-path.js';

const b = (text: string) => Buffer.from(text);
const RAW = Buffer.from([0x61, 0xff]); // "a" and a byte that is not UTF-8

/** The bytes of a RelPath, for comparing a string and a Buffer result. */
const bytes = (rel: RelPath) => relBytes(rel).toString('hex');

describe('joinRel', () => {
  it('joins two strings with one slash', () => {
    expect(joinRel('a', 'b')).toBe('a/b');
    expect(joinRel('.chunks/bb9f', 'x')).toBe('.chunks/bb9f/x');
  });

  it('an empty parent (string or Buffer) gives the name itself', () => {
    expect(joinRel('', 'x')).toBe('x');
    expect(joinRel(Buffer.alloc(0), 'x')).toBe('x');
    expect(joinRel('', RAW)).toBe(RAW);
  });

  it('any Buffer side makes a Buffer with the raw bytes kept', () => {
    const joined = joinRel('dir', RAW);
    expect(Buffer.isBuffer(joined)).toBe(true);
    expect(joined).toEqual(Buffer.from([0x64, 0x69, 0x72, 0x2f, 0x61, 0xff]));
    const other = joinRel(RAW, 'x');
    expect(other).toEqual(Buffer.concat([RAW, b('/x')]));
    expect(joinRel(b('a'), b('b'))).toEqual(b('a/b'));
  });
});

describe('splitRel', () => {
  it('string paths split into their components', () => {
    expect(splitRel('a/b/c')).toEqual(['a', 'b', 'c']);
    expect(splitRel('a')).toEqual(['a']);
    expect(splitRel('')).toEqual([]);
  });

  it('Buffer paths split into Buffer components, raw bytes kept', () => {
    const parts = splitRel(Buffer.concat([b('.chunks/'), RAW, b('/x')]));
    expect(parts).toHaveLength(3);
    expect(parts.every((part) => Buffer.isBuffer(part))).toBe(true);
    expect(parts.map(bytes)).toEqual([bytes('.chunks'), RAW.toString('hex'), bytes('x')]);
    expect(splitRel(Buffer.alloc(0))).toEqual([]);
  });

  it('split and join are inverse for well-formed paths', () => {
    for (const rel of ['a', 'a/b', '.chunks/bb9f/x', Buffer.concat([b('d/'), RAW]), Buffer.concat([RAW, b('/'), RAW])] as RelPath[]) {
      const rejoined = splitRel(rel).reduce<RelPath>((joined, part) => joinRel(joined, part), '');
      expect(bytes(rejoined)).toBe(bytes(rel));
    }
  });
});

describe('parentRel and baseName', () => {
  it('strings', () => {
    expect(parentRel('a/b/c')).toBe('a/b');
    expect(parentRel('a')).toBe('');
    expect(parentRel('')).toBe('');
    expect(baseName('a/b/c')).toBe('c');
    expect(baseName('a')).toBe('a');
    expect(baseName('')).toBe('');
  });

  it('Buffers keep the raw bytes of every component', () => {
    const rel = Buffer.concat([RAW, b('/mid/'), RAW]);
    expect(bytes(parentRel(rel))).toBe(bytes(Buffer.concat([RAW, b('/mid')])));
    expect(Buffer.isBuffer(parentRel(rel))).toBe(true);
    expect(baseName(rel)).toEqual(RAW);
    expect(bytes(parentRel(Buffer.concat([b('top/'), RAW])))).toBe(bytes('top'));
    expect(bytes(parentRel(RAW))).toBe('');
  });
});

describe('displayPath', () => {
  it('the root itself for an empty rel', () => {
    expect(displayPath('/srv/store', '')).toBe('/srv/store');
    expect(displayPath('/srv/store/', Buffer.alloc(0))).toBe('/srv/store/');
  });

  it('children with one slash, as find prints them', () => {
    expect(displayPath('/srv/store', 'a/b')).toBe('/srv/store/a/b');
    expect(displayPath('/srv/store/', 'a/b')).toBe('/srv/store/a/b');
    expect(displayPath('/', 'etc')).toBe('/etc');
    expect(displayPath('.', 'x')).toBe('./x');
  });

  it('a Buffer rel gives a Buffer path with the raw bytes', () => {
    const path = displayPath('/srv', RAW);
    expect(Buffer.isBuffer(path)).toBe(true);
    expect(path).toEqual(Buffer.concat([b('/srv/'), RAW]));
  });
});

describe('relText, relBytes, nameFromBytes, reviveRel', () => {
  it('relText shows invalid bytes as U+FFFD', () => {
    expect(relText('plain')).toBe('plain');
    expect(relText(RAW)).toBe('a\uFFFD');
    expect(relText(b('ünïcode'))).toBe('ünïcode');
  });

  it('relBytes gives UTF-8 for strings and the bytes themselves for Buffers', () => {
    expect(relBytes('ü')).toEqual(Buffer.from([0xc3, 0xbc]));
    expect(relBytes(RAW)).toBe(RAW);
  });

  it('nameFromBytes: a string when the bytes are UTF-8, else the bytes', () => {
    expect(nameFromBytes(b('chunk'))).toBe('chunk');
    expect(nameFromBytes(b('ünïcode'))).toBe('ünïcode');
    expect(nameFromBytes(RAW)).toBe(RAW);
    expect(nameFromBytes(Buffer.from([0xc0, 0xae]))).toEqual(Buffer.from([0xc0, 0xae])); // overlong '.'
    expect(nameFromBytes(Buffer.from([0xed, 0xa0, 0x80]))).toEqual(Buffer.from([0xed, 0xa0, 0x80])); // a lone surrogate
  });

  it('reviveRel turns a Uint8Array view back into a Buffer over the same bytes', () => {
    const backing = new Uint8Array([9, 0x61, 0xff, 9]);
    const view = backing.subarray(1, 3);
    const revived = reviveRel(view);
    expect(Buffer.isBuffer(revived)).toBe(true);
    expect(revived).toEqual(RAW);
    expect(reviveRel('x')).toBe('x');
  });
});

describe('unsafeRel', () => {
  const REFUSED: [string, string][] = [
    ['', 'an empty path'],
    ['/abs', 'an absolute path'],
    ['/', 'an absolute path'],
    ['..', 'a ".." component'],
    ['.', 'a "." component'],
    ['a/../b', 'a ".." component'],
    ['a//b', 'an empty component'],
    ['a/./b', 'a "." component'],
    ['a/', 'an empty component'],
    ['a/..', 'a ".." component'],
    ['../outside/x', 'a ".." component'],
    ['a\0b', 'a NUL byte'],
  ];
  for (const [rel, why] of REFUSED) {
    it(`refuses ${JSON.stringify(rel)} (${why}), as a string and as a Buffer`, () => {
      expect(unsafeRel(rel)).toBe(why);
      expect(unsafeRel(b(rel))).toBe(why);
    });
  }

  it('refuses a raw path with a ".." component next to invalid bytes', () => {
    expect(unsafeRel(Buffer.concat([RAW, b('/../x')]))).toBe('a ".." component');
    expect(unsafeRel(Buffer.concat([RAW, Buffer.from([0])]))).toBe('a NUL byte');
  });

  for (const rel of ['a', '.chunks/bb9f/x', '..hidden', 'a..b', '...', 'a/.b/..c', 'x.', 'a/b..']) {
    it(`accepts ${JSON.stringify(rel)}`, () => {
      expect(unsafeRel(rel)).toBeUndefined();
      expect(unsafeRel(b(rel))).toBeUndefined();
    });
  }

  it('accepts raw non-UTF-8 bytes', () => {
    expect(unsafeRel(RAW)).toBeUndefined();
    expect(unsafeRel(Buffer.concat([b('.chunks/'), RAW]))).toBeUndefined();
    expect(unsafeRel(Buffer.from([0xc0, 0xae]))).toBeUndefined();
  });
});

describe('unsafeComponent', () => {
  const REFUSED: [string, string][] = [
    ['', 'an empty component'],
    ['.', 'a "." component'],
    ['..', 'a ".." component'],
    ['a/b', 'a slash inside a name'],
    ['/', 'a slash inside a name'],
    ['a\0', 'a NUL byte'],
  ];
  for (const [name, why] of REFUSED) {
    it(`refuses ${JSON.stringify(name)}, as a string and as a Buffer`, () => {
      expect(unsafeComponent(name)).toBe(why);
      expect(unsafeComponent(b(name))).toBe(why);
    });
  }

  for (const name of ['a', '..hidden', 'a..b', '...', '.x', 'n'.repeat(255)]) {
    it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 5)}...(${name.length})` : name)}`, () => {
      expect(unsafeComponent(name)).toBeUndefined();
      expect(unsafeComponent(b(name))).toBeUndefined();
    });
  }

  it('accepts raw non-UTF-8 bytes', () => {
    expect(unsafeComponent(RAW)).toBeUndefined();
  });
});
