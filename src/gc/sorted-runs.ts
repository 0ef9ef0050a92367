/**
 * Distinct fixed-size records kept as sorted runs: DigestSet's store for a
 * prefix that holds far more digests than SHA-256 ever puts in one (a
 * crafted index), where one sorted sequence would make every add shift
 * what the prefix holds.
 *
 * A new record goes into a small sorted run (a shift of at most
 * FRESH_RECORDS records); when that run is full it is frozen, and merged
 * with the frozen runs before it while they are no longer than it, as a
 * binary counter carries. So the runs after the first are FRESH_RECORDS
 * times distinct powers of two, there are at most log2(n / FRESH_RECORDS)
 * + 2 runs, a record is copied about that many times, and an add bisects
 * each: n adds cost O(n log² n) comparisons whatever the records are.
 */

/** Records the small run holds before it is frozen. */
const FRESH_RECORDS = 1024;

export class SortedRuns {
  /** Frozen runs, each sorted, no record in two; each shorter than the one before. */
  private readonly runs: Buffer[] = [];
  private readonly fresh: Buffer;
  private freshCount = 0;
  private count = 0;

  /** `first` (sorted, distinct records; kept, not copied) is the first frozen run. */
  constructor(
    private readonly recordBytes: number,
    first: Buffer,
  ) {
    this.fresh = Buffer.allocUnsafeSlow(FRESH_RECORDS * recordBytes);
    if (first.length > 0) this.runs.push(first);
    this.count = first.length / recordBytes;
  }

  /** Distinct records held. */
  get size(): number {
    return this.count;
  }

  bytesUsed(): number {
    return this.runs.reduce((sum, run) => sum + run.length, this.fresh.length);
  }

  has(key: Buffer, keyAt: number): boolean {
    return this.frozenHas(key, keyAt) || this.bisect(this.fresh, this.freshCount, key, keyAt) >= 0;
  }

  /** Adds the `recordBytes` bytes at `keyAt` of `key` (copied); returns whether they were new. */
  add(key: Buffer, keyAt: number): boolean {
    if (this.frozenHas(key, keyAt)) return false;
    const found = this.bisect(this.fresh, this.freshCount, key, keyAt);
    if (found >= 0) return false;
    const { fresh, recordBytes } = this;
    const at = ~found * recordBytes;
    fresh.copyWithin(at + recordBytes, at, this.freshCount * recordBytes);
    key.copy(fresh, at, keyAt, keyAt + recordBytes);
    this.count++;
    if (++this.freshCount === FRESH_RECORDS) this.freeze();
    return true;
  }

  /** Every record, sorted, in one Buffer; the set is left empty. */
  drain(): Buffer {
    let run: Buffer = Buffer.from(this.fresh.subarray(0, this.freshCount * this.recordBytes));
    for (let frozen = this.runs.pop(); frozen; frozen = this.runs.pop()) run = this.merge(frozen, run);
    this.freshCount = 0;
    this.count = 0;
    return run;
  }

  private frozenHas(key: Buffer, keyAt: number): boolean {
    for (const run of this.runs) if (this.bisect(run, run.length / this.recordBytes, key, keyAt) >= 0) return true;
    return false;
  }

  private freeze(): void {
    let run: Buffer = Buffer.from(this.fresh);
    this.freshCount = 0;
    while (this.runs.length > 0 && this.runs[this.runs.length - 1]!.length <= run.length) run = this.merge(this.runs.pop()!, run);
    this.runs.push(run);
  }

  /** The records of `a` and `b` (each sorted, none in both) in order, in a new Buffer. */
  private merge(a: Buffer, b: Buffer): Buffer {
    const { recordBytes } = this;
    const merged = Buffer.allocUnsafeSlow(a.length + b.length);
    let inA = 0;
    let inB = 0;
    let at = 0;
    while (inA < a.length && inB < b.length) {
      if (compareRecords(a, inA, b, inB, recordBytes) < 0) {
        copyRecord(a, inA, merged, at, recordBytes);
        inA += recordBytes;
      } else {
        copyRecord(b, inB, merged, at, recordBytes);
        inB += recordBytes;
      }
      at += recordBytes;
    }
    a.copy(merged, at, inA);
    b.copy(merged, at + a.length - inA, inB);
    return merged;
  }

  /**
   * The key's position among the first `count` records of `run`, or
   * ~(where it would be inserted). The records between two it was compared
   * with share with it what both of those share, so a comparison starts
   * after that: records made to share their first bytes cost no more.
   */
  private bisect(run: Buffer, count: number, key: Buffer, keyAt: number): number {
    const { recordBytes } = this;
    let low = 0;
    let high = count;
    let lowShared = 0;
    let highShared = 0;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const at = middle * recordBytes;
      let shared = Math.min(lowShared, highShared);
      while (shared < recordBytes && run[at + shared] === key[keyAt + shared]) shared++;
      if (shared === recordBytes) return middle;
      if (run[at + shared]! < key[keyAt + shared]!) {
        low = middle + 1;
        lowShared = shared;
      } else {
        high = middle;
        highShared = shared;
      }
    }
    return ~low;
  }
}

function compareRecords(a: Buffer, aAt: number, b: Buffer, bAt: number, bytes: number): number {
  for (let byte = 0; byte < bytes; byte++) {
    const order = a[aAt + byte]! - b[bAt + byte]!;
    if (order !== 0) return order;
  }
  return 0;
}

/** A loop costs less than Buffer's copy() for a record's few bytes. */
function copyRecord(from: Buffer, fromAt: number, to: Buffer, toAt: number, bytes: number): void {
  for (let byte = 0; byte < bytes; byte++) to[toAt + byte] = from[fromAt + byte]!;
}
