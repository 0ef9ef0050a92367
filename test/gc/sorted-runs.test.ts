import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SortedRuns } from '../../src/gc/sorted-runs.js';

/** The distinct records, sorted, as hex. */
const sortedHex = (records: Buffer[]): string[] => [...new Set(records.map((record) => record.toString('hex')))].sort();

/**
 * Records of 6 bytes from a four-letter alphabet: many repeats, and long
 * shared prefixes, which the search skips once two neighbours share them.
 */
const recordArbitrary = fc.uint8Array({ minLength: 6, maxLength: 6, min: 0, max: 3 }).map((bytes) => Buffer.from(bytes));

describe('SortedRuns', () => {
  it('agrees with a Set on adds, membership and the sorted drain, across many frozen and merged runs', () => {
    fc.assert(
      fc.property(fc.array(recordArbitrary, { maxLength: 60 }), fc.array(recordArbitrary, { minLength: 1000, maxLength: 6000 }), (first, added) => {
        const firstRun = Buffer.from(sortedHex(first).join(''), 'hex');
        const runs = new SortedRuns(6, firstRun);
        const expected = new Set(sortedHex(first));
        // A shared frame at an offset, as DigestSet passes a digest's key.
        const frame = Buffer.alloc(10);
        const wasNew = added.map((record) => {
          record.copy(frame, 3);
          return runs.add(frame, 3);
        });
        const expectedNew = added.map((record) => {
          const isNew = !expected.has(record.toString('hex'));
          expected.add(record.toString('hex'));
          return isNew;
        });
        expect(wasNew).toEqual(expectedNew);
        expect(runs.size).toBe(expected.size);
        const every = Array.from({ length: 4096 }, (_, value) => Buffer.from(Array.from({ length: 6 }, (_, at) => (value >>> (2 * at)) & 3)));
        expect(sortedHex(every.filter((record) => runs.has(record, 0)))).toEqual([...expected].sort());
        expect(runs.drain().toString('hex')).toBe([...expected].sort().join(''));
        expect(runs.size).toBe(0);
      }),
      // Shrinking thousands of records takes minutes: the first failure is reported as found.
      { numRuns: 40, endOnFailure: true },
    );
  });

  it('starts from its first run alone, and drains it unchanged', () => {
    const first = Buffer.from('000000010002ffff', 'hex');
    const runs = new SortedRuns(2, first);
    expect(runs.size).toBe(4);
    expect(runs.has(Buffer.from('0001', 'hex'), 0)).toBe(true);
    expect(runs.has(Buffer.from('0003', 'hex'), 0)).toBe(false);
    expect(runs.add(Buffer.from('ffff', 'hex'), 0)).toBe(false);
    expect(runs.drain().toString('hex')).toBe('000000010002ffff');
  });
});
