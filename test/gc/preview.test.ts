/**
 * previewGc on datastores written in the server's on-disk format: each case
 * checked for exact counts and bytes against the writer's own record, each
 * abort with its cause and path, each printed remedy run and shown to clear
 * it. Runs as root over stores owned by uid 34 (the GC user).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { previewGcWith, type GcPreviewHooks, type GcPreviewOptions } from '../../src/gc/index.js';
import type { GcPreviewReport } from '../../src/gc/report.js';
import { chunkOf, type PbsStoreRecord, type PbsStoreSpec, writePbsStore } from '../helpers/pbs-store.js';
import { pasteRemedy, runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, plantZeroChunk, reachableTempDir } from '../helpers/store.js';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;
const OLD = NOW - 3 * DAY;
const GC_USER = { uid: BACKUP_UID, gid: BACKUP_GID };
const data = (label: string, size = 100): Buffer => Buffer.alloc(size, label);

let tmp: string;
let cases = 0;
const immutable: string[] = [];
beforeAll(() => {
  tmp = reachableTempDir('chunkguard-gc-preview-');
});
afterEach(() => {
  for (const path of immutable.splice(0)) execFileSync('chattr', ['-i', path]);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Two groups, three snapshots, a fixed and a dynamic index, shared chunks, two unreferenced chunks. */
function spec(extra: Partial<PbsStoreSpec> = {}): PbsStoreSpec {
  return {
    snapshots: [
      { type: 'vm', id: '100', time: '2026-12-01T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('b'), data('a')] }] },
      { type: 'vm', id: '100', time: '2026-12-02T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('c')] }] },
      { type: 'ct', id: '200', time: '2026-12-02T00:00:00Z', indexes: [{ name: 'root.pxar.didx', chunks: [data('d', 300), data('e', 50)] }] },
    ],
    unreferenced: [data('x', 70), data('y', 90)],
    owner: GC_USER,
    ...extra,
  };
}

function newStore(extra: Partial<PbsStoreSpec> = {}): PbsStoreRecord {
  const root = join(tmp, `store-${++cases}`);
  const record = writePbsStore(root, spec(extra));
  // Every chunk last touched three days ago: referenced ones are then kept by the touch alone.
  for (const chunk of record.chunks.values()) utimesSync(join(root, chunk.rel), OLD, OLD);
  return record;
}

const preview = (root: string, options: GcPreviewOptions = {}, hooks: GcPreviewHooks = {}): Promise<GcPreviewReport> =>
  previewGcWith(root, { skipAtimeCheck: true, workers: 0, ...options }, { now: NOW, datastoreConfig: join(tmp, 'none.cfg'), procLocks: join(tmp, 'no-locks'), ...hooks });

const hexOf = (label: string, size = 100): string => chunkOf(data(label, size)).hex;
const bytesOf = (record: PbsStoreRecord, hexes: string[]): number => hexes.reduce((sum, hex) => sum + record.chunks.get(hex)!.bytes, 0);
const referencedHexes = (record: PbsStoreRecord): string[] => [...new Set(record.indexes.flatMap((index) => index.digests))];
const codes = (report: GcPreviewReport): string[] => report.findings.map((finding) => finding.code);
const chunkFile = (record: PbsStoreRecord, hex: string): string => join(record.root, '.chunks', hex.slice(0, 4), hex);

describeAsRoot('gc-preview: counts against the writer', () => {
  it('a clean store: every referenced chunk kept by the mark, the old unreferenced ones removed, exit 0', async () => {
    const record = newStore();
    const report = await preview(record.root);
    const referenced = referencedHexes(record);
    const unreferenced = [hexOf('x', 70), hexOf('y', 90)];
    expect(report.ok).toBe(true);
    expect(report.abort).toBeNull();
    expect(report.snapshots).toEqual({ total: 3, broken: [] });
    expect(report.indexes).toEqual({ files: 3, bytes: record.indexes.reduce((sum, index) => sum + index.bytes, 0), outsideScheme: [], unreadable: [] });
    expect(report.referenced).toEqual({ chunks: 5, bytes: bytesOf(record, referenced), missing: 0, unmarkable: 0, unmarkablePaths: [] });
    expect(report.sweep.removed).toEqual({ chunks: 2, bytes: bytesOf(record, unreferenced) });
    expect(report.sweep.inUse).toEqual({ chunks: 5, bytes: bytesOf(record, referenced) });
    expect(report.sweep.pending).toEqual({ chunks: 0, bytes: 0 });
    // Older than the cutoff: the touch alone keeps them, in all three snapshots.
    expect(report.atRisk).toEqual({ chunks: 5, bytes: bytesOf(record, referenced), snapshots: [...record.snapshots].sort() });
    expect(report.minAtime).toBe(NOW - 1445 * 60);
    expect(report.cutoffFrom).toBe('default');
    expect(report.gcUser.uid).toBe(BACKUP_UID);
    expect(report.store).toBe(record.root);
  });

  it('an unreferenced chunk touched within the cutoff is pending (kept, as the server counts it), a future atime in use; --cutoff-minutes moves the line', async () => {
    const record = newStore();
    utimesSync(chunkFile(record, hexOf('x', 70)), NOW - 3600, OLD);
    utimesSync(chunkFile(record, hexOf('y', 90)), NOW + 10 * DAY, OLD);
    const report = await preview(record.root);
    expect(report.sweep.removed).toEqual({ chunks: 0, bytes: 0 });
    expect(report.sweep.pending).toEqual({ chunks: 1, bytes: record.chunks.get(hexOf('x', 70))!.bytes });
    expect(report.sweep.inUse.chunks).toBe(6);
    const shorter = await preview(record.root, { cutoffMinutes: 30 });
    expect(shorter.cutoffFrom).toBe('option');
    expect(shorter.sweep.removed).toEqual({ chunks: 1, bytes: record.chunks.get(hexOf('x', 70))!.bytes });
  });

  it('the same answer with the walk in worker threads (they start while the indexes are read); an abort then stops both', async () => {
    const record = newStore({ omit: [hexOf('c')] });
    const strip = ({ concurrency, durationMs, ...rest }: GcPreviewReport) => rest;
    const inThread = await preview(record.root);
    const phases: string[] = [];
    const threaded = await preview(record.root, { workers: 2, onProgress: ({ phase }) => void (phases.at(-1) !== phase && phases.push(phase)) });
    expect(threaded.concurrency.workers).toBe(2);
    expect(strip(threaded)).toEqual(strip(inThread));
    expect(threaded.referenced.missing).toBe(1);
    expect(phases).toEqual(['atime check', 'indexes', 'chunks', 'snapshots']);
    const controller = new AbortController();
    const stopped = preview(record.root, { workers: 2, signal: controller.signal, onProgress: ({ phase }) => phase === 'indexes' && controller.abort() });
    await expect(stopped).rejects.toMatchObject({ code: 'EABORT' });
  });

  it('missing chunks: CHUNK_MISSING names exactly the snapshots that reference them', async () => {
    const record = newStore({ omit: [hexOf('c'), hexOf('e', 50)] });
    const report = await preview(record.root);
    expect(report.ok).toBe(false);
    expect(report.referenced.missing).toBe(2);
    expect(report.referenced.chunks).toBe(5);
    expect(report.snapshots.broken).toEqual(['ct/200/2026-12-02T00:00:00Z', 'vm/100/2026-12-02T00:00:00Z']);
    const finding = report.findings.find((entry) => entry.code === 'CHUNK_MISSING')!;
    expect(finding.severity).toBe('error');
    expect(finding.message).toContain('vm/100/2026-12-02T00:00:00Z');
    expect(report.abort).toBeNull();
  });

  it('a crashed insert, .bad files and an S3 marker: leftovers counted, .bad removed by age, the marker ignored', async () => {
    const record = newStore();
    const bad = hexOf('z');
    const dir = join(record.root, '.chunks', bad.slice(0, 4));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${bad}.tmp_Ab12Cd`), Buffer.alloc(1234));
    writeFileSync(join(dir, `${bad}.0.bad`), Buffer.alloc(40));
    writeFileSync(join(dir, `${bad}.1.bad`), Buffer.alloc(60));
    utimesSync(join(dir, `${bad}.0.bad`), OLD, OLD);
    writeFileSync(join(dir, `${bad}.using`), '');
    execFileSync('chown', ['-R', `${BACKUP_UID}:${BACKUP_GID}`, dir]);
    const report = await preview(record.root);
    expect(report.leftovers).toEqual({ files: 1, bytes: 1234 });
    expect(report.sweep.bad).toEqual({ chunks: 2, bytes: 100, removed: 1 });
    expect(report.sweep.removed.chunks).toBe(2);
    expect(codes(report)).toContain('TEMP_LEFTOVERS');
    expect(report.ok).toBe(true);
  });

  it('an index outside the scheme: read, its chunks referenced, a warning that fails only --fail-on warning', async () => {
    const record = newStore();
    mkdirSync(join(record.root, 'stray'));
    const { encodeIndex } = await import('../helpers/pbs-store.js');
    writeFileSync(join(record.root, 'stray', 'lost.didx'), encodeIndex({ kind: 'dynamic', digests: [chunkOf(data('x', 70)).digest] }));
    const report = await preview(record.root);
    expect(report.indexes.outsideScheme).toEqual(['stray/lost.didx']);
    expect(report.referenced.chunks).toBe(6);
    expect(report.sweep.removed).toEqual({ chunks: 1, bytes: record.chunks.get(hexOf('y', 90))!.bytes });
    expect(report.findings.find((entry) => entry.code === 'INDEX_OUTSIDE_SCHEME')?.severity).toBe('warning');
    expect(report.ok).toBe(true);
    expect((await preview(record.root, { failOn: 'warning' })).ok).toBe(false);
  });
});

describeAsRoot('gc-preview: a store whose directory name starts with "."', () => {
  it('the server reads only the scheme there: an index outside it is never read, and its chunks are removed', async () => {
    const root = join(tmp, `.hidden-store-${++cases}`);
    const record = writePbsStore(root, spec({ outside: [{ dir: 'stray', name: 'lost.didx', chunks: [data('x', 70)] }] }));
    for (const chunk of record.chunks.values()) utimesSync(join(root, chunk.rel), OLD, OLD);
    const report = await preview(root);
    expect(report.indexes.outsideScheme).toEqual([]);
    expect(report.referenced.chunks).toBe(5);
    expect(report.sweep.removed).toEqual({ chunks: 2, bytes: bytesOf(record, [hexOf('x', 70), hexOf('y', 90)]) });
    const finding = report.findings.find((entry) => entry.code === 'INDEX_OUTSIDE_SCHEME')!;
    expect(finding.severity).toBe('warning');
    expect(finding.message).toContain('stray/lost.didx');
    expect(finding.message).toContain('never read');
  });
});

describeAsRoot('gc-preview: what stops the server, with the remedy run', () => {
  it('a root-owned referenced chunk: GC_WOULD_ABORT in the mark, every one listed; the remedy clears it', async () => {
    const record = newStore();
    const b = hexOf('b');
    const d = hexOf('d', 300);
    chownSync(chunkFile(record, b), 0, 0);
    chownSync(chunkFile(record, d), 0, 0);
    const report = await preview(record.root);
    expect(report.ok).toBe(false);
    expect(report.abort).toMatchObject({ code: 'CHUNK_UNMARKABLE', phase: 'mark' });
    expect(report.referenced.unmarkable).toBe(2);
    expect(report.referenced.unmarkablePaths).toEqual([`.chunks/${b.slice(0, 4)}/${b}`, `.chunks/${d.slice(0, 4)}/${d}`].sort());
    // The sweep once nothing blocks it: unchanged.
    expect(report.sweep.removed.chunks).toBe(2);
    const finding = report.findings.find((entry) => entry.code === 'GC_WOULD_ABORT')!;
    const pasted = pasteRemedy(finding.remedy!);
    expect(pasted.code, pasted.stderr).toBe(0);
    const after = await preview(record.root);
    expect(after.abort).toBeNull();
    expect(after.ok).toBe(true);
  });

  it('a root-owned zero chunk (seed 002), even without the atime check: the safety check stops GC before the mark; the remedy clears it', async () => {
    const record = newStore();
    mkdirSync(join(record.root, '.chunks/bb9f'), { mode: 0o750 });
    chownSync(join(record.root, '.chunks/bb9f'), BACKUP_UID, BACKUP_GID);
    const zero = await plantZeroChunk(record.root, { uid: 0, gid: 0 });
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'ATIME_CHECK', phase: 'atime check', path: zero });
    const checked = await preview(record.root, { skipAtimeCheck: false });
    expect(checked.abort).toMatchObject({ code: 'ATIME_CHECK', phase: 'atime check' });
    expect(codes(checked)).toContain('TOUCH_EPERM_WRONG_OWNER');
    const pasted = pasteRemedy(report.abort!.remedy!);
    expect(pasted.code, pasted.stderr).toBe(0);
    expect((await preview(record.root)).abort).toBeNull();
  });

  it('an immutable referenced chunk: GC_WOULD_ABORT; the remedy clears it', async () => {
    const record = newStore();
    const path = chunkFile(record, hexOf('c'));
    execFileSync('chattr', ['+i', path]);
    immutable.push(path);
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'CHUNK_UNMARKABLE', path });
    expect(report.referenced.unmarkable).toBe(1);
    const pasted = pasteRemedy(report.abort!.remedy!);
    expect(pasted.code, pasted.stderr).toBe(0);
    immutable.length = 0;
    expect((await preview(record.root)).ok).toBe(true);
  });

  it('a corrupt index stops the mark (INDEX_MALFORMED); the rest is still counted', async () => {
    const record = newStore();
    const broken = writePbsStore(join(tmp, `store-${++cases}`), {
      ...spec(),
      snapshots: [...spec().snapshots, { type: 'vm', id: '101', time: '2026-12-03T00:00:00Z', indexes: [{ name: 'bad.fidx', chunks: [data('q')], broken: 'wrong-magic' }] }],
    });
    const report = await preview(broken.root);
    expect(report.abort).toMatchObject({ code: 'INDEX_MALFORMED', phase: 'mark', path: join(broken.root, 'vm/101/2026-12-03T00:00:00Z/bad.fidx') });
    expect(report.indexes.unreadable).toEqual(['vm/101/2026-12-03T00:00:00Z/bad.fidx']);
    expect(report.indexes.files).toBe(3);
    expect(report.snapshots.total).toBe(4);
    // Its chunk is referenced by nothing readable: unreferenced.
    expect(report.referenced.chunks).toBe(5);
  });

  it('a snapshot directory the GC user cannot read: WALK_DENIED, root read it, the remedy clears it', async () => {
    const record = newStore();
    const snapshot = join(record.root, 'vm/100/2026-12-01T00:00:00Z');
    chownSync(snapshot, 0, 0);
    chmodSync(snapshot, 0o700);
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'WALK_DENIED', path: snapshot });
    expect(report.readBeyondGcUser).toEqual(['vm/100/2026-12-01T00:00:00Z']);
    // Read anyway: its chunks still count.
    expect(report.referenced.chunks).toBe(5);
    const pasted = pasteRemedy(report.abort!.remedy!);
    expect(pasted.code, pasted.stderr).toBe(0);
    expect((await preview(record.root)).abort).toBeNull();
  });

  it('a prefix directory the GC user cannot write, holding a chunk to remove: CHUNK_NOT_REMOVABLE in the sweep', async () => {
    const record = newStore();
    const x = hexOf('x', 70);
    const dir = join(record.root, '.chunks', x.slice(0, 4));
    chownSync(dir, 0, 0);
    chmodSync(dir, 0o755);
    const report = await preview(record.root);
    expect(report.abort).toMatchObject({ code: 'CHUNK_NOT_REMOVABLE', phase: 'sweep', path: join(dir, x) });
    const pasted = pasteRemedy(report.abort!.remedy!);
    expect(pasted.code, pasted.stderr).toBe(0);
    expect((await preview(record.root)).abort).toBeNull();
  });

  it('datastores nested in datastore.cfg: GC refuses to start', async () => {
    const record = newStore();
    const config = join(tmp, `nested-${cases}.cfg`);
    mkdirSync(join(record.root, 'inner'));
    writeFileSync(config, `datastore: outer\n\tpath ${record.root}\n\ndatastore: inner\n\tpath ${record.root}/inner\n`);
    const report = await preview(record.root, {}, { datastoreConfig: config });
    expect(report.datastore).toBe('outer');
    expect(report.abort).toMatchObject({ code: 'NESTED_DATASTORE', phase: 'start' });
  });
});

describeAsRoot('gc-preview: the server around the store', () => {
  it('datastore.cfg tuning sets the cutoff; a gc-schedule overdue since .gc-status is a warning', async () => {
    const record = newStore();
    const config = join(tmp, `tuned-${cases}.cfg`);
    writeFileSync(config, `datastore: tuned\n\tpath ${record.root}\n\tgc-schedule daily\n\ttuning gc-atime-cutoff=60\n`);
    writeFileSync(join(record.root, '.gc-status'), JSON.stringify({ upid: `UPID:pbs:00000001:00000002:00000003:${(OLD - 600).toString(16).toUpperCase()}:garbage_collection:tuned:root@pam:`, 'removed-chunks': 7, 'removed-bytes': 700, 'pending-chunks': 0, 'pending-bytes': 0, 'disk-chunks': 5, 'disk-bytes': 500 }));
    utimesSync(join(record.root, '.gc-status'), OLD, OLD);
    const report = await preview(record.root, {}, { datastoreConfig: config });
    expect(report.cutoffMinutes).toBe(60);
    expect(report.cutoffFrom).toBe('datastore.cfg');
    expect(report.lastGc).toMatchObject({ completed: OLD, started: OLD - 600, removed: { chunks: 7, bytes: 700 } });
    expect(report.findings.find((entry) => entry.code === 'GC_OVERDUE')?.severity).toBe('warning');
    expect(report.ok).toBe(true);
  });

  it('a backup holding the shared lock since before the cutoff: min_atime moves before it, chunks in between are pending', async () => {
    const record = newStore();
    const config = join(tmp, `writer-${cases}.cfg`);
    writeFileSync(config, `datastore: busy\n\tpath ${record.root}\n`);
    const start = NOW - 2 * DAY;
    const tasks = join(tmp, `active-${cases}`);
    writeFileSync(tasks, `UPID:pbs:0000AAAA:00000001:00000002:${start.toString(16).toUpperCase()}:backup:busy\\x3avm-100:root@pam:\n`);
    // x: older than the writer's start minus 300 s (removed); y: between that and the writer's start (pending).
    utimesSync(chunkFile(record, hexOf('x', 70)), start - 3600, OLD);
    utimesSync(chunkFile(record, hexOf('y', 90)), start - 60, OLD);
    const holder = spawn('python3', ['-c', 'import fcntl,sys,time; f=open(sys.argv[1]); fcntl.lockf(f, fcntl.LOCK_SH); print("locked", flush=True); time.sleep(60)', join(record.root, '.lock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve) => holder.stdout!.once('data', resolve));
      const report = await preview(record.root, {}, { datastoreConfig: config, procLocks: '/proc/locks', activeTasks: tasks });
      expect(report.writers).toMatchObject({ running: true, pids: [holder.pid], oldest: { start }, startUnknown: false });
      expect(report.oldestWriter).toBe(start);
      expect(report.minAtime).toBe(start - 300);
      expect(report.sweep.removed).toEqual({ chunks: 1, bytes: record.chunks.get(hexOf('x', 70))!.bytes });
      expect(report.sweep.pending).toEqual({ chunks: 1, bytes: record.chunks.get(hexOf('y', 90))!.bytes });
      const unknown = await preview(record.root, {}, { datastoreConfig: config, procLocks: '/proc/locks', activeTasks: join(tmp, 'no-tasks') });
      expect(unknown.writers.startUnknown).toBe(true);
      expect(unknown.findings.find((entry) => entry.code === 'BACKUP_RUNNING')?.message).toContain('upper bound');
    } finally {
      holder.kill();
    }
  });
});

describeAsRoot('gc-preview: the library', () => {
  it('reports progress phase by phase, rejects bad options with EBADINPUT, and an abort with EABORT', async () => {
    const record = newStore();
    const phases: string[] = [];
    await preview(record.root, { onProgress: (progress) => phases.push(progress.phase) });
    expect([...new Set(phases)]).toEqual(['atime check', 'indexes', 'chunks', 'snapshots']);
    await expect(preview(record.root, { cutoffMinutes: 0 })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'cutoffMinutes' });
    await expect(preview(record.root, { workers: -1 })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'workers' });
    await expect(preview(record.root, { failOn: 'info' as never })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'failOn' });
    await expect(preview(join(record.root, 'vm'))).rejects.toMatchObject({ code: 'EBADINPUT', message: expect.stringContaining('no .chunks directory') });
    const controller = new AbortController();
    const aborted = preview(record.root, { onProgress: (progress) => progress.phase === 'indexes' && controller.abort(), signal: controller.signal });
    await expect(aborted).rejects.toMatchObject({ code: 'EABORT' });
    await expect(preview(record.root, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'EABORT' });
  });
});

describeAsRoot('gc-preview: the command line', () => {
  it('exit 0 on a clean store, 1 with an abort, 2 for bad input; Prometheus passes promtool', () => {
    const record = newStore();
    const clean = runJson(['gc-preview', record.root, '--skip-atime-check']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.report).toMatchObject({ ok: true, command: 'gc-preview', abort: null });
    const human = runCli(['gc-preview', record.root, '--skip-atime-check']);
    expect(human.stdout.split('\n')[0]).toBe(`SAFE: the next GC completes: it removes 2 chunks (${clean.report.sweep.removed.bytes} B) and keeps 5 referenced chunks; nothing referenced is lost`);
    expect(human.stdout).toContain('atime check skipped');
    chownSync(chunkFile(record, hexOf('a')), 0, 0);
    const aborted = runCli(['gc-preview', record.root, '--skip-atime-check']);
    expect(aborted.code).toBe(1);
    expect(aborted.stdout).toContain('GC_WOULD_ABORT');
    expect(aborted.stdout.split('\n')[0]).toMatch(/^WOULD ABORT: the next GC stops \(CHUNK_UNMARKABLE\) at \//);
    expect(aborted.stdout).toContain('fix:  chunkguard fix ');
    const prometheus = runCli(['gc-preview', record.root, '--skip-atime-check', '--format', 'prometheus']);
    expect(prometheus.code).toBe(1);
    expect(prometheus.stdout).toContain('chunkguard_gc_preview_would_abort{');
    const promtool = execFileSync('promtool', ['check', 'metrics'], { input: prometheus.stdout, encoding: 'utf8' });
    expect(promtool).toBe('');
    const missing = runCli(['gc-preview', join(tmp, 'nowhere'), '--skip-atime-check']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const notStore = runCli(['gc-preview', tmp, '--skip-atime-check']);
    expect(notStore.code).toBe(2);
    expect(notStore.stderr).toContain('no .chunks directory');
  });

  it('with the atime check (tmpfs-like local fs): the zero chunk is inserted as the GC user, and the report says so', () => {
    const record = newStore();
    const result = runJson(['gc-preview', record.root]);
    expect(result.code, result.stdout).toBe(0);
    expect(result.report.atimeCheck.ok).toBe(true);
    expect(result.report.atimeCheck.touchIgnored).toBe(false);
    const zero = join(record.root, '.chunks/bb9f/bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8');
    expect(statSync(zero).uid).toBe(BACKUP_UID);
  });
});
