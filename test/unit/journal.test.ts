import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkguardError } from '../../src/errors.js';
import { readJournal, relFields, relKey } from '../../src/repair/journal.js';
import { makedev, parseDev } from '../../src/fs/stat.js';

const root = mkdtempSync(join(tmpdir(), 'chunkguard-unit-journal-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function journalFile(lines: string[]): string {
  const file = join(root, `journal-${++counter}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const BEGIN = JSON.stringify({ op: 'begin', root: '/srv/store', time: '2026-01-31T18:00:31Z', version: 1 });
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

function chown(fields: Record<string, unknown>): string {
  return JSON.stringify({ op: 'chown', path: 'store/x', rel: 'x', dev: '8:1', ino: '123', from: '0:34', to: '34:34', ...fields });
}

function expectBadInput(lines: string[], line: number, reason?: RegExp): ChunkguardError {
  const file = journalFile(lines);
  let caught: unknown;
  try {
    readJournal(file);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ChunkguardError);
  const error = caught as ChunkguardError;
  expect(error.code).toBe('EBADINPUT');
  expect(error.message.startsWith(`${file}:${line}: `)).toBe(true);
  expect(error.path).toBe(`${file}:${line}`);
  if (reason) expect(error.reason).toMatch(reason);
  return error;
}

describe('readJournal refuses hostile records, naming file and line', () => {
  const HOSTILE: [string, string, RegExp][] = [
    ['a rel with ".."', chown({ rel: '../outside/x' }), /leaves the directory/],
    ['a harmless rel whose relBase64 says "../outside/secret"', chown({ rel: 'secret', relBase64: b64('../outside/secret') }), /different paths/],
    [
      'rel and relBase64 both "../outside/secret"',
      chown({ rel: '../outside/secret', relBase64: b64('../outside/secret') }),
      /leaves the directory/,
    ],
    ['relBase64 naming another file than rel', chown({ rel: 'a', relBase64: b64('b') }), /different paths/],
    ['relBase64 that is not base64', chown({ rel: 'a', relBase64: 'a$b' }), /not base64/],
    ['relBase64 that is not a string', chown({ rel: 'a', relBase64: 5 }), /not base64/],
    ['an absolute rel', chown({ rel: '/etc/passwd' }), /absolute/],
    ['an absolute rel in relBase64 too', chown({ rel: '/etc/passwd', relBase64: b64('/etc/passwd') }), /absolute/],
    ['an empty component', chown({ rel: 'a//b' }), /empty component/],
    ['a trailing slash', chown({ rel: 'a/' }), /empty component/],
    ['rel "."', chown({ rel: '.' }), /"\." component/],
    ['rel "a/./b"', chown({ rel: 'a/./b' }), /"\." component/],
    ['a NUL byte in rel', chown({ rel: 'a\u0000b' }), /NUL/],
    ['no rel', chown({ rel: undefined }), /no "rel"/],
    ['a rel that is not a string', chown({ rel: 7 }), /no "rel"/],
    ['a failed record with ".."', JSON.stringify({ op: 'failed', rel: '../x', errno: 'EPERM' }), /leaves the directory/],
    ['a failed record with ".." in relBase64', JSON.stringify({ op: 'failed', rel: '..', relBase64: b64('..'), errno: 'EPERM' }), /leaves the directory/],
    ['dev "8"', chown({ dev: '8' }), /"dev"/],
    ['dev "8:1:2"', chown({ dev: '8:1:2' }), /"dev"/],
    ['dev as a number', chown({ dev: 2049 }), /"dev"/],
    ['dev missing', chown({ dev: undefined }), /"dev"/],
    ['ino not digits', chown({ ino: '12a' }), /"ino"/],
    ['ino negative', chown({ ino: '-1' }), /"ino"/],
    ['ino as a number', chown({ ino: 123 }), /"ino"/],
    ['ino 2^64', chown({ ino: '18446744073709551616' }), /"ino"/],
    ['ino of 21 digits', chown({ ino: '000000000000000000001' }), /"ino"/],
    ['from not UID:GID', chown({ from: '0' }), /UID:GID/],
    ['from with names', chown({ from: 'root:backup' }), /UID:GID/],
    ['to above 4294967294', chown({ to: '4294967295:34' }), /UID:GID/],
    ['to gid above 4294967294', chown({ to: '34:4294967295' }), /UID:GID/],
    ['to missing', chown({ to: undefined }), /UID:GID/],
  ];

  for (const [what, record, reason] of HOSTILE) {
    it(what, () => {
      expectBadInput([BEGIN, chown({ rel: 'fine' }), record], 3, reason);
    });
  }

  for (const line of ['[]', '1', 'null', '"chown"', 'true']) {
    it(`a JSON line that is not an object: ${line}`, () => {
      expectBadInput([BEGIN, line], 2, /not a journal record/);
    });
  }

  it('a line that is not JSON', () => {
    expectBadInput([BEGIN, '{"op":"chown",'], 2, /not a JSON line/);
  });

  it('an unknown op', () => {
    expectBadInput([BEGIN, JSON.stringify({ op: 'rm', rel: 'x' })], 2, /unknown journal record/);
  });

  it('a record without op', () => {
    expectBadInput([BEGIN, JSON.stringify({ rel: 'x' })], 2, /unknown journal record/);
  });

  it('blank lines count: the line number is the line in the file', () => {
    expectBadInput([BEGIN, '', '   ', chown({ rel: '../x' })], 4);
  });

  it('the first bad line is reported even before "begin"', () => {
    expectBadInput([chown({ rel: '/etc/shadow' }), BEGIN], 1, /absolute/);
  });

  it('no "begin" record: the first record says so', () => {
    expectBadInput([chown({ rel: 'x' })], 1, /before the "begin" record: not a chunkguard journal/);
  });

  it('a "begin" without a root', () => {
    expectBadInput([JSON.stringify({ op: 'begin', time: 'x', version: 1 })], 1, /"begin" record without its root/);
  });

  it('a second "begin" record', () => {
    expectBadInput([BEGIN, chown({ rel: 'x' }), BEGIN], 3, /not the first record/);
  });

  it('a journal of another version', () => {
    expectBadInput([JSON.stringify({ op: 'begin', root: '/srv/store', time: 'x', version: 2 })], 1, /journal version 2, this chunkguard reads version 1/);
  });

  it('an empty file has no "begin" record', () => {
    const file = journalFile([]);
    expect(() => readJournal(file)).toThrowError(expect.objectContaining({ code: 'EBADINPUT' }));
  });

  it('a missing file', () => {
    const file = join(root, 'does-not-exist.jsonl');
    expect(() => readJournal(file)).toThrowError(expect.objectContaining({ code: 'EBADINPUT', path: file, message: expect.stringContaining('ENOENT') }));
  });
});

describe('readJournal reads a valid journal', () => {
  const raw = Buffer.from([0x61, 0xff]);
  const rawFields = relFields(raw);

  const lines = [
    BEGIN,
    chown({ path: 'store/.chunks/ab12/ab12cd', rel: '.chunks/ab12/ab12cd', dev: '8:1', ino: '123', from: '0:34', to: '34:34' }),
    chown({ path: 'store/a?', ...rawFields, dev: '259:65536', ino: '18446744073709551615', from: '4294967294:0', to: '34:4294967294' }),
    chown({ path: 'store', rel: '', dev: '4095:1048575', ino: '2', from: '1000:1000', to: '34:34' }),
    chown({ path: 'store/.chunks/ffff', rel: '.chunks/ffff', dev: '8:1', ino: '456', from: '0:0', to: '34:34' }),
    JSON.stringify({ op: 'failed', rel: '.chunks/ffff', errno: 'EPERM' }),
    JSON.stringify({ op: 'failed', ...rawFields, errno: 'EPERM' }),
  ];

  it('relFields keeps the raw bytes of a non-UTF-8 name in relBase64', () => {
    expect(rawFields).toEqual({ rel: 'a\uFFFD', relBase64: 'Yf8=' });
    expect(relFields('plain')).toEqual({ rel: 'plain' });
  });

  it('every change with its path, identity and owners', () => {
    const journal = readJournal(journalFile(lines));
    expect(journal.begin).toMatchObject({ op: 'begin', root: '/srv/store', version: 1 });
    expect(journal.changes).toHaveLength(4);
    const [plain, rawChange, rootChange, failedChange] = journal.changes;

    expect(plain!.rel).toBe('.chunks/ab12/ab12cd');
    expect(plain!.dev).toBe(parseDev('8:1'));
    expect(plain!.dev).toBe(makedev(8, 1));
    expect(plain!.ino).toBe(123n);
    expect(plain!.from).toEqual({ uid: 0, gid: 34 });
    expect(plain!.to).toEqual({ uid: 34, gid: 34 });
    expect(plain!.record.path).toBe('store/.chunks/ab12/ab12cd');

    expect(Buffer.isBuffer(rawChange!.rel)).toBe(true);
    expect(rawChange!.rel).toEqual(raw);
    expect(rawChange!.dev).toBe(makedev(259, 65536));
    expect(rawChange!.ino).toBe(2n ** 64n - 1n);
    expect(rawChange!.from).toEqual({ uid: 4294967294, gid: 0 });
    expect(rawChange!.to).toEqual({ uid: 34, gid: 4294967294 });

    expect(rootChange!.rel).toBe('');
    expect(rootChange!.dev).toBe(makedev(4095, 1048575));
    expect(rootChange!.ino).toBe(2n);

    expect(failedChange!.rel).toBe('.chunks/ffff');
  });

  it('failed holds the relKey of each failed path, whichever form it was written in', () => {
    const journal = readJournal(journalFile(lines));
    expect(journal.failed).toEqual(new Set([relKey('.chunks/ffff'), relKey(raw)]));
    expect(journal.failed.has(relKey(Buffer.from('.chunks/ffff')))).toBe(true);
    expect(journal.failed.has(relKey('.chunks/ab12/ab12cd'))).toBe(false);
    // The raw name's key is its bytes, not its U+FFFD text.
    expect(journal.failed.has(relKey('a\uFFFD'))).toBe(false);
  });

  it('relBase64 that decodes to plain UTF-8 matching rel is accepted and used as bytes', () => {
    const journal = readJournal(journalFile([BEGIN, chown({ rel: 'dir/x', relBase64: b64('dir/x') })]));
    expect(journal.changes).toHaveLength(1);
    expect(Buffer.from(journal.changes[0]!.rel).toString()).toBe('dir/x');
  });

  it('a journal with only "begin" has no changes', () => {
    const journal = readJournal(journalFile([BEGIN]));
    expect(journal.changes).toEqual([]);
    expect(journal.failed.size).toBe(0);
  });

  it('CRLF line ends are tolerated', () => {
    const file = join(root, 'crlf.jsonl');
    writeFileSync(file, `${BEGIN}\r\n${chown({ rel: 'x' })}\r\n`);
    expect(readJournal(file).changes.map((change) => change.rel)).toEqual(['x']);
  });
});
