/**
 * RepeatFilter: phase 1 skips an entry equal to the one at its place in the
 * index read before it under the same name in the same group, and the set
 * ends exactly as plain adds leave it, whatever the reads look like: entries
 * changed back and forth, shorter and longer indexes, a retried read, a new
 * group, other names, indexes outside the scheme, digests of zero bytes,
 * lineages past the memory budget.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestSet } from '../../src/gc/digest-set.js';
import { RepeatFilter } from '../../src/gc/repeats.js';

type Lineage = { group: string; name: string } | undefined;

/** One read: the entries in order, as readIndex hands them over (views of one buffer, a few entries at a time). */
function read(filter: RepeatFilter, lineage: Lineage, digests: Buffer[], pad = 8): void {
  const visit = filter.start(lineage);
  const bytes = Buffer.concat([Buffer.alloc(pad), ...digests]);
  for (let first = 0; first < digests.length; first += 3) visit(bytes, pad + 32 * first, Math.min(3, digests.length - first), 32);
}

/** The filtered set and a plain one after the same reads; the filter's repeat count. */
function both(reads: Array<[Lineage, Buffer[]]>): { filtered: DigestSet; plain: DigestSet; repeats: number } {
  const filtered = new DigestSet();
  const filter = new RepeatFilter((words, at) => void filtered.addWords(words, at));
  const plain = new DigestSet();
  for (const [lineage, digests] of reads) {
    read(filter, lineage, digests);
    for (const digest of digests) plain.add(digest);
  }
  return { filtered, plain, repeats: filter.repeats };
}

function contents(set: DigestSet): string[] {
  set.seal();
  const all: string[] = [];
  // By number: two sets that list the same digests in the same order numbered them alike.
  set.forEachMissing((_, digest) => all.push(digest.toString('hex')));
  return all;
}

const digests = (count: number): Buffer[] => Array.from({ length: count }, () => randomBytes(32));
const vm = (name = 'drive-scsi0.img.fidx', group = 'vm/100'): Lineage => ({ group, name });

describe('RepeatFilter', () => {
  it('skips what a lineage repeats at its place, and the set holds what plain adds hold', () => {
    const [a, b, c, d, e] = digests(5);
    const { filtered, plain, repeats } = both([
      [vm(), [a!, b!, c!]],
      // b changed to d: a and c repeat.
      [vm(), [a!, d!, c!]],
      // d changed back to b: b is in the set, compared with d, added again (a duplicate).
      [vm(), [a!, b!, c!]],
      // Longer: a, b repeat; c moved; e new at a place never filled.
      [vm(), [a!, b!, e!, c!]],
    ]);
    expect(repeats).toBe(2 + 2 + 2);
    expect(filtered.size).toBe(5);
    expect(contents(filtered)).toEqual(contents(plain));
  });

  it('digests at offsets that are no multiple of 4 (and buffers that start at one) compare the same as aligned ones', () => {
    const set = new DigestSet();
    const filter = new RepeatFilter((words, at) => void set.addWords(words, at));
    const [a, b, c] = digests(3);
    read(filter, vm(), [a!, b!, c!], 1);
    read(filter, vm(), [a!, c!, c!], 8);
    expect(filter.repeats).toBe(2);
    read(filter, vm(), [a!, c!, b!], 3);
    expect(filter.repeats).toBe(4);
    const unaligned = Buffer.concat([Buffer.alloc(3), a!, b!]).subarray(1);
    const visit = filter.start(vm());
    visit(unaligned, 2, 2, 32);
    expect(filter.repeats).toBe(5);
    expect(set.size).toBe(3);
  });

  it('a new group, another name and an index outside the scheme compare with nothing', () => {
    const one = digests(50);
    const { filtered, plain, repeats } = both([
      [vm(), one],
      [vm('drive-scsi1.img.fidx'), one],
      [vm('drive-scsi0.img.fidx', 'vm/101'), one],
      [undefined, one],
      [undefined, one],
      // Back in vm/101 under its first name: that lineage is kept, the first group's was dropped.
      [vm('drive-scsi0.img.fidx', 'vm/101'), one],
      [vm(), one],
    ]);
    expect(repeats).toBe(50);
    expect(contents(filtered)).toEqual(contents(plain));
  });

  it('a read retried from its start compares from the start again; entries kept from a read cut short are in the set', () => {
    const set = new DigestSet();
    const filter = new RepeatFilter((words, at) => void set.addWords(words, at));
    const all = digests(10);
    read(filter, vm(), all.slice(0, 4));
    read(filter, vm(), all);
    expect(filter.repeats).toBe(4);
    read(filter, vm(), all);
    expect(filter.repeats).toBe(14);
    expect(set.size).toBe(10);
  });

  it('a digest of 32 zero bytes at a place never filled is added, not taken for an empty slot', () => {
    const zero = Buffer.alloc(32);
    const [a] = digests(1);
    const { filtered, repeats } = both([
      [vm(), [a!]],
      [vm(), [a!, zero, zero]],
    ]);
    expect(repeats).toBe(1);
    expect(filtered.has(zero)).toBe(true);
    expect(filtered.size).toBe(2);
  });

  it('past the group budget (32 MiB) a lineage keeps nothing more, and its entries are still added', () => {
    // 600,000 entries fill 32 MiB once the room doubles past 19.2 MB: the first lineage takes the whole budget.
    const first = Buffer.concat(digests(600_000));
    const second = Buffer.concat(digests(1000));
    const set = new DigestSet();
    const filter = new RepeatFilter((words, at) => void set.addWords(words, at));
    const readAll = (lineage: Lineage, bytes: Buffer): void => {
      const visit = filter.start(lineage);
      for (let at = 0; at < bytes.length; at += 32 * 1000) visit(bytes, at, Math.min(1000, (bytes.length - at) / 32), 32);
    };
    readAll(vm('a.fidx'), first);
    readAll(vm('b.fidx'), second);
    readAll(vm('b.fidx'), second);
    expect(filter.repeats).toBe(0);
    readAll(vm('a.fidx'), first);
    expect(filter.repeats).toBe(600_000);
    expect(set.size).toBe(601_000);
    // A new group frees the budget.
    readAll(vm('b.fidx', 'vm/101'), second);
    readAll(vm('b.fidx', 'vm/101'), second);
    expect(filter.repeats).toBe(601_000);
  });
});
