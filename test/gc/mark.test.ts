/**
 * The mark's ReadJournal on real index files: a read that fails part way (the
 * file cut under it) adds none of its digests, so an index counts whole or not
 * at all, while digests the set held before stay; a read that succeeds adds
 * all of its own.
 */
import { mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dir } from '../../src/fs/dir.js';
import { DigestSet } from '../../src/gc/digest-set.js';
import { DigestWords } from '../../src/gc/digest-words.js';
import { type DigestVisitor, readIndex } from '../../src/gc/index-file.js';
import { ReadJournal } from '../../src/gc/mark.js';
import { RepeatFilter } from '../../src/gc/repeats.js';
import { chunkOf, encodeIndex } from '../helpers/pbs-store.js';
import { reachableTempDir } from '../helpers/store.js';

let tmp: string;
let cases = 0;
beforeAll(() => {
  tmp = reachableTempDir('chunkguard-gc-mark-');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const digests = (n: number, salt: string): Buffer[] => Array.from({ length: n }, (_, i) => chunkOf(Buffer.from(`${salt} ${i}`)).digest);

/** The journal as readIndex's visitor. */
const into = (journal: ReadJournal): DigestVisitor => {
  const words = new DigestWords();
  return (bytes, first, count, stride) => words.forEach(bytes, first, count, stride, journal.add);
};

/** readIndex of `bytes` written as `name`, each digest to `visit`, `change` run at the first one. */
function readChanging(name: string, bytes: Buffer, visit: DigestVisitor, change: (path: string) => void) {
  const dir = join(tmp, `case-${++cases}`);
  mkdirSync(dir);
  writeFileSync(join(dir, name), bytes);
  const handle = Dir.open(dir);
  let first = true;
  try {
    return readIndex(handle, name, (buf, at, count, stride) => {
      if (first) change(join(dir, name));
      first = false;
      visit(buf, at, count, stride);
    });
  } finally {
    handle.close();
  }
}

describe('ReadJournal', () => {
  it('an index cut while it is read adds nothing, the digests the set held before stay; read whole, it adds all of its own', () => {
    const earlier = digests(3, 'earlier');
    const own = digests(7, 'own');
    const set = new DigestSet();
    for (const digest of earlier) set.add(digest);
    const journal = new ReadJournal(set);
    const bytes = encodeIndex({ kind: 'fixed', digests: [...earlier, ...own], chunkSize: 4096 });
    const cut = readChanging('a.fidx', bytes, into(journal), (path) => truncateSync(path, 4096 + 64));
    expect(cut.ok ? 'ok' : cut.problem.code).toBe('CHANGED');
    journal.undo();
    expect(set.size).toBe(3);
    for (const digest of earlier) expect(set.has(digest)).toBe(true);
    const whole = readChanging('a.fidx', bytes, into(journal), () => {});
    expect(whole.ok).toBe(true);
    journal.keep();
    expect(set.size).toBe(10);
    for (const digest of own) expect(set.has(digest)).toBe(true);
  });

  it('a 3.2 MB index cut after its first megabyte was delivered: the journal grows past its first size and none of the 32,768 digests reaches the set', () => {
    const set = new DigestSet();
    const journal = new ReadJournal(set);
    let delivered = 0;
    const toJournal = into(journal);
    const count: DigestVisitor = (buf, first, entries, stride) => {
      delivered += entries;
      toJournal(buf, first, entries, stride);
    };
    const cut = readChanging('big.fidx', encodeIndex({ kind: 'fixed', digests: digests(100_000, 'big'), chunkSize: 4096 }), count, (path) => truncateSync(path, 4096 + 64));
    expect(cut.ok ? 'ok' : cut.problem.code).toBe('CHANGED');
    expect(delivered).toBe(32_768);
    journal.undo();
    expect(set.size).toBe(0);
    // The journal still works after the cut read.
    const whole = readChanging('small.fidx', encodeIndex({ kind: 'fixed', digests: digests(5, 'small'), chunkSize: 4096 }), into(journal), () => {});
    expect(whole.ok).toBe(true);
    journal.keep();
    expect(set.size).toBe(5);
  });

  it('with the repeat filter in front: a read of the same disk cut short is forgotten with its lineage, so the next read adds what only it saw', () => {
    const set = new DigestSet();
    const journal = new ReadJournal(set);
    const repeats = new RepeatFilter(journal.add);
    const lineage = { group: 'vm/100', name: 'drive-scsi0.img.fidx' };
    const first = digests(50, 'first');
    const second = [...first.slice(0, 10), ...digests(40, 'second')];
    const read = (label: string, list: Buffer[], cut: boolean) =>
      readChanging(`${label}.fidx`, encodeIndex({ kind: 'fixed', digests: list, chunkSize: 4096 }), repeats.start(lineage), cut ? (path) => truncateSync(path, 4096 + 64) : () => {});
    expect(read('a', first, false).ok).toBe(true);
    journal.keep();
    // The next backup changed 40 blocks; its read is cut: nothing of it reaches the set.
    expect(read('b', second, true).ok).toBe(false);
    journal.undo();
    repeats.forget();
    expect(set.size).toBe(50);
    // Read again whole: its 40 new digests are added, though the cut read had passed them to the filter.
    expect(read('c', second, false).ok).toBe(true);
    journal.keep();
    expect(set.size).toBe(90);
    for (const digest of second) expect(set.has(digest)).toBe(true);
  });
});

