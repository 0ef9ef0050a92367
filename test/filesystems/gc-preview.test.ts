/**
 * The GC preview on real filesystems (issue 22's acceptance): one datastore,
 * written in the server's format, on bindfs, which drops an atime-only touch,
 * and on tmpfs, which keeps it. `chunkguard gc-preview <store>` as root, the
 * atime check on (it touches as the GC user, uid 34, inferred from the store):
 * on bindfs every snapshot that references a chunk older than the cutoff would
 * lose data, and no other; on tmpfs the same store is safe.
 */
import { statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runJson } from '../helpers/cli.js';
import { describeIfKernel, type KernelFeature } from '../helpers/kernel.js';
import { chunkOf, type PbsStoreRecord, writePbsStore } from '../helpers/pbs-store.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { mountReal, type RealFs, type RealFsName } from '../helpers/realfs.js';
import { BACKUP_GID, BACKUP_UID } from '../helpers/store.js';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;
/** Last touched three days ago: older than the default cutoff (1445 min), kept only by the mark's touch. */
const OLD = NOW - 3 * DAY;
/** Touched an hour ago, as by the backup that wrote them: kept whatever the touch does. */
const RECENT = NOW - 3600;
const data = (label: string, size = 100): Buffer => Buffer.alloc(size, label);
/** A snapshot's name: its backup time, `YYYY-MM-DDTHH:MM:SSZ`. */
const backupTime = (seconds: number): string => new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

/** The chunks the newest backup wrote an hour ago. */
const FRESH = [data('r1'), data('r2', 60)];
const freshHexes = new Set(FRESH.map((chunk) => chunkOf(chunk).hex));

/**
 * Two namespaces, six snapshots, chunks shared within a group. The newest backup
 * (lab/vm/300) wrote its two chunks an hour ago; lab/host/web, an old snapshot,
 * references only one of them, so it is not at risk either. Every other chunk,
 * and one no index references, was last touched three days ago.
 */
function writeStore(root: string): PbsStoreRecord {
  const record = writePbsStore(root, {
    snapshots: [
      { ns: ['prod'], type: 'vm', id: '100', time: backupTime(OLD - 2 * DAY), indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('b'), data('a')] }] },
      { ns: ['prod'], type: 'vm', id: '100', time: backupTime(OLD - DAY), indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('a'), data('c')] }] },
      {
        ns: ['prod'],
        type: 'ct',
        id: '200',
        time: backupTime(OLD - DAY),
        indexes: [{ name: 'root.pxar.didx', chunks: [data('d', 300), data('e', 50)] }, { name: 'catalog.pcat1.didx', chunks: [data('f', 40)] }],
      },
      { ns: ['lab'], type: 'vm', id: '300', time: backupTime(OLD), indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [data('g'), data('h')] }] },
      { ns: ['lab'], type: 'host', id: 'web', time: backupTime(OLD), indexes: [{ name: 'etc.pxar.didx', chunks: [FRESH[1]!] }] },
      { ns: ['lab'], type: 'vm', id: '300', time: backupTime(RECENT), indexes: [{ name: 'drive-scsi0.img.fidx', chunks: FRESH }] },
    ],
    unreferenced: [data('x', 70)],
    owner: { uid: BACKUP_UID, gid: BACKUP_GID },
  });
  // atime and mtime together: an atime-only update is what bindfs drops.
  for (const [hex, chunk] of record.chunks) utimesSync(join(root, chunk.rel), freshHexes.has(hex) ? RECENT : OLD, OLD);
  return record;
}

interface Expected {
  referenced: { chunks: number; bytes: number };
  /** Referenced chunks last touched before the cutoff, and the snapshots referencing any of them. */
  atRisk: { chunks: number; bytes: number; snapshots: string[] };
  /** The snapshots that reference none of them. */
  safe: string[];
  /** What the sweep removes when the touch works: the old chunk nothing references. */
  unreferenced: { chunks: number; bytes: number };
}

/** The answer, from the writer's record and the times the test gave each chunk. */
function expectedFrom(record: PbsStoreRecord): Expected {
  const bytes = (hexes: Iterable<string>) => [...hexes].reduce((sum, hex) => sum + record.chunks.get(hex)!.bytes, 0);
  const referenced = new Set(record.indexes.flatMap((index) => index.digests));
  const old = new Set([...referenced].filter((hex) => !freshHexes.has(hex)));
  const unreferenced = [...record.chunks.keys()].filter((hex) => !referenced.has(hex));
  const loses = (snapshot: string) => record.indexes.some((index) => index.rel.startsWith(`${snapshot}/`) && index.digests.some((hex) => old.has(hex)));
  return {
    referenced: { chunks: referenced.size, bytes: bytes(referenced) },
    atRisk: { chunks: old.size, bytes: bytes(old), snapshots: record.snapshots.filter(loses).sort() },
    safe: record.snapshots.filter((snapshot) => !loses(snapshot)).sort(),
    unreferenced: { chunks: unreferenced.length, bytes: bytes(unreferenced) },
  };
}

/** Each chunk's atime and mtime as the test set them: the preview touches none of them (the atime check touches only the zero chunk). */
function chunkTimes(record: PbsStoreRecord): Record<string, [number, number]> {
  return Object.fromEntries([...record.chunks].map(([hex, chunk]) => {
    const stat = statSync(join(record.root, chunk.rel));
    return [hex, [Math.floor(stat.atimeMs / 1000), Math.floor(stat.mtimeMs / 1000)]];
  }));
}

const codes = (report: { findings: { code: string }[] }): string[] => report.findings.map((finding) => finding.code);

/** The store on a freshly mounted `name`, unmounted after (daemon stopped, temp dir removed). */
function storeOn(name: RealFsName): () => { fs: RealFs; record: PbsStoreRecord; expected: Expected } {
  let fs: RealFs | undefined;
  let record: PbsStoreRecord;
  beforeAll(() => {
    fs = mountReal(name);
    record = writeStore(join(fs.dir, 'datastore'));
    // The test's own premise: the store is what the writer recorded, in two namespaces, with snapshots on both sides.
    const expected = expectedFrom(record);
    expect(record.snapshots.filter((snapshot) => snapshot.startsWith('ns/prod/'))).toHaveLength(3);
    expect(record.snapshots.filter((snapshot) => snapshot.startsWith('ns/lab/'))).toHaveLength(3);
    expect(expected.safe).toEqual([`ns/lab/host/web/${backupTime(OLD)}`, `ns/lab/vm/300/${backupTime(RECENT)}`]);
  });
  afterAll(() => fs?.unmount());
  return () => ({ fs: fs!, record, expected: expectedFrom(record) });
}

describeAsRoot('gc-preview on real filesystems: one store, where the touch is dropped and where it is kept', () => {
  describeIfKernel(
    'fuse',
    'bindfs: libfuse 2 drops the atime-only touch',
    () => {
      const mounted = storeOn('bindfs');

      it('exit 1: GC_WOULD_DELETE_REFERENCED names exactly the snapshots with a chunk older than the cutoff, with the chunks and bytes; the safety check (ATIME_CHECK) would stop GC first', () => {
        const { fs, record, expected } = mounted();
        const { code, report, stderr } = runJson(['gc-preview', record.root]);
        expect(code, stderr).toBe(1);
        expect(report).toMatchObject({ ok: false, command: 'gc-preview', store: record.root, gcUser: { uid: BACKUP_UID, from: 'store owners' } });
        expect(report.filesystem).toMatchObject({ mountPoint: fs.mountPoint, fsType: fs.fsType, known: { name: 'bindfs' } });
        // The check touched as the GC user and saw the touch dropped: the matrix's finding for bindfs.
        expect(report.atimeCheck).toMatchObject({ ok: false, touchIgnored: true, report: { touchedAs: { uid: BACKUP_UID } } });
        expect(report.atimeCheck.findings).toContain('ATIME_NOT_UPDATED');

        expect(report.snapshots).toEqual({ total: 6, broken: [] });
        expect(report.referenced).toEqual({ ...expected.referenced, missing: 0, unmarkable: 0, unmarkablePaths: [] });
        expect(report.atRisk).toEqual(expected.atRisk);
        // Run anyway, the sweep takes every referenced chunk older than the cutoff with the unreferenced one.
        expect(report.sweep.removed).toEqual({ chunks: expected.atRisk.chunks + expected.unreferenced.chunks, bytes: expected.atRisk.bytes + expected.unreferenced.bytes });

        const deletes = report.findings.find((finding: { code: string }) => finding.code === 'GC_WOULD_DELETE_REFERENCED');
        expect(deletes).toMatchObject({ severity: 'error', path: record.root, evidence: { chunks: expected.atRisk.chunks, bytes: expected.atRisk.bytes, snapshots: expected.atRisk.snapshots, touchFinding: 'ATIME_NOT_UPDATED' } });
        for (const snapshot of expected.atRisk.snapshots) expect(deletes.message).toContain(snapshot);
        for (const snapshot of expected.safe) expect(deletes.message).not.toContain(snapshot);
        // Its fix is the check's: the directory bindfs mirrors.
        expect(deletes.remedy).toContain(`point the datastore at ${fs.backing}/store/datastore`);

        // The server's own safety check stops GC before any of that.
        expect(report.abort).toMatchObject({ code: 'ATIME_CHECK', phase: 'atime check' });
        expect(report.findings.find((finding: { code: string }) => finding.code === 'GC_WOULD_ABORT')).toMatchObject({ severity: 'error', evidence: { cause: 'ATIME_CHECK' } });
        expect(codes(report)).not.toContain('CHUNK_MISSING');
      });

      it('the human output: the stop, what a GC run anyway deletes, and the snapshots that lose data, first', () => {
        const { record, expected } = mounted();
        const { code, stdout } = runCli(['gc-preview', record.root]);
        expect(code).toBe(1);
        const [verdict, ...rest] = stdout.split('\n');
        expect(verdict).toBe(
          `WOULD ABORT: the next GC stops (ATIME_CHECK) at ${record.root}/.chunks/bb9f/bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8; ` +
            `with the safety check off it removes ${expected.atRisk.chunks + 1} chunks (1.0 KiB), ${expected.atRisk.chunks} of them referenced by ${expected.atRisk.snapshots.length} snapshots`,
        );
        const deletes = rest.find((line) => line.startsWith('  error GC_WOULD_DELETE_REFERENCED: '));
        expect(deletes).toBeDefined();
        for (const snapshot of expected.atRisk.snapshots) expect(deletes).toContain(snapshot);
        expect(rest).toContain(`  older than the cutoff, and the touch is ignored here: ${expected.atRisk.chunks} chunks, ${expected.atRisk.bytes} B in ${expected.atRisk.snapshots.length} snapshots: ${expected.atRisk.snapshots.join(', ')}`);
        expect(stdout).toContain('  error GC_WOULD_ABORT: The next GC would stop before it marks anything: the atime safety check fails (ATIME_NOT_UPDATED)');
      });
    },
    describe,
  );

  describeIfKernel(
    'tmpfs',
    'tmpfs: the touch is kept',
    () => {
      const mounted = storeOn('tmpfs');

      it('exit 0: the same chunks are kept by the touch, nothing referenced is lost, only the unreferenced chunk goes; no chunk touched', () => {
        const { fs, record, expected } = mounted();
        const before = chunkTimes(record);
        const { code, report, stderr } = runJson(['gc-preview', record.root]);
        expect(code, JSON.stringify(report.findings, null, 2) + stderr).toBe(0);
        expect(report).toMatchObject({ ok: true, abort: null, gcUser: { uid: BACKUP_UID } });
        expect(report.filesystem).toMatchObject({ mountPoint: fs.mountPoint, fsType: 'tmpfs' });
        expect(report.atimeCheck).toMatchObject({ ok: true, touchIgnored: false });
        expect(codes(report)).not.toContain('GC_WOULD_DELETE_REFERENCED');
        expect(codes(report)).not.toContain('GC_WOULD_ABORT');
        expect(report.findings.filter((finding: { severity: string }) => finding.severity === 'error')).toEqual([]);
        // The same store: the same chunks older than the cutoff, here kept by the mark.
        expect(report.referenced).toEqual({ ...expected.referenced, missing: 0, unmarkable: 0, unmarkablePaths: [] });
        expect(report.atRisk).toEqual(expected.atRisk);
        expect(report.sweep.removed).toEqual(expected.unreferenced);
        expect(report.summary).toBe(`SAFE: the next GC completes: it removes 1 chunk (${expected.unreferenced.bytes} B) and keeps ${expected.referenced.chunks} referenced chunks; nothing referenced is lost`);
        // A preview, not a GC: the chunks keep the times the test gave them.
        expect(chunkTimes(record)).toEqual(before);
      });
    },
    describe,
  );
});
