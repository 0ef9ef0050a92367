/**
 * walkChunks on real stores (writePbsStore, plus what a live store collects:
 * a crashed insert's temp file, .bad and .using files, an uppercase chunk, a
 * chunk in the wrong prefix directory, a directory and a symlink at chunk
 * names, future and pre-1970 atimes, root-owned and immutable chunks, a prefix
 * directory only root can read, names that are not UTF-8, directories of
 * .chunks the server never opens): every record against lstat of the file it
 * stands for (names judged by a second, regex-based reading of the server's
 * rules), the same answer in this thread, in worker threads and through
 * io_uring, nothing written or touched, the audit unchanged; a prefix
 * directory that is a mount point (its stat then comes from .chunks' listing,
 * its listing from another thread); the walk as the GC user; abort and progress.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStore } from '../../src/audit/index.js';
import type { AuditReport } from '../../src/audit/report.js';
import { ISSUE } from '../../src/audit/classify.js';
import { ChunkguardError } from '../../src/errors.js';
import { STATX_ATTR_IMMUTABLE } from '../../src/fs/stat.js';
import { type ChunkView, type ChunkWalkOptions, type ChunkWalkProgress, type ChunkWalkTotals, type PrefixDirView, walkChunks } from '../../src/gc/chunk-walk.js';
import { NAME_KIND, NOT_A_PREFIX, parseChunkName, type ParsedName, prefixAt, prefixOfPath } from '../../src/store/chunk-names.js';
import { switchThreadTo } from '../../src/system/thread-credentials.js';
import { describeIfKernel, itIfKernel } from '../helpers/kernel.js';
import { chunkOf, writePbsStore, type PbsStoreRecord } from '../helpers/pbs-store.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, reachableTempDir, treeState } from '../helpers/store.js';

const GC_USER = { uid: BACKUP_UID, gid: BACKUP_GID, groups: [BACKUP_GID] };
const NAMESPACE = { identity: true, overflowUid: 65534, overflowGid: 65534 };
const RING = { depth: 8, kernelWorkers: 4 };
const FUTURE = 4_102_444_800; // 2100-01-01
const BEFORE_1970 = -31_536_000; // 1969-01-01
const PAST = 1_000_000_000;

/** The server's name rules read a second way (regular expressions over the raw bytes), for the expected side. */
const NAME_RULES: [RegExp, string][] = [
  [/^[0-9a-fA-F]{64}$/, 'chunk'],
  [/^[0-9a-fA-F]{64}\.[0-9]\.bad$/, 'bad'],
  [/^[0-9a-fA-F]{64}\.using$/, 'using'],
  [/^[0-9a-fA-F]{64}\.tmp_[A-Za-z0-9]{6}$/, 'temp'],
];
const kindOf = (name: string): string => NAME_RULES.find(([rule]) => rule.test(name))?.[1] ?? 'ignored';
const PREFIX_NAME = /^[0-9a-f]{4}$/;

function seconds(ns: bigint): number {
  const whole = ns / 1_000_000_000n;
  return Number(ns % 1_000_000_000n < 0n ? whole - 1n : whole);
}

/** A record as one line: everything the view says. */
function chunkLine(view: ChunkView): string {
  return [view.prefix, view.kind, view.digest.toString('hex'), view.lowercase, view.badIndex, view.atime, view.size, view.uid, view.gid, view.mode.toString(8)].join(' ');
}

function prefixLine(view: PrefixDirView): string {
  return [view.prefix, view.mode.toString(8), view.uid, view.gid, view.listable, view.errno ?? '-'].join(' ');
}

interface Walked {
  chunks: string[];
  prefixDirs: string[];
  totals: ChunkWalkTotals;
  progress: ChunkWalkProgress[];
  /** Per kind of record: its views' issues and attributes, by line. */
  issues: Map<string, { issues: number; attributes: number }>;
}

async function walk(store: string, options: Partial<ChunkWalkOptions> = {}): Promise<Walked> {
  const chunks: string[] = [];
  const prefixDirs: string[] = [];
  const progress: ChunkWalkProgress[] = [];
  const issues = new Map<string, { issues: number; attributes: number }>();
  const totals = await walkChunks(store, {
    expected: { uid: BACKUP_UID, gid: BACKUP_GID },
    gcUser: GC_USER,
    namespace: NAMESPACE,
    onChunk: (view) => {
      const line = chunkLine(view);
      chunks.push(line);
      issues.set(line, { issues: view.issues, attributes: view.attributes });
    },
    onPrefixDir: (view) => {
      const line = prefixLine(view);
      prefixDirs.push(line);
      issues.set(`prefix ${line}`, { issues: view.issues, attributes: view.attributes });
    },
    onProgress: (step) => progress.push({ ...step }),
    ...options,
  });
  return { chunks: chunks.sort(), prefixDirs: prefixDirs.sort(), totals, progress, issues };
}

/** A prelude of `count` steps that each keep this thread busy for `stepMs` (then call `onStep`); `steps()`: how many ran. */
function busyPrelude(count: number, stepMs: number, onStep: () => void = () => {}) {
  let steps = 0;
  const prelude = {
    step: () => {
      const until = performance.now() + stepMs;
      while (performance.now() < until);
      onStep();
      return ++steps === count;
    },
  };
  return { prelude, steps: () => steps };
}

/** What the walk should report, from readdir and lstat of every entry. */
function expectedFromDisk(store: string, unlistable: Map<string, string> = new Map()) {
  const chunksDir = join(store, '.chunks');
  const chunks: string[] = [];
  const prefixDirs: string[] = [];
  let ignored = 0;
  let otherDirs = 0;
  let otherEntries = 0;
  let symlinks = 0;
  for (const raw of readdirSync(chunksDir, { encoding: 'buffer' })) {
    const name = raw.toString('latin1');
    const path = join(chunksDir, name);
    const stat = lstatSync(raw.length === Buffer.byteLength(name) ? path : Buffer.concat([Buffer.from(`${chunksDir}/`), raw]), { bigint: true });
    if (!PREFIX_NAME.test(name)) {
      if (stat.isDirectory()) otherDirs++;
      else otherEntries++;
      continue;
    }
    if (stat.isSymbolicLink()) symlinks++;
    const errno = unlistable.get(name);
    const listable = stat.isDirectory() && !errno;
    prefixDirs.push([Number.parseInt(name, 16), stat.mode.toString(8), stat.uid, stat.gid, listable, errno ?? '-'].join(' '));
    if (!listable) continue;
    for (const entryRaw of readdirSync(path, { encoding: 'buffer' })) {
      const entry = entryRaw.toString('latin1');
      const kind = kindOf(entry);
      if (kind === 'ignored') {
        ignored++;
        continue;
      }
      const entryStat = lstatSync(join(path, entry), { bigint: true });
      if (entryStat.isSymbolicLink()) symlinks++;
      const hex = entry.slice(0, 64);
      const badIndex = kind === 'bad' ? Number(entry[65]) : -1;
      const size = entryStat.size;
      chunks.push(
        [Number.parseInt(name, 16), kind, hex.toLowerCase(), hex === hex.toLowerCase(), badIndex, seconds(entryStat.atimeNs), size, entryStat.uid, entryStat.gid, entryStat.mode.toString(8)].join(' '),
      );
    }
  }
  return { chunks: chunks.sort(), prefixDirs: prefixDirs.sort(), ignored, otherDirs, otherEntries, symlinks };
}

/** The report without what may differ from run to run. */
const answer = ({ durationMs, concurrency, ...rest }: AuditReport) => rest;

describe('the server sweep\'s name rules (parseChunkName)', () => {
  const parse = (name: Buffer | string): ParsedName & { digest: string } => {
    // At the end of its buffer, as the last name of a full listing may be.
    const bytes = Buffer.concat([Buffer.from(name), Buffer.from([0])]);
    // Two words in front, as a record's digest sits at its third word.
    const words = new Uint32Array(10);
    const parsed = parseChunkName(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, words, 2, { kind: NAME_KIND.IGNORED, lowercase: true, badIndex: -1 });
    return { ...parsed, digest: Buffer.from(words.buffer, 8, 32).toString('hex') };
  };
  const KIND_NAMES = ['ignored', 'chunk', 'bad', 'using', 'temp'];
  const hex64 = 'bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8';

  it('takes chunks, .bad and .using names in either case, tells temp files apart, ignores the rest', () => {
    expect(parse(hex64)).toEqual({ kind: NAME_KIND.CHUNK, lowercase: true, badIndex: -1, digest: hex64 });
    expect(parse(hex64.toUpperCase())).toEqual({ kind: NAME_KIND.CHUNK, lowercase: false, badIndex: -1, digest: hex64 });
    expect(parse(`${hex64}.7.bad`)).toMatchObject({ kind: NAME_KIND.BAD, badIndex: 7, digest: hex64 });
    expect(parse(`${hex64}.using`)).toMatchObject({ kind: NAME_KIND.USING, digest: hex64 });
    expect(parse(`${hex64}.tmp_aZ09xy`)).toMatchObject({ kind: NAME_KIND.TEMP, digest: hex64 });
    for (const name of [hex64.slice(1), `${hex64}0`, `${hex64}.x.bad`, `${hex64}.0.BAD`, `${hex64}.10.bad`, `${hex64}.usin`, `${hex64}.tmp_abc`, `${hex64}.tmp_abcde!`, `g${hex64.slice(1)}`, '', 'README']) {
      expect(parse(name).kind, name).toBe(NAME_KIND.IGNORED);
    }
  });

  it('numbers prefix directories by lowercase four-digit names only, as the server formats them', () => {
    const at = (name: string) => prefixAt(Buffer.from(`${name}\0`), 0);
    expect([at('0000'), at('ffff'), at('0a1b')]).toEqual([0, 0xffff, 0x0a1b]);
    expect([prefixOfPath('.chunks/ffff'), prefixOfPath('beef')]).toEqual([0xffff, 0xbeef]);
    for (const name of ['ABCD', 'abc', 'abcde', '00g0', '', '\u0101bcd', '\u0130000']) {
      expect(at(name), name).toBe(NOT_A_PREFIX);
      expect(prefixOfPath(`.chunks/${name}`), name).toBe(NOT_A_PREFIX);
    }
    expect(prefixOfPath(Buffer.from('.chunks/abcd'))).toBe(NOT_A_PREFIX);
  });

  it('agrees with the regex reading on names made of the pieces that matter', () => {
    const piece = fc.constantFrom('a', 'F', '0', '9', 'g', '.', '_', 'bad', 'using', 'tmp_', 'x', '\u00e9', '\xff');
    const name = fc.tuple(fc.boolean(), fc.array(piece, { maxLength: 6 })).map(([hexFirst, rest]) => (hexFirst ? hex64 : '') + rest.join(''));
    fc.assert(
      fc.property(name, (text) => {
        const bytes = Buffer.from(text, 'latin1');
        expect(KIND_NAMES[parse(bytes).kind]).toBe(kindOf(bytes.toString('latin1')));
      }),
      { seed: 20261206, numRuns: 2000 },
    );
  });
});

describeAsRoot('walkChunks over a store with everything a live store collects', () => {
  let base: string;
  let store: string;
  let record: PbsStoreRecord;
  const paths: Record<string, string> = {};
  const digestOf = (text: string) => chunkOf(Buffer.from(text)).hex;

  beforeAll(() => {
    base = reachableTempDir('chunkguard-gc-walk-');
    store = join(base, 'store');
    const data = (n: number) => Buffer.from(`chunk ${n} `.repeat(n + 1));
    record = writePbsStore(store, {
      snapshots: [
        { type: 'vm', id: '100', time: '2026-01-01T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data(1), data(2), data(3)] }] },
        { ns: ['a'], type: 'ct', id: '200', time: '2026-01-02T00:00:00Z', indexes: [{ name: 'root.pxar.didx', chunks: [data(3), data(4), data(5)] }] },
      ],
      unreferenced: [data(6), data(7), data(8)],
      owner: { uid: BACKUP_UID, gid: BACKUP_GID },
    });
    const chunks = join(store, '.chunks');
    const inPrefix = (hex: string, name = hex) => {
      const dir = join(chunks, hex.slice(0, 4));
      mkdirSync(dir, { recursive: true, mode: 0o750 });
      chownSync(dir, BACKUP_UID, BACKUP_GID);
      return join(dir, name);
    };
    const file = (path: string, bytes: number, owner = { uid: BACKUP_UID, gid: BACKUP_GID }) => {
      writeFileSync(path, Buffer.alloc(bytes, 7), { mode: 0o644 });
      chownSync(path, owner.uid, owner.gid);
      return path;
    };
    const [first, second, third] = [...record.chunks.keys()];
    paths.temp = file(inPrefix(first!, `${digestOf('crashed')}.tmp_abcdef`), 333);
    // The temp file sits in the first chunk's directory; its digest is another's (as an insert of another chunk would leave).
    paths.bad = file(inPrefix(digestOf('bad'), `${digestOf('bad')}.0.bad`), 1234);
    paths.bad9 = file(inPrefix(digestOf('bad'), `${digestOf('bad')}.9.bad`), 12);
    paths.using = file(inPrefix(digestOf('using'), `${digestOf('using')}.using`), 0);
    paths.upper = file(inPrefix(digestOf('upper'), digestOf('upper').toUpperCase()), 77);
    paths.wrongPrefix = file(join(chunks, first!.slice(0, 4), digestOf('elsewhere')), 55);
    paths.directory = inPrefix(digestOf('a directory'));
    mkdirSync(paths.directory);
    // Visited, it would be a problem for the GC user (the walk as uid 34 below): the sweep never opens it.
    mkdirSync(join(paths.directory, 'private'), { mode: 0o700 });
    paths.symlink = inPrefix(digestOf('a symlink'));
    symlinkSync('/etc/passwd', paths.symlink);
    paths.future = join(chunks, second!.slice(0, 4), second!);
    utimesSync(paths.future, FUTURE, PAST);
    paths.old = join(chunks, third!.slice(0, 4), third!);
    // A Date: node's utimes takes a negative number for "now".
    utimesSync(paths.old, new Date(BEFORE_1970 * 1000), PAST);
    paths.rootOwned = file(inPrefix(digestOf('root'), digestOf('root')), 159, { uid: 0, gid: 0 });
    paths.immutable = file(inPrefix(digestOf('immutable')), 42);
    execFileSync('chattr', ['+i', paths.immutable]);
    // A prefix directory only root can list, with a chunk in it.
    const closed = join(chunks, 'dddd');
    mkdirSync(closed, { mode: 0o700 });
    file(join(closed, `dddd${digestOf('closed').slice(4)}`), 10);
    paths.closed = closed;
    // Names the sweep ignores, in a prefix directory: not UTF-8, another tool's temp file, a short temp suffix, a README.
    const ignoredDir = join(chunks, first!.slice(0, 4));
    writeFileSync(Buffer.concat([Buffer.from(`${ignoredDir}/`), Buffer.from([0x66, 0xff, 0xfe, 0x2e])]), 'x');
    file(join(ignoredDir, `${first!}.chunkguard-tmp-1-n1-ab`), 5);
    file(join(ignoredDir, `${first!}.tmp_abc`), 5);
    file(join(ignoredDir, 'README'), 5);
    // In .chunks: directories the server never opens (an uppercase prefix, a name not UTF-8), a file, and entries at prefix names that are no directories.
    const upperDir = join(chunks, 'ABCD');
    mkdirSync(upperDir, { mode: 0o700 });
    file(join(upperDir, `abcd${digestOf('never').slice(4)}`), 9);
    mkdirSync(Buffer.concat([Buffer.from(`${chunks}/`), Buffer.from([0xc3, 0x28])]));
    file(join(chunks, 'notes.txt'), 3);
    file(join(chunks, 'fffe'), 3);
    symlinkSync('/tmp', join(chunks, 'fffd'));
  });

  afterAll(() => {
    if (paths.immutable) execFileSync('chattr', ['-i', paths.immutable]);
    rmSync(base, { recursive: true, force: true });
  });

  it('reports every record as lstat shows the file: kind, digest, case, .bad digit, atime to the second, size, owner, type', async () => {
    const expected = expectedFromDisk(store);
    const walked = await walk(store, { workers: 0 });
    expect(walked.chunks).toEqual(expected.chunks);
    expect(walked.prefixDirs).toEqual(expected.prefixDirs);
    const { totals } = walked;
    expect(totals).toMatchObject({ ignored: expected.ignored, otherDirs: expected.otherDirs, otherEntries: expected.otherEntries, symlinks: expected.symlinks, problems: [] });
    expect(totals.entries).toBe(expected.chunks.length + expected.ignored);
    // The counts the store was made with, independently of the disk reading above.
    expect(expected.ignored).toBe(4);
    expect(expected.otherDirs).toBe(2);
    expect(expected.otherEntries).toBe(1);
    expect(expected.symlinks).toBe(2);
    // writePbsStore's chunks, the additions: the temp file, two .bad, a .using, the uppercase one, the one in the wrong directory, a directory, a symlink, the root-owned, the immutable one, the closed directory's.
    expect(walked.chunks).toHaveLength(record.chunks.size + 11);
    const prefixNumbers = new Set(walked.prefixDirs.map((line) => Number(line.split(' ')[0])));
    expect(totals.prefixDirs).toBe(prefixNumbers.size - 2); // fffe and fffd are no directories
    for (const [hex, { bytes }] of record.chunks) {
      const line = walked.chunks.find((text) => text.includes(` chunk ${hex} true `));
      expect(line, hex).toBeDefined();
      expect(line!.split(' ')[6]).toBe(String(bytes));
    }
  });

  it('gives the exact whole-second atime the sweep compares, in the future and before 1970 too', async () => {
    const { chunks } = await walk(store, { workers: 0 });
    const atimeOf = (path: string) => chunks.find((line) => line.split(' ')[2] === path.split('/').pop()!.slice(0, 64).toLowerCase())!.split(' ')[5];
    expect(atimeOf(paths.future!)).toBe(String(FUTURE));
    expect(atimeOf(paths.old!)).toBe(String(BEFORE_1970));
  });

  it('carries the audit\'s classify bits and the attributes: root-owned, immutable, symlink, directory at a chunk name, a prefix directory the GC user cannot list', async () => {
    const walked = await walk(store, { workers: 0 });
    const of = (path: string) => {
      const digest = path.split('/').pop()!.slice(0, 64).toLowerCase();
      const line = walked.chunks.find((text) => text.split(' ')[2] === digest)!;
      return walked.issues.get(line)!;
    };
    expect(of(paths.rootOwned!).issues & ISSUE.FOREIGN).toBe(ISSUE.FOREIGN);
    expect(of(paths.immutable!)).toEqual({ issues: ISSUE.IMMUTABLE, attributes: STATX_ATTR_IMMUTABLE });
    expect(of(paths.symlink!).issues & ISSUE.SYMLINK_IN_LAYOUT).toBe(ISSUE.SYMLINK_IN_LAYOUT);
    expect(of(paths.directory!).issues & ISSUE.NON_REGULAR).toBe(ISSUE.NON_REGULAR);
    expect(of(paths.future!).issues).toBe(0);
    const closed = [...walked.issues].find(([line]) => line.startsWith(`prefix ${0xdddd} `))!;
    expect(closed[0]).toBe(`prefix ${0xdddd} 40700 0 0 true -`);
    expect(closed[1].issues & (ISSUE.FOREIGN | ISSUE.UNREADABLE)).toBe(ISSUE.FOREIGN | ISSUE.UNREADABLE);
  });

  it('gives the same answer in this thread and in worker threads, and writes or touches nothing', async () => {
    const before = treeState(store);
    const runs = [await walk(store, { workers: 0 }), await walk(store), await walk(store, { workers: 3 })];
    expect(runs[1]!.totals.concurrency.via).toBe('statx');
    const strip = ({ totals: { concurrency, ...totals }, chunks, prefixDirs }: Walked) => ({ totals, chunks, prefixDirs });
    for (const run of runs.slice(1)) expect(strip(run)).toEqual(strip(runs[0]!));
    expect(treeState(store)).toEqual(before);
  });

  itIfKernel('io_uring', 'gives the same answer through io_uring, in this thread and in worker threads', async () => {
    const reference = await walk(store, { workers: 0 });
    const strip = ({ totals: { concurrency, ...totals }, chunks, prefixDirs }: Walked) => ({ totals, chunks, prefixDirs });
    for (const workers of [0, 3]) {
      const run = await walk(store, { workers, ring: RING });
      expect(run.totals.concurrency.via).toBe('io_uring');
      expect(strip(run)).toEqual(strip(reference));
    }
  });

  it('reports progress up to every prefix directory, never more done than total', async () => {
    const { progress, totals } = await walk(store, { workers: 2 });
    const last = progress.at(-1)!;
    expect(last).toEqual({ done: totals.prefixDirs, total: totals.prefixDirs });
    for (const step of progress) expect(step.done).toBeLessThanOrEqual(step.total);
  });

  it('as the GC user: the closed prefix directory is unlistable with its errno, and nothing the sweep never opens is visited', async () => {
    const restore = switchThreadTo(GC_USER);
    let walked: Walked;
    try {
      walked = await walk(store, { workers: 0 });
    } finally {
      restore();
    }
    const expected = expectedFromDisk(store, new Map([['dddd', 'EACCES']]));
    expect(walked.prefixDirs).toEqual(expected.prefixDirs);
    expect(walked.chunks).toEqual(expected.chunks);
    // ABCD and the directory at a chunk name are closed too: only the prefix directory is a problem.
    expect(walked.totals.problems).toEqual([{ kind: 'unlistable', rel: '.chunks/dddd', detail: 'cannot list (EACCES)', errno: 'EACCES' }]);
  });

  it('leaves the audit\'s report as it was', async () => {
    const first = await auditStore(store, { owner: `${BACKUP_UID}:${BACKUP_GID}`, workers: 0 });
    await walk(store, { workers: 2 });
    const second = await auditStore(store, { owner: `${BACKUP_UID}:${BACKUP_GID}`, workers: 2 });
    expect(answer(second)).toEqual(answer(first));
    // The audit still visits what the walk leaves alone (ABCD, the directory at a chunk name): every entry below the store, as find counts them.
    const found = execFileSync('find', [store, '-printf', '.']).length;
    expect(first.scanned.entries).toBe(found);
  });

  it('runs the prelude to its end before the first record and prefix directory, in this thread and with workers, and loses no record held meanwhile; what a step throws ends the walk', async () => {
    const plain = { chunks: 0, prefixDirs: 0 };
    await walk(store, { workers: 0, onChunk: () => plain.chunks++, onPrefixDir: () => plain.prefixDirs++ });
    for (const workers of [0, 2]) {
      const events: string[] = [];
      const note = (event: string) => void (events.at(-1) !== event && events.push(event));
      const seen = { chunks: 0, prefixDirs: 0 };
      // 20 steps of 3 ms: the workers list and hand over records meanwhile.
      const busy = busyPrelude(20, 3, () => note('step'));
      const walked = await walk(store, {
        workers,
        prelude: busy.prelude,
        onChunk: () => void (note('chunk'), seen.chunks++),
        onPrefixDir: () => void (note('prefix'), seen.prefixDirs++),
      });
      expect(busy.steps()).toBe(20);
      expect(events[0]).toBe('step');
      expect(events.filter((event) => event === 'step')).toHaveLength(1);
      expect(seen).toEqual(plain);
      expect(walked.totals.entries).toBeGreaterThan(0);
      const failure = new Error('phase 1 failed');
      let failing = 0;
      const broken = {
        step: () => {
          if (++failing === 3) throw failure;
          return false;
        },
      };
      await expect(walk(store, { workers, prelude: broken })).rejects.toBe(failure);
      expect(failing).toBe(3);
    }
  });

  it('runs the prelude to its end at once when what waits for it outgrows its room, and loses no record', async () => {
    const plain = { chunks: 0, prefixDirs: 0 };
    await walk(store, { workers: 0, onChunk: () => plain.chunks++, onPrefixDir: () => plain.prefixDirs++ });
    /** A walk beside a prelude of 600 steps of 1 ms, far longer than this walk. */
    const run = async (holdBytes?: number) => {
      const busy = busyPrelude(600, 1);
      let stepsAtFirstChunk = -1;
      const seen = { chunks: 0, prefixDirs: 0 };
      let reports = 0;
      await walk(store, {
        workers: 2,
        prelude: busy.prelude,
        ...(holdBytes === undefined ? {} : { holdBytes }),
        // The walk reports its progress only once the prelude is done.
        onProgress: () => void reports++,
        onChunk: () => {
          if (stepsAtFirstChunk < 0) stepsAtFirstChunk = busy.steps();
          seen.chunks++;
        },
        onPrefixDir: () => void seen.prefixDirs++,
      });
      return { steps: busy.steps(), stepsAtFirstChunk, seen, reports };
    };
    // Room enough: the prelude goes on in slices until the walk is over, then runs to its end; one report.
    expect(await run()).toEqual({ steps: 600, stepsAtFirstChunk: 600, seen: plain, reports: 1 });
    // One byte: the first records held make it run to its end then and there; the walk goes on reporting.
    const tight = await run(1);
    expect(tight).toMatchObject({ steps: 600, stepsAtFirstChunk: 600, seen: plain });
    expect(tight.reports).toBeGreaterThan(1);
  });

  it('stops on an abort signal, before and during the walk', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(walk(store, { signal: controller.signal })).rejects.toMatchObject({ code: 'EABORT' });
    const during = new AbortController();
    const rejected = walk(store, { workers: 0, signal: during.signal, onChunk: () => during.abort() });
    await expect(rejected).rejects.toBeInstanceOf(ChunkguardError);
    await expect(rejected).rejects.toMatchObject({ code: 'EABORT' });
  });
});

describeIfKernel('tmpfs', 'walkChunks over a store with a prefix directory that is a mount point', () => {
  let base: string;
  let store: string;
  let mounted: string;

  beforeAll(() => {
    base = reachableTempDir('chunkguard-gc-walk-mount-');
    store = join(base, 'store');
    writePbsStore(store, {
      snapshots: [{ type: 'host', id: 'h', time: '2026-01-03T00:00:00Z', indexes: [{ name: 'a.didx', chunks: [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')] }] }],
      owner: { uid: BACKUP_UID, gid: BACKUP_GID },
    });
    mounted = join(store, '.chunks', 'eeee');
    mkdirSync(mounted);
    // Many more prefix directories: with a mount below the store their stats come from the listing
    // of .chunks, apart from the end of their own listings (the case the next test needs).
    for (let prefix = 0x1000; prefix < 0x1000 + 3000; prefix++) mkdirSync(join(store, '.chunks', prefix.toString(16)), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0750', 'chunkguard-test', mounted]);
    writeFileSync(join(mounted, `eeee${'0'.repeat(60)}`), 'x'.repeat(21));
    chmodSync(mounted, 0o750);
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [mounted]);
    rmSync(base, { recursive: true, force: true });
  });

  it('walks it as the sweep would (it opens whatever is mounted there), the same in every thread', async () => {
    const expected = expectedFromDisk(store);
    const strip = ({ totals: { concurrency, ...totals }, chunks, prefixDirs }: Walked) => ({ totals, chunks, prefixDirs });
    const runs = [await walk(store, { workers: 0 }), await walk(store, { workers: 3 })];
    expect(runs[0]!.chunks).toEqual(expected.chunks);
    expect(runs[0]!.prefixDirs).toEqual(expected.prefixDirs);
    expect(runs[0]!.chunks.filter((line) => line.startsWith(`${0xeeee} chunk `))).toHaveLength(1);
    expect(runs[0]!.totals.problems).toEqual([]);
    expect(strip(runs[1]!)).toEqual(strip(runs[0]!));
  });

  it('joins each prefix directory\'s stat, held while phase 1 ran, to the end of its listing, which came after phase 1 ended', async () => {
    const expected = expectedFromDisk(store);
    // Long enough that the listing of .chunks is held, short enough that later listings come after the end.
    for (const stepMs of [0.5, 1, 2]) {
      const walked = await walk(store, { workers: 2, prelude: busyPrelude(80, stepMs).prelude });
      expect(walked.prefixDirs).toEqual(expected.prefixDirs);
      expect(walked.chunks).toEqual(expected.chunks);
    }
  });
});
