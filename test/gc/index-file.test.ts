/**
 * readIndex on real files: the writer's stores read back digest for digest,
 * every check of the server's reader as its own problem, files that are not
 * indexes (FIFO, symlink, directory) refused without blocking or following,
 * an index changed during the read reported, and fast-check over random and
 * mutated index bytes. Runs as any user; as root, the unreadable file is read
 * by this thread switched to the GC user (uid 34).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dir } from '../../src/fs/dir.js';
import { type IndexProblemCode, type IndexResult, readIndex } from '../../src/gc/index-file.js';
import { switchThreadTo } from '../../src/system/thread-credentials.js';
import { type BrokenIndex, chunkOf, encodeIndex, type IndexContent, writePbsStore } from '../helpers/pbs-store.js';
import { isRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, reachableTempDir } from '../helpers/store.js';

const settings = { seed: Number(process.env.FUZZ_SEED ?? 20261206), numRuns: Number(process.env.FUZZ_RUNS ?? 400) };

let tmp: string;
beforeAll(() => {
  tmp = reachableTempDir('chunkguard-gc-index-');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** readIndex in `dir` with every digest copied out as hex. */
function read(dir: string, name: string, options: { checksum?: boolean } = {}): { result: IndexResult; digests: string[] } {
  const handle = Dir.open(dir);
  const digests: string[] = [];
  try {
    const result = readIndex(
      handle,
      name,
      (bytes, first, count, stride) => {
        for (let entry = 0, offset = first; entry < count; entry++, offset += stride) digests.push(bytes.toString('hex', offset, offset + 32));
      },
      options,
    );
    return { result, digests };
  } finally {
    handle.close();
  }
}

function codeOf(result: IndexResult): IndexProblemCode | 'ok' {
  return result.ok ? 'ok' : result.problem.code;
}

const data = (n: number, salt = '') => Array.from({ length: n }, (_, i) => Buffer.from(`chunk ${salt}${i}`));

let unique = 0;
function freshDir(): string {
  const dir = join(tmp, `case-${unique++}`);
  mkdirSync(dir);
  return dir;
}

describe('readIndex: valid indexes from the writer', () => {
  it('a store of fixed and dynamic indexes (repeats, namespaces) reads back every digest in order, with the header facts and a matching checksum', () => {
    const root = join(tmp, 'store');
    const shared = data(3, 'shared');
    const record = writePbsStore(root, {
      snapshots: [
        { type: 'vm', id: '100', time: '2026-12-01T10:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [...data(5, 'a'), shared[0]!, shared[0]!], chunkSize: 4096 }] },
        { ns: ['prod', 'db'], type: 'ct', id: '200', time: '2026-12-01T11:00:00Z', indexes: [{ name: 'root.pxar.didx', chunks: [...shared, ...data(4, 'b')] }, { name: 'catalog.pcat1.didx', chunks: shared }] },
      ],
      unreferenced: data(2, 'orphan'),
    });
    expect(record.indexes.map((index) => index.rel)).toEqual([
      'vm/100/2026-12-01T10:00:00Z/drive-scsi0.img.fidx',
      'ns/prod/ns/db/ct/200/2026-12-01T11:00:00Z/root.pxar.didx',
      'ns/prod/ns/db/ct/200/2026-12-01T11:00:00Z/catalog.pcat1.didx',
    ]);
    expect(record.chunks.size).toBe(5 + 3 + 4 + 2);
    for (const index of record.indexes) {
      const { result, digests } = read(join(index.path, '..'), index.path.split('/').pop()!, { checksum: true });
      expect(digests).toEqual(index.digests);
      expect(result).toMatchObject({ ok: true, kind: index.kind, digests: index.digests.length, bytes: index.bytes, ctime: 1_700_000_000n, checksumMatches: true });
    }
    const fixed = read(join(root, 'vm/100/2026-12-01T10:00:00Z'), 'drive-scsi0.img.fidx').result;
    expect(fixed).toMatchObject({ chunkSize: 4096, size: 7n * 4096n });
    expect(fixed).not.toHaveProperty('checksumMatches');
    // A dynamic index's size is its last end offset: the data it describes.
    const dynamic = read(join(root, 'ns/prod/ns/db/ct/200/2026-12-01T11:00:00Z'), 'catalog.pcat1.didx').result;
    expect(dynamic).toMatchObject({ size: BigInt(shared.reduce((sum, chunk) => sum + chunk.length, 0)) });
    expect(dynamic).not.toHaveProperty('chunkSize');
  });

  it('an index bigger than one read (100,000 entries, 4 MB) is read in pieces, every digest delivered once, in order', () => {
    const dir = freshDir();
    const digests = Array.from({ length: 100_000 }, (_, i) => chunkOf(Buffer.from(`big ${i}`)).digest);
    writeFileSync(join(dir, 'big.didx'), encodeIndex({ kind: 'dynamic', digests }));
    let count = 0;
    let inOrder = true;
    const handle = Dir.open(dir);
    try {
      let reads = 0;
      const result = readIndex(handle, 'big.didx', (bytes, first, entries, stride) => {
        reads++;
        for (let entry = 0, offset = first; entry < entries; entry++, offset += stride) {
          inOrder &&= bytes.subarray(offset, offset + 32).equals(digests[count]!);
          count++;
        }
      });
      expect(reads).toBeGreaterThan(1);
      expect(result).toMatchObject({ ok: true, digests: 100_000, bytes: 4096 + 100_000 * 40 });
    } finally {
      handle.close();
    }
    expect(count).toBe(100_000);
    expect(inOrder).toBe(true);
  });

  it('a changed digest keeps the file readable (GC does not verify) but its checksum no longer matches', () => {
    const dir = freshDir();
    const bytes = encodeIndex({ kind: 'fixed', digests: data(3).map((chunk) => chunkOf(chunk).digest), chunkSize: 65536 });
    bytes[4096 + 40]! ^= 1;
    writeFileSync(join(dir, 'x.fidx'), bytes);
    expect(read(dir, 'x.fidx', { checksum: true }).result).toMatchObject({ ok: true, digests: 3, checksumMatches: false });
  });
});

describe('readIndex: each check of the server reader is its own problem', () => {
  const cases: Array<[BrokenIndex, 'fixed' | 'dynamic', IndexProblemCode]> = [
    ['short', 'fixed', 'TOO_SHORT'],
    ['short', 'dynamic', 'TOO_SHORT'],
    ['wrong-magic', 'fixed', 'BAD_MAGIC'],
    ['wrong-magic', 'dynamic', 'BAD_MAGIC'],
    ['bad-chunk-size', 'fixed', 'BAD_CHUNK_SIZE'],
    ['size-mismatch', 'fixed', 'SIZE_MISMATCH'],
    ['size-mismatch', 'dynamic', 'SIZE_MISMATCH'],
    ['truncated', 'fixed', 'SIZE_MISMATCH'],
    ['truncated', 'dynamic', 'SIZE_MISMATCH'],
    ['empty', 'fixed', 'EMPTY'],
    ['empty', 'dynamic', 'EMPTY'],
  ];
  it.each(cases)('%s %s index: %s, no digest delivered, a reason to act on', (broken, kind, code) => {
    const root = freshDir();
    const record = writePbsStore(root, { snapshots: [{ type: 'host', id: 'h1', time: '2026-12-02T00:00:00Z', indexes: [{ name: kind === 'fixed' ? 'disk.img.fidx' : 'root.pxar.didx', chunks: data(4), broken }] }] });
    const index = record.indexes[0]!;
    const { result, digests } = read(join(index.path, '..'), index.path.split('/').pop()!);
    expect(codeOf(result)).toBe(code);
    expect(digests).toEqual([]);
    if (!result.ok) expect(result.problem.reason).toMatch(/stops at it/);
  });

  it('a chunk size of 0 is not a power of two (BAD_CHUNK_SIZE), as the server decides', () => {
    const dir = freshDir();
    const bytes = encodeIndex({ kind: 'fixed', digests: [chunkOf(Buffer.from('a')).digest], chunkSize: 4096 });
    bytes.writeBigUInt64LE(0n, 72);
    writeFileSync(join(dir, 'zero.fidx'), bytes);
    expect(codeOf(read(dir, 'zero.fidx').result)).toBe('BAD_CHUNK_SIZE');
  });

  it("a dynamic index's magic under a .fidx name is BAD_MAGIC and says the extension is wrong", () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'swapped.fidx'), encodeIndex({ kind: 'dynamic', digests: [chunkOf(Buffer.from('a')).digest] }));
    const { result } = read(dir, 'swapped.fidx');
    expect(result.ok ? undefined : result.problem).toMatchObject({ code: 'BAD_MAGIC', reason: expect.stringMatching(/extension is wrong/) });
  });

  it('a name that is not there is VANISHED (GC skips it)', () => {
    expect(codeOf(read(freshDir(), 'gone.didx').result)).toBe('VANISHED');
  });

  it('a file the GC user cannot read is READ_FAILED with EACCES', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'secret.fidx'), encodeIndex({ kind: 'fixed', digests: [chunkOf(Buffer.from('a')).digest] }));
    chmodSync(join(dir, 'secret.fidx'), 0o000);
    const handle = Dir.open(dir);
    try {
      // As root, this thread reads as the GC user (root's CAP_DAC_OVERRIDE would read anything).
      const back = isRoot ? switchThreadTo({ uid: BACKUP_UID, gid: BACKUP_GID, groups: [] }) : () => {};
      let result: IndexResult;
      try {
        result = readIndex(handle, 'secret.fidx', () => {});
      } finally {
        back();
      }
      expect(result.ok ? undefined : result.problem).toMatchObject({ code: 'READ_FAILED', errno: 'EACCES', reason: expect.stringMatching(/read access/) });
    } finally {
      handle.close();
    }
  });

  it('a name without .fidx or .didx is a caller bug: it throws before touching the file', () => {
    const handle = Dir.open(freshDir());
    try {
      expect(() => readIndex(handle, 'index.json.blob', () => {})).toThrow(/does not end in .fidx or .didx/);
      expect(() => readIndex(handle, '.fidx', () => {})).toThrow();
    } finally {
      handle.close();
    }
  });
});

describe('readIndex: what is not an index file is never opened as one', () => {
  it('a FIFO named x.fidx is NOT_REGULAR at once (no open that waits for a writer)', () => {
    const dir = freshDir();
    execFileSync('mkfifo', [join(dir, 'x.fidx')]);
    const started = Date.now();
    const { result, digests } = read(dir, 'x.fidx');
    expect(result.ok ? undefined : result.problem).toMatchObject({ code: 'NOT_REGULAR', reason: expect.stringMatching(/is a fifo/) });
    expect(digests).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a symlink named y.didx to a valid index is SYMLINK and its target is not read', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'real.didx'), encodeIndex({ kind: 'dynamic', digests: [chunkOf(Buffer.from('a')).digest] }));
    symlinkSync('real.didx', join(dir, 'y.didx'));
    const { result, digests } = read(dir, 'y.didx');
    expect(codeOf(result)).toBe('SYMLINK');
    expect(digests).toEqual([]);
  });

  it('a directory named z.fidx is NOT_REGULAR', () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'z.fidx'));
    expect(codeOf(read(dir, 'z.fidx').result)).toBe('NOT_REGULAR');
  });
});

describe('readIndex: an index changed while it is read', () => {
  const digests = (n: number) => Array.from({ length: n }, (_, i) => chunkOf(Buffer.from(`changing ${i}`)).digest);

  /** Read `name` in `dir`, running `change` at the first digest. */
  function readChanging(dir: string, name: string, change: () => void): IndexResult {
    const handle = Dir.open(dir);
    let first = true;
    try {
      return readIndex(handle, name, () => {
        if (first) change();
        first = false;
      });
    } finally {
      handle.close();
    }
  }

  it('truncated inside the callback, after its last read: CHANGED (the size moved)', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'a.fidx'), encodeIndex({ kind: 'fixed', digests: digests(10), chunkSize: 4096 }));
    expect(codeOf(readChanging(dir, 'a.fidx', () => truncateSync(join(dir, 'a.fidx'), 4096 + 32)))).toBe('CHANGED');
  });

  it('truncated inside the callback with reads to come (a 3.2 MB index): CHANGED, no crash', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'b.fidx'), encodeIndex({ kind: 'fixed', digests: digests(100_000), chunkSize: 4096 }));
    expect(codeOf(readChanging(dir, 'b.fidx', () => truncateSync(join(dir, 'b.fidx'), 4096 + 64)))).toBe('CHANGED');
  });

  it('rewritten in place with the same size: CHANGED (the modification time moved)', () => {
    const dir = freshDir();
    const bytes = encodeIndex({ kind: 'dynamic', digests: digests(10) });
    writeFileSync(join(dir, 'c.didx'), bytes);
    expect(codeOf(readChanging(dir, 'c.didx', () => writeFileSync(join(dir, 'c.didx'), bytes)))).toBe('CHANGED');
  });

  it('replaced by rename (how the server writes): the open file is read whole, ok', () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'd.didx'), encodeIndex({ kind: 'dynamic', digests: digests(10) }));
    const result = readChanging(dir, 'd.didx', () => {
      writeFileSync(join(dir, 'd.tmp_didx'), encodeIndex({ kind: 'dynamic', digests: digests(3) }));
      renameSync(join(dir, 'd.tmp_didx'), join(dir, 'd.didx'));
    });
    expect(result).toMatchObject({ ok: true, digests: 10 });
  });
});

describe('readIndex: property-based, over index bytes', () => {
  const KNOWN: ReadonlySet<string> = new Set(['ok', 'TOO_SHORT', 'BAD_MAGIC', 'BAD_CHUNK_SIZE', 'SIZE_MISMATCH', 'EMPTY', 'CHANGED']);
  const dir = () => join(tmp, 'fuzz');

  /** The outcomes the last property met: a property that only ever met one check would prove little. */
  let seen = new Set<string>();

  /** Write `bytes` as `name` and read it: never a throw, always ok or a known problem with a reason. */
  function readBytes(name: string, bytes: Uint8Array): { result: IndexResult; digests: string[] } {
    writeFileSync(join(dir(), name), bytes);
    const outcome = read(dir(), name);
    seen.add(codeOf(outcome.result));
    expect(KNOWN.has(codeOf(outcome.result))).toBe(true);
    if (!outcome.result.ok) expect(outcome.result.problem.reason.length).toBeGreaterThan(20);
    return outcome;
  }

  beforeAll(() => mkdirSync(dir()));
  beforeEach(() => {
    seen = new Set();
  });

  const digest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes));
  const content: fc.Arbitrary<IndexContent> = fc.oneof(
    fc.record({ kind: fc.constant('fixed' as const), digests: fc.array(digest, { minLength: 1, maxLength: 40 }), chunkSize: fc.integer({ min: 0, max: 30 }).map((shift) => 2 ** shift) }),
    fc.record({ kind: fc.constant('dynamic' as const), digests: fc.array(digest, { minLength: 1, maxLength: 40 }) }),
  );
  const nameOf = (kind: 'fixed' | 'dynamic') => (kind === 'fixed' ? 'p.fidx' : 'p.didx');

  it('valid indexes of random digests round-trip exactly', () => {
    fc.assert(
      fc.property(content, (index) => {
        const { result, digests } = readBytes(nameOf(index.kind), encodeIndex(index));
        expect(result.ok).toBe(true);
        expect(digests).toEqual(index.digests.map((bytes) => bytes.toString('hex')));
      }),
      settings,
    );
  });

  it('random bytes (header-sized and larger, with either magic) never throw and are ok or a known problem', () => {
    const magic = fc.constantFrom([47, 127, 65, 237, 145, 253, 15, 205], [28, 145, 78, 165, 25, 186, 179, 205], [0, 0, 0, 0, 0, 0, 0, 0]);
    fc.assert(
      fc.property(magic, fc.boolean(), fc.uint8Array({ maxLength: 8192 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (head, fixed, body, size, chunkSize) => {
        const bytes = Buffer.alloc(Math.max(body.length, 4096 + (body.length % 97)));
        bytes.set(body);
        bytes.set(head, 0);
        bytes.writeBigUInt64LE(size, 64);
        bytes.writeBigUInt64LE(chunkSize, 72);
        const { result, digests } = readBytes(fixed ? 'r.fidx' : 'r.didx', body.length % 3 === 0 ? body : bytes);
        if (result.ok) expect(digests.length).toBe(result.digests);
        else expect(digests).toEqual([]);
      }),
      settings,
    );
    for (const code of ['TOO_SHORT', 'BAD_MAGIC', 'BAD_CHUNK_SIZE', 'SIZE_MISMATCH']) expect(seen).toContain(code);
  });

  it('mutated valid indexes (bit flips, cuts, extensions, overwrites) never throw; what reads ok is consistent with its size', () => {
    const change = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(4200), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(6000) }),
      fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 100 }) }),
      fc.record({ kind: fc.constant('overwrite' as const), at: fc.integer({ min: 60, max: 80 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    );
    fc.assert(
      fc.property(content, fc.array(change, { minLength: 1, maxLength: 4 }), (index, changes) => {
        let bytes = encodeIndex(index);
        for (const step of changes) {
          if (step.kind === 'flip' && bytes.length > 0) bytes[Math.min(step.at, bytes.length - 1)]! ^= 1 << step.bit;
          if (step.kind === 'cut') bytes = bytes.subarray(0, step.at);
          if (step.kind === 'extend') bytes = Buffer.concat([bytes, step.bytes]);
          if (step.kind === 'overwrite' && bytes.length >= step.at + step.bytes.length) bytes.set(step.bytes, step.at);
        }
        const { result, digests } = readBytes(nameOf(index.kind), bytes);
        if (result.ok) {
          expect(digests.length).toBe(result.digests);
          expect(result.bytes).toBe(bytes.length);
          expect(4096 + result.digests * (index.kind === 'fixed' ? 32 : 40)).toBe(bytes.length);
        }
      }),
      settings,
    );
    for (const code of ['ok', 'TOO_SHORT', 'BAD_MAGIC', 'SIZE_MISMATCH']) expect(seen).toContain(code);
  });
});
