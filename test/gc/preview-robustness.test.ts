/**
 * previewGc on hostile and broken stores (issue 22, "Robustness"): malformed
 * and oversized indexes, a FIFO or a symlink at an index's name, an index
 * rewritten and a snapshot pruned while previews read them, names that are
 * not UTF-8, and fast-check over index bytes. Each case resolves with its
 * finding or its documented skip, never hangs, and writes nothing: the stores
 * live on a noatime tmpfs, so reading leaves every atime as it is and the
 * whole tree (owners, modes, sizes, atimes, mtimes, inodes) is compared before
 * and after. A symlink's target lies on a strictatime tmpfs, where any read
 * of it would move its atime. Runs as root over stores owned by uid 34.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { previewGcWith } from '../../src/gc/index.js';
import type { GcPreviewReport } from '../../src/gc/report.js';
import { type BrokenIndex, chunkOf, encodeIndex, type IndexContent, type PbsStoreRecord, type PbsStoreSpec, writePbsStore } from '../helpers/pbs-store.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot, isRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, treeState } from '../helpers/store.js';

const settings = { seed: Number(process.env.FUZZ_SEED ?? 20261207), numRuns: Number(process.env.FUZZ_RUNS ?? 60) };

const NOW = Math.floor(Date.now() / 1000);
const OLD = NOW - 3 * 86_400;
const GC_USER = { uid: BACKUP_UID, gid: BACKUP_GID };
const HEADER = 4096;
const data = (label: string, size = 100): Buffer => Buffer.alloc(size, label);
const hexOf = (label: string, size = 100): string => chunkOf(data(label, size)).hex;

let stores: Mounted;
let outside: Mounted;
let tmp: string;
let cases = 0;
const children: ChildProcess[] = [];

beforeAll(() => {
  // Mounting needs root; without it every case below is skipped (or, under CI, fails saying so).
  if (!isRoot) return;
  stores = mountFs('tmpfs', 512, ['noatime']);
  outside = mountFs('tmpfs', 16, ['strictatime']);
  tmp = stores.mountPoint;
});
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
  stores?.unmount();
  outside?.unmount();
});

/** The base store of preview.test.ts: three snapshots, three indexes, five referenced chunks, two unreferenced. */
const BASE_SNAPSHOTS: PbsStoreSpec['snapshots'] = [
  { type: 'vm', id: '100', time: '2026-12-01T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('b'), data('a')] }] },
  { type: 'vm', id: '100', time: '2026-12-02T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('c')] }] },
  { type: 'ct', id: '200', time: '2026-12-02T00:00:00Z', indexes: [{ name: 'root.pxar.didx', chunks: [data('d', 300), data('e', 50)] }] },
];
const BASE_REFERENCED = [hexOf('a'), hexOf('b'), hexOf('c'), hexOf('d', 300), hexOf('e', 50)];

function newStore(extra: PbsStoreSpec['snapshots'] = []): PbsStoreRecord {
  const root = join(tmp, `store-${++cases}`);
  const record = writePbsStore(root, { snapshots: [...BASE_SNAPSHOTS, ...extra], unreferenced: [data('x', 70), data('y', 90)], owner: GC_USER });
  // Every chunk last touched three days ago: referenced ones are then kept by the touch alone.
  for (const chunk of record.chunks.values()) utimesSync(join(root, chunk.rel), OLD, OLD);
  return record;
}

const bytesOf = (record: PbsStoreRecord, hexes: string[]): number => hexes.reduce((sum, hex) => sum + record.chunks.get(hex)!.bytes, 0);
const baseIndexBytes = (record: PbsStoreRecord): number => record.indexes.slice(0, BASE_SNAPSHOTS.length).reduce((sum, index) => sum + index.bytes, 0);
const codes = (report: GcPreviewReport): string[] => report.findings.map((finding) => finding.code);
/** Every chunk file is removed, pending or in use: none is lost or counted twice, whatever the indexes did. */
const swept = (report: GcPreviewReport): number => report.sweep.removed.chunks + report.sweep.pending.chunks + report.sweep.inUse.chunks;

/** Write `bytes` at `rel` in the store (its directories made), all given to the GC user. */
function plant(root: string, rel: string, bytes: Buffer | Uint8Array): string {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  for (let dir = dirname(path); dir.length > root.length; dir = dirname(dir)) chownSync(dir, BACKUP_UID, BACKUP_GID);
  writeFileSync(path, bytes, { mode: 0o644 });
  chownSync(path, BACKUP_UID, BACKUP_GID);
  return path;
}

function run(root: string): Promise<GcPreviewReport> {
  return previewGcWith(root, { skipAtimeCheck: true, workers: 0 }, { now: NOW, datastoreConfig: join(tmp, 'none.cfg'), procLocks: join(tmp, 'no-locks') });
}

/** The report as JSON and back: the lists survive whole. */
function throughJson(report: GcPreviewReport): void {
  const back = JSON.parse(JSON.stringify(report)) as GcPreviewReport;
  expect(back.indexes).toEqual(report.indexes);
  expect(back.snapshots).toEqual(report.snapshots);
}

/** The preview, and what every case holds: it resolves, the report is JSON, and not one byte, owner, mode or time in the store moved. */
async function preview(root: string): Promise<GcPreviewReport> {
  const before = treeState(root);
  const report = await run(root);
  expect(treeState(root)).toEqual(before);
  throughJson(report);
  return report;
}

/** The tree's state without the subtree at `rel` (its own entry included): what a second process churns. */
function stateBeside(root: string, rel: string): Record<string, string> {
  return Object.fromEntries(Object.entries(treeState(root)).filter(([path]) => path !== rel && !path.startsWith(`${rel}/`)));
}

/**
 * Start a helper process of test/helpers and wait until it runs; the function
 * returned creates `stop` and resolves, once the helper has ended, with the count it printed last.
 */
async function startHelper(script: string, args: string[], stop: string): Promise<() => Promise<number>> {
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'helpers', script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const ended = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await until(() => out.startsWith('started\n') || child.exitCode !== null, 10_000);
  return async () => {
    writeFileSync(stop, '');
    expect(await ended).toBe(0);
    return Number(out.split('\n').at(-1));
  };
}

/** Until `check` holds (polled every 10 ms), at most `ms`. */
async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting for a helper process');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeAsRoot('gc-preview robustness: malformed indexes stop the mark at their path; the rest is still counted', () => {
  const REASONS: Record<BrokenIndex, RegExp> = {
    short: /shorter than the 4096-byte header/,
    truncated: /truncated or corrupt/,
    'wrong-magic': /does not start with the (fixed|dynamic) index magic/,
    'bad-chunk-size': /chunk size of 3000, not a power of two/,
    'size-mismatch': /truncated or corrupt/,
    empty: /no entries after its header/,
  };
  const broken: Array<[BrokenIndex, 'fidx' | 'didx']> = [
    ['short', 'fidx'],
    ['short', 'didx'],
    ['truncated', 'fidx'],
    ['truncated', 'didx'],
    ['wrong-magic', 'fidx'],
    ['wrong-magic', 'didx'],
    ['bad-chunk-size', 'fidx'],
    ['size-mismatch', 'fidx'],
    ['size-mismatch', 'didx'],
    ['empty', 'fidx'],
    ['empty', 'didx'],
  ];

  it.each(broken)('a %s .%s index: GC_WOULD_ABORT (INDEX_MALFORMED, mark) names it; the three good snapshots are counted exactly', async (kind, extension) => {
    const record = newStore([{ type: 'vm', id: '101', time: '2026-12-03T00:00:00Z', indexes: [{ name: `bad.${extension}`, chunks: [data('q'), data('r')], broken: kind }] }]);
    const rel = `vm/101/2026-12-03T00:00:00Z/bad.${extension}`;
    const report = await preview(record.root);
    expect(report.ok).toBe(false);
    expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', phase: 'mark', path: join(record.root, rel), reason: expect.stringMatching(REASONS[kind]) });
    expect(codes(report)).toContain('GC_WOULD_ABORT');
    expect(report.indexes).toEqual({ files: 3, bytes: baseIndexBytes(record), outsideScheme: [], unreadable: [rel] });
    expect(report.snapshots.total).toBe(4);
    expect(report.referenced).toMatchObject({ chunks: 5, bytes: bytesOf(record, BASE_REFERENCED), missing: 0 });
    // Its chunks are referenced by nothing readable: they are removed with x and y once the index is fixed or gone.
    expect(report.sweep.removed).toEqual({ chunks: 4, bytes: bytesOf(record, [hexOf('q'), hexOf('r'), hexOf('x', 70), hexOf('y', 90)]) });
    expect(report.sweep.inUse.chunks).toBe(5);
  });

  it.each([
    ['1 TiB', 1n << 40n],
    ['2^64 - 1 bytes', (1n << 64n) - 1n],
  ])('a fixed index whose header claims %s but holds one entry: INDEX_MALFORMED with the claimed size, read no further', async (_, size) => {
    const record = newStore();
    const bytes = encodeIndex({ kind: 'fixed', digests: [chunkOf(data('x', 70)).digest], chunkSize: 4096 });
    bytes.writeBigUInt64LE(size, 64);
    const rel = 'vm/102/2026-12-04T00:00:00Z/huge.img.fidx';
    plant(record.root, rel, bytes);
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', phase: 'mark', path: join(record.root, rel), reason: expect.stringContaining(`describes ${size} bytes`) });
    expect(report.indexes).toMatchObject({ files: 3, unreadable: [rel] });
    expect(report.referenced.chunks).toBe(5);
    expect(report.sweep.removed.chunks).toBe(2);
  });

  it.each([0, 1000, 4097, 3 << 20])('a fixed index with a chunk size of %i (not a power of two): INDEX_MALFORMED', async (chunkSize) => {
    const record = newStore();
    const bytes = encodeIndex({ kind: 'fixed', digests: [chunkOf(data('x', 70)).digest], chunkSize: 4096 });
    bytes.writeBigUInt64LE(BigInt(chunkSize), 72);
    const rel = 'host/h1/2026-12-04T00:00:00Z/odd.img.fidx';
    plant(record.root, rel, bytes);
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', path: join(record.root, rel), reason: expect.stringContaining(`chunk size of ${chunkSize}, not a power of two`) });
    expect(report.referenced.chunks).toBe(5);
  });

  it('an index of 10 MB (250,000 entries, 100,000 distinct digests, none on disk) is read whole: every digest counted once, its snapshot broken', async () => {
    const record = newStore();
    const distinct = Array.from({ length: 100_000 }, (_, i) => chunkOf(Buffer.from(`big ${i}`)).digest);
    const digests = Array.from({ length: 250_000 }, (_, i) => distinct[(i * 7) % distinct.length]!);
    const bytes = encodeIndex({ kind: 'dynamic', digests });
    expect(bytes.length).toBe(HEADER + 250_000 * 40);
    const snapshot = 'ct/300/2026-12-04T00:00:00Z';
    plant(record.root, `${snapshot}/big.pxar.didx`, bytes);
    const report = await preview(record.root);
    expect(report.abort).toBeNull();
    expect(report.indexes).toEqual({ files: 4, bytes: baseIndexBytes(record) + bytes.length, outsideScheme: [], unreadable: [] });
    expect(report.referenced).toMatchObject({ chunks: 5 + 100_000, bytes: bytesOf(record, BASE_REFERENCED), missing: 100_000 });
    expect(report.snapshots).toEqual({ total: 4, broken: [snapshot] });
    expect(codes(report)).toContain('CHUNK_MISSING');
  });
});

describeAsRoot('gc-preview robustness: what is not an index file is never opened', () => {
  /** A writer blocked opening the FIFO: it goes on only when something opens the FIFO to read, so its wait proves nothing did (and nothing can hang on it). */
  async function waitingWriter(fifo: string): Promise<ChildProcess> {
    const child = spawn('sh', ['-c', ': > "$1"', 'sh', fifo], { stdio: 'ignore' });
    children.push(child);
    await until(() => blockedOnFifo(child), 5000);
    return child;
  }
  const blockedOnFifo = (child: ChildProcess): boolean => {
    try {
      return readFileSync(`/proc/${child.pid}/wchan`, 'utf8') === 'wait_for_partner';
    } catch {
      return false;
    }
  };

  it.each([
    ['in a snapshot directory', 'vm/100/2026-12-01T00:00:00Z/pipe.img.fidx'],
    ['outside the scheme', 'stray/pipe.fidx'],
  ])('a FIFO named *.fidx %s: GC_WOULD_ABORT (INDEX_BLOCKS) at once, the FIFO never opened', async (_, rel) => {
    const record = newStore();
    const fifo = join(record.root, rel);
    mkdirSync(dirname(fifo), { recursive: true });
    const made = spawn('mkfifo', ['-m', '644', fifo]);
    await new Promise((resolve) => made.once('exit', resolve));
    chownSync(fifo, BACKUP_UID, BACKUP_GID);
    const writer = await waitingWriter(fifo);
    const started = Date.now();
    const report = await preview(record.root);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(blockedOnFifo(writer)).toBe(true);
    writer.kill();
    expect(report.abort).toMatchObject({ code: 'INDEX_BLOCKS', phase: 'mark', path: fifo, reason: expect.stringMatching(/FIFO.*waits for a writer forever/) });
    // Not a regular file: the snapshot's listing does not keep it, the whole-store walk does.
    expect(report.indexes).toEqual({ files: 3, bytes: baseIndexBytes(record), outsideScheme: [rel], unreadable: [rel] });
    expect(report.referenced.chunks).toBe(5);
  }, 15_000);

  it("FIFOs at a prefix directory's name, a chunk's name, .gc-status and a namespace's ns: never opened; GC_WOULD_ABORT (SCHEME_STOP) at ns, the sweep unchanged", async () => {
    const record = newStore();
    const chunk = hexOf('z');
    const fifos = ['.chunks/fffe', `.chunks/${chunk.slice(0, 4)}/${chunk}`, '.gc-status', 'ns'].map((rel) => join(record.root, rel));
    mkdirSync(join(record.root, '.chunks', chunk.slice(0, 4)), { recursive: true });
    for (const fifo of fifos) {
      const made = spawn('mkfifo', ['-m', '644', fifo]);
      await new Promise((resolve) => made.once('exit', resolve));
    }
    const writers = await Promise.all(fifos.map(waitingWriter));
    const started = Date.now();
    const report = await preview(record.root);
    expect(Date.now() - started).toBeLessThan(5000);
    for (const writer of writers) expect(blockedOnFifo(writer)).toBe(true);
    for (const writer of writers) writer.kill();
    expect(report.abort).toMatchObject({ code: 'SCHEME_STOP', path: join(record.root, 'ns'), reason: expect.stringMatching(/is a fifo/) });
    expect(report.indexes).toMatchObject({ files: 3, unreadable: [] });
    expect(report.sweep).toMatchObject({ removed: { chunks: 2 }, inUse: { chunks: 5 } });
    expect(report.lastGc).toBeUndefined();
  }, 15_000);

  it("symlinks named *.didx, to a valid index outside the store and dangling: INDEX_NOT_READ, the target never read, its chunks not referenced", async () => {
    const record = newStore();
    const target = join(outside.mountPoint, `target-${cases}.didx`);
    const targetBytes = encodeIndex({ kind: 'dynamic', digests: [chunkOf(data('x', 70)).digest] });
    writeFileSync(target, targetBytes);
    // Older than its mtime would let relatime skip a read; strictatime moves it on any read.
    utimesSync(target, OLD, OLD);
    const linked = 'vm/100/2026-12-01T00:00:00Z/linked.pxar.didx';
    const dangling = 'stray/dangling.didx';
    mkdirSync(join(record.root, 'stray'));
    symlinkSync(target, join(record.root, linked));
    symlinkSync(join(outside.mountPoint, 'nothing-here.didx'), join(record.root, dangling));
    const atime = statSync(target, { bigint: true }).atimeNs;
    const report = await preview(record.root);
    expect(statSync(target, { bigint: true }).atimeNs).toBe(atime);
    expect(readFileSync(target)).toEqual(targetBytes);
    expect(report.abort).toBeNull();
    expect(report.ok).toBe(true);
    const finding = report.findings.find((entry) => entry.code === 'INDEX_NOT_READ')!;
    expect(finding.severity).toBe('warning');
    expect(finding.evidence?.indexes).toEqual([
      { rel: dangling, reason: expect.stringMatching(/is a symlink/) },
      { rel: linked, reason: expect.stringMatching(/is a symlink/) },
    ]);
    expect(report.indexes).toEqual({ files: 3, bytes: baseIndexBytes(record), outsideScheme: [dangling, linked], unreadable: [dangling, linked] });
    // x, which only the target references, is counted unreferenced: removed.
    expect(report.referenced.chunks).toBe(5);
    expect(report.sweep.removed).toEqual({ chunks: 2, bytes: bytesOf(record, [hexOf('x', 70), hexOf('y', 90)]) });
    // The mount does catch a read (the one of its bytes above): the atime check could fail.
    expect(statSync(target, { bigint: true }).atimeNs).not.toBe(atime);
  });
});

describeAsRoot('gc-preview robustness: a store changing while previews read it', () => {
  const PREVIEWS = 20;
  const versionA = Array.from({ length: 60_000 }, (_, i) => chunkOf(Buffer.from(`version a ${i}`)).digest);
  const versionB = Array.from({ length: 30_000 }, (_, i) => chunkOf(Buffer.from(`version b ${i}`)).digest);

  /** Two versions of one index, kept outside the store for the rewriter: A (60,000 digests), B (30,000, none shared). */
  function versions(): string[] {
    const dir = join(tmp, `versions-${cases}`);
    mkdirSync(dir);
    return [versionA, versionB].map((digests, i) => {
      const path = join(dir, `v${i}.didx`);
      writeFileSync(path, encodeIndex({ kind: 'dynamic', digests }));
      chownSync(path, BACKUP_UID, BACKUP_GID);
      return path;
    });
  }

  it.each(['rename', 'in-place'] as const)('an index rewritten (%s) in a loop while 20 previews read it: each resolves, counting exactly the entries it read, or reports the file', async (mode) => {
    const record = newStore();
    const snapshot = 'ct/400/2026-12-05T00:00:00Z';
    const rel = `${snapshot}/busy.pxar.didx`;
    const [a, b] = versions();
    plant(record.root, rel, readFileSync(a!));
    const staging = join(tmp, `staging-${cases}`);
    mkdirSync(staging);
    const before = stateBeside(record.root, snapshot);
    const stopFile = join(tmp, `stop-${cases}`);
    const stop = await startHelper('index-rewriter.mjs', [join(record.root, rel), staging, stopFile, mode, a!, b!], stopFile);
    const reports: GcPreviewReport[] = [];
    try {
      for (let i = 0; i < PREVIEWS; i++) reports.push(await run(record.root));
    } finally {
      const rounds = await stop();
      // It ran beside the previews: enough rewrites that they met some.
      expect(rounds).toBeGreaterThan(PREVIEWS);
    }
    expect(stateBeside(record.root, snapshot)).toEqual(before);
    for (const report of reports) {
      throughJson(report);
      expect(report.snapshots.total).toBe(4);
      expect(swept(report)).toBe(record.chunks.size);
      expect(report.referenced.missing).toBe(report.referenced.chunks - 5);
      if (report.indexes.files === 4) {
        // Exactly the entries of the file as read (the versions share no digest), nothing of a read that failed before it.
        const entries = (report.indexes.bytes - baseIndexBytes(record) - HEADER) / 40;
        expect(report.indexes.unreadable).toEqual([]);
        expect(report.abort).toBeNull();
        expect(report.referenced.chunks).toBe(5 + entries);
        // A rename never cuts the open file: one version, whole. Written in place, B's first entries alone are a valid index for a moment, as GC would read them too.
        if (mode === 'rename') expect([versionA.length, versionB.length]).toContain(entries);
        else if (entries !== versionA.length) expect(entries).toBeLessThanOrEqual(versionB.length);
      } else {
        // Cut under the reader (in place only): seen changing twice (INDEX_NOT_READ) or seen short (malformed, as GC would); none of its digests counted.
        expect(mode).toBe('in-place');
        expect(report.indexes.unreadable).toEqual([rel]);
        expect(report.referenced.chunks).toBe(5);
        if (report.abort) expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', path: join(record.root, rel) });
        else expect(codes(report)).toContain('INDEX_NOT_READ');
      }
    }
  }, 120_000);

  it('a snapshot pruned and made again in a loop while 20 previews walk the store: each resolves, the snapshot read whole or skipped', async () => {
    const record = newStore([{ type: 'vm', id: '500', time: '2026-12-06T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('p'), data('q'), data('r')] }] }]);
    const group = 'vm/500';
    const snapshot = join(record.root, group, '2026-12-06T00:00:00Z');
    const template = join(tmp, `template-${cases}`);
    const staging = join(tmp, `staging-${cases}`);
    mkdirSync(template);
    mkdirSync(staging);
    chownSync(template, BACKUP_UID, BACKUP_GID);
    for (const name of readdirSync(snapshot)) plant(template, name, readFileSync(join(snapshot, name)));
    const before = stateBeside(record.root, group);
    const stopFile = join(tmp, `stop-${cases}`);
    const stop = await startHelper('snapshot-pruner.mjs', [snapshot, template, staging, stopFile], stopFile);
    const reports: GcPreviewReport[] = [];
    try {
      for (let i = 0; i < PREVIEWS; i++) reports.push(await run(record.root));
    } finally {
      expect(await stop()).toBeGreaterThan(PREVIEWS);
    }
    expect(stateBeside(record.root, group)).toEqual(before);
    const index = record.indexes.find((found) => found.rel.startsWith(group))!;
    for (const report of reports) {
      throughJson(report);
      // Skipped as the server skips it (gone between listing and reading), or read whole: never half.
      expect(report.abort).toBeNull();
      expect(report.indexes.unreadable).toEqual([]);
      expect([3, 4]).toContain(report.snapshots.total);
      expect([3, 4]).toContain(report.indexes.files);
      expect(report.snapshots.total).toBeGreaterThanOrEqual(report.indexes.files);
      const read = report.indexes.files === 4;
      expect(report.indexes.bytes).toBe(baseIndexBytes(record) + (read ? index.bytes : 0));
      expect(report.referenced.chunks).toBe(read ? 8 : 5);
      expect(swept(report)).toBe(record.chunks.size);
    }
  }, 120_000);
});

describeAsRoot('gc-preview robustness: names that are not UTF-8', () => {
  it('a group id, an index name and a chunk-like name that are not UTF-8: read, listed with U+FFFD, the JSON whole', async () => {
    const record = newStore();
    const root = Buffer.from(record.root);
    const at = (...parts: Array<string | Buffer>): Buffer => Buffer.concat([root, ...parts.flatMap((part) => [Buffer.from('/'), Buffer.from(part)])]);
    const own = (path: Buffer) => chownSync(path, BACKUP_UID, BACKUP_GID);
    // vm/<ff fe>1/…: the server's group listing skips the id, its whole-store walk reads the index.
    const id = Buffer.from([0xff, 0xfe, 0x31]);
    mkdirSync(at('vm', id, '2026-12-07T00:00:00Z'), { recursive: true });
    own(at('vm', id));
    own(at('vm', id, '2026-12-07T00:00:00Z'));
    writeFileSync(at('vm', id, '2026-12-07T00:00:00Z', 'disk.img.fidx'), encodeIndex({ kind: 'fixed', digests: [chunkOf(data('x', 70)).digest] }));
    // stray/<e9>.didx references y and a chunk that is not there.
    mkdirSync(at('stray'));
    const name = Buffer.concat([Buffer.from([0xe9]), Buffer.from('.didx')]);
    writeFileSync(at('stray', name), encodeIndex({ kind: 'dynamic', digests: [chunkOf(data('y', 90)).digest, chunkOf(data('gone')).digest] }));
    // A name in a prefix directory that starts like a chunk's: the sweep ignores it.
    const prefix = hexOf('a').slice(0, 4);
    writeFileSync(at('.chunks', prefix, Buffer.concat([Buffer.from(hexOf('a').slice(0, 60)), Buffer.from([0xc3, 0x28, 0xa0, 0xa1])])), Buffer.alloc(33));
    const report = await preview(record.root);
    const group = 'vm/\ufffd\ufffd1/2026-12-07T00:00:00Z/disk.img.fidx';
    const stray = 'stray/\ufffd.didx';
    expect(report.indexes.outsideScheme).toEqual([stray, group]);
    expect(report.indexes.files).toBe(5);
    expect(report.snapshots.total).toBe(3);
    expect(report.referenced).toMatchObject({ chunks: 8, missing: 1 });
    expect(report.snapshots.broken).toEqual([stray]);
    expect(report.findings.find((entry) => entry.code === 'CHUNK_MISSING')?.message).toContain(stray);
    expect(report.findings.find((entry) => entry.code === 'INDEX_OUTSIDE_SCHEME')?.message).toContain(group);
    // Seven chunk files, all referenced now; the odd name is no chunk.
    expect(report.sweep).toMatchObject({ removed: { chunks: 0, bytes: 0 }, inUse: { chunks: 7 } });
    expect(report.abort).toBeNull();
    expect(JSON.stringify(report)).toContain(JSON.stringify(group));
  });
});

describeAsRoot('gc-preview robustness: property-based, over the bytes of an index in a snapshot', () => {
  const FUZZ_SNAPSHOT = 'host/fuzz/2026-12-08T00:00:00Z';
  let record: PbsStoreRecord;
  /** What the properties met: a property that only ever met one outcome would prove little. */
  const seen = new Set<string>();

  beforeAll(() => {
    record = newStore();
    mkdirSync(join(record.root, FUZZ_SNAPSHOT), { recursive: true });
    for (const rel of ['host', 'host/fuzz', FUZZ_SNAPSHOT]) chownSync(join(record.root, rel), BACKUP_UID, BACKUP_GID);
  });

  /** Place `bytes` as the snapshot's only index and preview: resolves, counts within what was written, nothing written. */
  async function previewWith(extension: 'fidx' | 'didx', bytes: Uint8Array): Promise<void> {
    rmSync(join(record.root, FUZZ_SNAPSHOT), { recursive: true });
    const rel = `${FUZZ_SNAPSHOT}/fuzz.${extension}`;
    plant(record.root, rel, bytes);
    const report = await preview(record.root);
    seen.add(report.abort?.code ?? 'none');
    // Four index files written: the three good ones always read, the fuzzed one read or listed unreadable.
    expect(report.indexes.files + report.indexes.unreadable.length).toBeLessThanOrEqual(4);
    expect(report.indexes.files).toBeGreaterThanOrEqual(3);
    expect(report.snapshots.total).toBe(4);
    expect(report.referenced.chunks).toBeGreaterThanOrEqual(5);
    expect(swept(report)).toBe(record.chunks.size);
    if (report.indexes.files === 4) {
      expect(report.abort).toBeNull();
      expect(report.indexes.bytes).toBe(baseIndexBytes(record) + bytes.length);
    } else {
      expect(report.indexes.unreadable).toEqual([rel]);
      expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', path: join(record.root, rel) });
    }
  }

  const digest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes));
  const content: fc.Arbitrary<IndexContent> = fc.oneof(
    fc.record({ kind: fc.constant('fixed' as const), digests: fc.array(digest, { minLength: 1, maxLength: 40 }), chunkSize: fc.integer({ min: 0, max: 30 }).map((shift) => 2 ** shift) }),
    fc.record({ kind: fc.constant('dynamic' as const), digests: fc.array(digest, { minLength: 1, maxLength: 40 }) }),
  );
  const extensionOf = (kind: IndexContent['kind']) => (kind === 'fixed' ? 'fidx' : 'didx');

  it('random bytes, with either magic or none, under either name: every preview resolves and writes nothing', async () => {
    const magic = fc.constantFrom([47, 127, 65, 237, 145, 253, 15, 205], [28, 145, 78, 165, 25, 186, 179, 205], [9, 9, 9, 9, 9, 9, 9, 9]);
    await fc.assert(
      fc.asyncProperty(magic, fc.boolean(), fc.uint8Array({ maxLength: 9000 }), async (head, fixed, body) => {
        const bytes = Buffer.from(body);
        if (bytes.length >= 8) bytes.set(head, 0);
        await previewWith(fixed ? 'fidx' : 'didx', bytes);
      }),
      settings,
    );
  }, 60_000);

  it('valid indexes mutated (bit flips, cuts, extensions, header fields and magic rewritten): every preview resolves and writes nothing', async () => {
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const change = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(5400), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(5400) }),
      fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 100 }) }),
      fc.record({ kind: fc.constant('field' as const), at: fc.constantFrom(24, 64, 72), value: u64 }),
      fc.record({ kind: fc.constant('magic' as const), fixed: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(content, fc.array(change, { minLength: 1, maxLength: 4 }), async (index, changes) => {
        let bytes = encodeIndex(index);
        for (const step of changes) {
          if (step.kind === 'flip' && bytes.length > 0) bytes[Math.min(step.at, bytes.length - 1)]! ^= 1 << step.bit;
          if (step.kind === 'cut') bytes = bytes.subarray(0, step.at);
          if (step.kind === 'extend') bytes = Buffer.concat([bytes, step.bytes]);
          if (step.kind === 'field' && bytes.length >= step.at + 8) bytes.writeBigUInt64LE(step.value, step.at);
          if (step.kind === 'magic' && bytes.length >= 8) bytes.set(encodeIndex({ kind: step.fixed ? 'fixed' : 'dynamic', digests: [] }).subarray(0, 8), 0);
        }
        await previewWith(extensionOf(index.kind), bytes);
      }),
      settings,
    );
    expect(seen).toContain('none');
    expect(seen).toContain('INDEX_MALFORMED');
  }, 60_000);
});
