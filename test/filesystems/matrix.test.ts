/**
 * The filesystem matrix: every filesystem users keep stores on that this
 * machine can mount for real (kernel filesystems on loop devices, FUSE
 * daemons from Debian's packages, sshd and samba on 127.0.0.1), checked as an
 * operator would: `chunkguard check <store>` as root, the GC user inferred.
 * Each row asserts the verdict, the primary finding and that its remedy is
 * the one for that filesystem. The run writes the table of docs/filesystems.md
 * (CHUNKGUARD_WRITE_DOCS=1) or checks the committed one against what it saw.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { describeIfKernel, type KernelFeature, kernelHas } from '../helpers/kernel.js';
import { mountReal, type RealFs, type RealFsName } from '../helpers/realfs.js';
import { BACKUP_GID, BACKUP_UID, storeIn } from '../helpers/store.js';
import { type DocRow, DOC, renderTable, tableRows } from './doc.js';

interface Row {
  name: RealFsName;
  verdict: 'SAFE' | 'UNSAFE';
  /** The first error of an unsafe verdict; for a safe one, the warning that comes with it. */
  primary?: string;
  /** The primary finding's remedy, specific to this filesystem. */
  remedy?: RegExp;
  note: string;
  /** Where `check --probe <mount point>` as root differs from the store's verdict: uid 34's own answer there. */
  probe?: { verdict: 'SAFE' | 'UNSAFE'; codes: string[] };
  /** More that this filesystem must show (the defects of issue 11, each on its real filesystem). */
  also?: (fs: RealFs, store: string) => void;
}

const codes = (report: { findings: { code: string }[] }) => report.findings.map((finding) => finding.code);

const ROWS: Row[] = [
  { name: 'ext4', verdict: 'SAFE', note: 'nanosecond timestamps' },
  { name: 'ext4-128', verdict: 'SAFE', note: '128-byte inodes: whole seconds; the check waits for the next second' },
  { name: 'ext4-noatime', verdict: 'SAFE', note: 'noatime does not affect an explicit touch' },
  {
    name: 'ext4-strictatime',
    verdict: 'SAFE',
    note: 'strictatime (reported as such, not as a default)',
    also: (fs, store) => {
      const { report } = runJson(['env', store]);
      expect(report.path.mount.atimePolicy).toBe('strictatime');
      expect(runCli(['env', store]).stdout).toContain('(atime strictatime)');
    },
  },
  {
    name: 'ext4-lazytime',
    verdict: 'SAFE',
    note: 'lazytime: shown on the status line',
    also: (fs, store) => {
      expect(runCli(['check', store]).stdout).toMatch(/ext4 \S+ \(atime relatime, lazytime\)/);
      expect(runCli(['env', store]).stdout).toContain('lazytime');
    },
  },
  { name: 'ext4-ro', verdict: 'UNSAFE', primary: 'READ_ONLY_FS', remedy: /^mount -o remount,rw /, note: 'mounted read-only: the remedy is the remount' },
  { name: 'xfs', verdict: 'SAFE', note: '' },
  { name: 'btrfs', verdict: 'SAFE', note: '' },
  { name: 'tmpfs', verdict: 'SAFE', note: 'memory only' },
  { name: 'overlay', verdict: 'SAFE', note: 'a lower-layer chunk is copied up by the touch, keeping its inode number' },
  {
    name: 'squashfs',
    verdict: 'UNSAFE',
    primary: 'READ_ONLY_FS',
    remedy: /SquashFS is read-only by design.*: cp -a /,
    note: 'read-only by design: no remount is offered',
    also: (fs, store) => {
      const { report } = runJson(['env', store]);
      expect(report.findings.find((f: { code: string }) => f.code === 'READ_ONLY_FS').remedy).not.toMatch(/^mount -o remount/);
    },
  },
  { name: 'erofs', verdict: 'UNSAFE', primary: 'READ_ONLY_FS', remedy: /EROFS is read-only by design.*: cp -a /, note: 'read-only by design: no remount is offered' },
  { name: 'zfs-fuse', verdict: 'SAFE', note: 'whole seconds' },
  {
    name: 'ntfs-3g',
    verdict: 'SAFE',
    primary: 'RAN_WITH_CAP_FOWNER',
    note: 'chown returns 0 and changes nothing (every file shows root, so the store check touches as root: warned); anyone may touch anything: fix reports CHOWN_IGNORED, audit OWNERSHIP_NOT_ENFORCED; --probe as root answers for uid 34: SAFE',
    also: (fs, store) => {
      // Give the GC user something to own: ntfs-3g keeps root whatever chown says.
      const fix = runJson(['fix', store, '--owner', `${BACKUP_UID}:${BACKUP_GID}`, '--apply', '--journal', join(fs.dir, 'journal')]);
      expect(fix.code).toBe(1);
      expect(fix.report.changed).toBe(0);
      expect(fix.report.summary).toMatch(/^INCOMPLETE/);
      const ignored = fix.report.findings.find((f: { code: string }) => f.code === 'CHOWN_IGNORED');
      expect(ignored.remedy).toMatch(/-o permissions/);
      const audit = runJson(['audit', store, '--owner', `${BACKUP_UID}:${BACKUP_GID}`]);
      expect(codes(audit.report)).toContain('OWNERSHIP_NOT_ENFORCED');
      expect(codes(audit.report)).not.toContain('FOREIGN_OWNER');
      expect(codes(audit.report)).not.toContain('INCONSISTENT_OWNER');
    },
  },
  { name: 'ntfs-3g-permissions', verdict: 'SAFE', note: 'with permissions, owners are kept and enforced' },
  { name: 'ntfs-3g-uid', verdict: 'SAFE', note: 'uid=34,gid=34: every file shows the GC user' },
  { name: 'gocryptfs', verdict: 'SAFE', note: '' },
  {
    name: 'gocryptfs-no-allow-other',
    verdict: 'UNSAFE',
    primary: 'FUSE_NO_ALLOW_OTHER',
    remedy: /allow_other/,
    note: 'without allow_other only the mounter may enter: named as such, with the remount',
    also: (fs, store) => {
      const { report } = runJson(['env', store]);
      expect(report.ok).toBe(false);
      expect(codes(report)).toContain('FUSE_NO_ALLOW_OTHER');
    },
  },
  { name: 'mergerfs', verdict: 'SAFE', note: 'minfreespace lowered: the 4G default refuses new files on a small branch' },
  {
    name: 'sshfs',
    verdict: 'SAFE',
    primary: 'TOUCH_SETS_MTIME',
    note: 'atime honoured in whole seconds, but mtime is set with it',
    also: (fs, store) => {
      const fixed = runJson(['check', store, '--fixed-sleep']);
      expect(fixed.code).toBe(0);
      expect(codes(fixed.report)).toContain('TOUCH_SETS_MTIME');
      const probe = runJson(['check', fs.dir, '--probe']);
      expect(probe.code).toBe(0);
      expect(codes(probe.report)).not.toContain('ATIME_NOT_UPDATED');
    },
  },
  {
    name: 'sshfs-default-permissions',
    verdict: 'UNSAFE',
    primary: 'CHUNK_WRITE_FAILED',
    remedy: /^mount the share as the GC user instead: .*sshfs backup@127\.0\.0\.1:/,
    note: 'the SFTP server (root) creates every file as root: the GC user cannot touch its own new chunk; the remedy is to connect as the GC user, not a chown',
  },
  { name: 'bindfs', verdict: 'UNSAFE', primary: 'ATIME_NOT_UPDATED', remedy: /bindfs .*source/, note: 'libfuse 2: atime-only update dropped' },
  { name: 'bindfs-map', verdict: 'UNSAFE', primary: 'ATIME_NOT_UPDATED', remedy: /bindfs .*source/, note: 'libfuse 2: atime-only update dropped; --map maps a chown back' },
  {
    name: 'exfat-fuse',
    verdict: 'UNSAFE',
    primary: 'ATIME_NOT_UPDATED',
    remedy: /exfat-fuse/,
    note: 'libfuse 2: atime-only update dropped; no owners',
    also: (fs, store) => {
      // As uid 34, chosen by the operator: every file shows root, and no chown can change that.
      const { code, report } = runJson(['check', store, '--as-user', String(BACKUP_UID)]);
      expect(code).toBe(1);
      expect(codes(report)).not.toContain('CHUNK_WRITE_FAILED');
      const primary = report.findings.find((f: { severity: string }) => f.severity === 'error');
      expect(primary.code).toBe('NO_FILE_OWNERS');
      expect(primary.remedy).toMatch(/-o uid=34,gid=34/);
      for (const finding of report.findings) expect(finding.remedy ?? '').not.toMatch(/^chown|&& chown| chown -h|chunkguard fix/);
    },
  },
  { name: 'exfat-fuse-uid', verdict: 'UNSAFE', primary: 'ATIME_NOT_UPDATED', remedy: /exfat-fuse/, note: 'uid=34,gid=34 gives the GC user the files; atime-only updates are still dropped' },
  {
    name: 'fusefat',
    verdict: 'UNSAFE',
    primary: 'ATIME_NOT_UPDATED',
    remedy: /fusefat/,
    note: 'libfuse 2: atime-only update dropped; no owners (chown ENOSYS)',
    also: (fs, store) => {
      const { code, report } = runJson(['check', store, '--as-user', 'root']);
      expect(code).toBe(1);
      expect(report.findings.find((f: { severity: string }) => f.severity === 'error').code).toBe('ATIME_NOT_UPDATED');
    },
  },
  { name: 'smbnetfs', verdict: 'UNSAFE', primary: 'ATIME_NOT_UPDATED', remedy: /smbnetfs/, note: 'libfuse 2: atime-only update dropped; renaming an open file is refused (EBUSY), chown ignored' },
  {
    name: 'rclone',
    verdict: 'UNSAFE',
    primary: 'ATIME_NOT_UPDATED',
    remedy: /rclone/,
    note: 'no atime (shows mtime); inode numbers are a hash of the path, the chunk\'s >= 2^63; link() EIO',
    also: (fs) => {
      const { code, report } = runJson(['check', fs.dir, '--probe']);
      expect(code).toBe(1);
      expect(report.findings.find((f: { severity: string }) => f.severity === 'error').code).toBe('ATIME_NOT_UPDATED');
      expect(codes(report)).not.toContain('UNSAFE_PATH');
    },
  },
];

/** The finest timestamp step the check's stats show: ns, 100 ns, ... 1 s. */
function resolution(report: { before?: Record<string, string>; after?: Record<string, string> }): string {
  const times = [report.before, report.after].flatMap((stat) => (stat ? [stat.atimeNs, stat.mtimeNs, stat.ctimeNs] : [])).filter(Boolean).map((ns) => BigInt(ns!));
  if (times.length === 0) return '';
  let step = 1n;
  while (step < 1_000_000_000n && times.every((ns) => ns % (step * 10n) === 0n)) step *= 10n;
  return step === 1_000_000_000n ? '1 s' : step >= 1_000_000n ? `${step / 1_000_000n} ms` : step >= 1000n ? `${step / 1000n} µs` : `${step} ns`;
}

/** The kernel feature a row needs: its filesystem, or FUSE for a daemon's. */
function kernelFeature(name: RealFsName): KernelFeature {
  if (name.startsWith('ext4')) return 'ext4';
  if (['xfs', 'btrfs', 'tmpfs', 'overlay', 'squashfs', 'erofs'].includes(name)) return name as KernelFeature;
  return 'fuse';
}

const seen: DocRow[] = [];

describeAsRoot('the filesystem matrix', () => {
  it('has at least 25 real configurations', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(25);
  });

  for (const row of ROWS) {
    // A filesystem the running kernel lacks is skipped by name (a missing package still fails).
    describeIfKernel(kernelFeature(row.name), row.name, () => {
      let fs: RealFs;
      let store: string;
      beforeAll(() => {
        const readOnly = ['squashfs', 'erofs', 'ext4-ro'].includes(row.name);
        fs = mountReal(row.name, readOnly ? { populate: (dir) => void storeIn(dir) } : undefined);
        store = readOnly ? join(fs.dir, 'datastore') : storeIn(fs.dir);
      });
      afterAll(() => fs?.unmount());

      it(`check says ${row.verdict}${row.primary ? ` with ${row.primary}` : ''}`, () => {
        const { code, report } = runJson(['check', store]);
        const primary = row.verdict === 'SAFE' ? report.findings.find((f: { severity: string }) => f.severity === 'warning') : report.findings.find((f: { severity: string }) => f.severity === 'error');
        expect({ code, verdict: report.summary.split(':')[0], primary: primary?.code }).toEqual({ code: row.verdict === 'SAFE' ? 0 : 1, verdict: row.verdict, primary: row.primary });
        if (row.remedy) expect(primary.remedy).toMatch(row.remedy);
        expect(report.filesystem.fsType).toBe(fs.fsType);
        seen.push({ filesystem: row.name, package: fs.package ? `${fs.package} ${fs.packageVersion}` : 'kernel', fsType: fs.fsType, verdict: row.verdict, primary: row.primary ?? '', resolution: resolution(report), notes: row.note });
      });

      // Before a datastore is created: root probes the mount point, as uid 34, and gets uid 34's own answer.
      it(`check --probe of the mount point as root answers for uid 34: ${row.probe?.verdict ?? row.verdict}`, () => {
        const { code, report } = runJson(['check', '--probe', fs.dir]);
        const expected = row.probe ?? { verdict: row.verdict, codes: ['ATIME_NOT_UPDATED', 'FUSE_NO_ALLOW_OTHER', 'READ_ONLY_FS'].filter((code) => code === row.primary) };
        expect({ code, verdict: report.summary.split(':')[0], gcUser: report.gcUser.uid }).toEqual({ code: expected.verdict === 'SAFE' ? 0 : 1, verdict: expected.verdict, gcUser: BACKUP_UID });
        for (const code of expected.codes) expect(codes(report)).toContain(code);
        // Never a chown of the mount point: root makes the datastore and hands it over.
        expect(codes(report)).not.toContain('CHUNK_DIR_NOT_WRITABLE');
        expect(readdirSync(fs.dir).filter((name) => name.startsWith('.chunkguard-probe-'))).toEqual([]);
      });

      if (row.also) it('and the rest of what is known there', () => row.also!(fs, store));
    }, describe);
  }

  afterAll(() => {
    const ran = ROWS.filter((row) => kernelHas(kernelFeature(row.name)));
    if (seen.length !== ran.length) return; // a failed row already failed the run
    if (process.env.CHUNKGUARD_WRITE_DOCS === '1') {
      writeFileSync(DOC, renderTable(readFileSync(DOC, 'utf8'), seen));
      return;
    }
    // The committed table says what this run saw (package versions aside: CI may have newer ones).
    // Rows of filesystems this kernel lacks were skipped by name: the others are compared.
    const committed = tableRows(readFileSync(DOC, 'utf8')).filter(({ filesystem }) => ran.some((row) => row.name === filesystem)).map(({ filesystem, fsType, verdict, primary }) => ({ filesystem, fsType, verdict, primary }));
    expect(committed).toEqual(seen.map(({ filesystem, fsType, verdict, primary }) => ({ filesystem, fsType, verdict, primary })));
  });
});
