import { chunkCorrupt, chunkReplaced } from '../../src/check/check-findings.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnoseTouch, type DiagnosisContext, unsafePath } from '../../src/check/diagnose.js';
import { buildReport, type Measurement, type ReportContext, skewNs } from '../../src/check/report.js';
import type { StatSnapshot } from '../../src/check/snapshot.js';
import { FIRST_WAIT_MS, nextWait, storesWholeSeconds, WAIT_CAP_MS } from '../../src/check/waits.js';
import type { Finding } from '../../src/findings.js';
import { FS_APPEND_FL, FS_IMMUTABLE_FL } from '../../src/fs/dir.js';
import { FsError } from '../../src/fs/errors.js';
import { decodeStat, type Stat, STATX, STATX_SIZE } from '../../src/fs/stat.js';
import type { MountFacts, MountInfo } from '../../src/system/mounts.js';
import { Accounts } from '../../src/system/passwd.js';
import type { UserNamespace } from '../../src/system/process.js';

const base = mkdtempSync(join(tmpdir(), 'chunkguard-unit-check-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

writeFileSync(
  join(base, 'passwd'),
  ['root:x:0:0:root:/root:/bin/bash', 'backup:x:34:34:backup:/var/backups:/usr/sbin/nologin', 'alice:x:1000:1000::/home/alice:/bin/sh', ''].join('\n'),
);
writeFileSync(join(base, 'group'), ['root:x:0:', 'backup:x:34:', 'store:x:1001:backup', ''].join('\n'));
const accounts = new Accounts({ passwd: join(base, 'passwd'), group: join(base, 'group') });

const SECOND = 1_000_000_000n;
const MINUTE_NS = 60n * SECOND;

// ---------------------------------------------------------------- waits

const subSecond = { atimeNs: 1_700_000_000_123_456_789n, mtimeNs: 1_700_000_000_000_000_001n, ctimeNs: 1_700_000_000_500_000_000n };
const wholeSecond = { atimeNs: 1_700_000_001n * SECOND, mtimeNs: 1_700_000_000n * SECOND, ctimeNs: 1_700_000_000n * SECOND };

describe('storesWholeSeconds', () => {
  it('true only when all three times are whole seconds', () => {
    expect(storesWholeSeconds(wholeSecond)).toBe(true);
    expect(storesWholeSeconds(subSecond)).toBe(false);
    expect(storesWholeSeconds({ ...wholeSecond, atimeNs: wholeSecond.atimeNs + 1n })).toBe(false);
    expect(storesWholeSeconds({ ...wholeSecond, mtimeNs: wholeSecond.mtimeNs + 1n })).toBe(false);
    expect(storesWholeSeconds({ ...wholeSecond, ctimeNs: wholeSecond.ctimeNs + 999_999_999n })).toBe(false);
  });
});

describe('nextWait', () => {
  it('grows 5, 10, 20, ... and is cut so the total ends exactly at the cap, then stops', () => {
    const waits: number[] = [];
    for (;;) {
      const next = nextWait(waits, subSecond, 123_456);
      if (next === undefined) break;
      expect(next).toBeGreaterThan(0);
      waits.push(next);
      expect(waits.reduce((sum, wait) => sum + wait, 0)).toBeLessThanOrEqual(WAIT_CAP_MS);
      expect(waits.length).toBeLessThan(100);
    }
    expect(FIRST_WAIT_MS).toBe(5);
    expect(WAIT_CAP_MS).toBe(2_500);
    expect(waits).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 1225]);
    expect(waits.reduce((sum, wait) => sum + wait, 0)).toBe(WAIT_CAP_MS);
  });

  it('undefined once the cap is reached or passed', () => {
    expect(nextWait([2_500], subSecond, 0)).toBeUndefined();
    expect(nextWait([3_000], wholeSecond, 0)).toBeUndefined();
    expect(nextWait([1_000, 1_499], subSecond, 0)).toBe(1);
  });

  it('on a whole-second filesystem, waits until just past the next second of the clock', () => {
    expect(nextWait([], wholeSecond, 1_700_000_000_250)).toBe(750 + 15);
    expect(nextWait([], wholeSecond, 1_700_000_000_999)).toBe(1 + 15);
    expect(nextWait([], wholeSecond, 1_700_000_000_000)).toBe(1_000 + 15);
    // Not the doubling: the count of previous waits does not matter.
    expect(nextWait([5, 10, 20], wholeSecond, 1_700_000_000_900)).toBe(115);
  });

  it('the whole-second wait is capped too', () => {
    expect(nextWait([1_000, 1_000], wholeSecond, 1_700_000_000_000)).toBe(500);
    expect(nextWait([1_000, 1_000, 500], wholeSecond, 1_700_000_000_000)).toBeUndefined();
  });
});

// ---------------------------------------------------------------- report

function snap(atimeNs: bigint, mtimeNs = 1_600_000_000_111_111_111n, ctimeNs = mtimeNs): StatSnapshot {
  return {
    ino: '12',
    dev: '2049',
    size: 4_194_304,
    uid: 34,
    gid: 34,
    mode: '0640',
    atimeNs: atimeNs.toString(),
    mtimeNs: mtimeNs.toString(),
    ctimeNs: ctimeNs.toString(),
    atime: '',
    mtime: '',
    ctime: '',
  };
}

const HOST_BEFORE = 1_700_000_000_900_000_000n; // x.9 s
const HOST_AFTER = HOST_BEFORE + 100_000n;
const HOST: [string, string] = [HOST_BEFORE.toString(), HOST_AFTER.toString()];

describe('skewNs', () => {
  it('0 for an atime inside the touch window or within 20 ms of it', () => {
    expect(skewNs(snap(HOST_BEFORE + 50_000n), HOST)).toBe(0n);
    expect(skewNs(snap(HOST_BEFORE - 20_000_000n), HOST)).toBe(0n);
    expect(skewNs(snap(HOST_AFTER + 20_000_000n), HOST)).toBe(0n);
  });

  it('negative (atime minus the time before the touch) for a lagging clock', () => {
    expect(skewNs(snap(HOST_BEFORE - 20_000_001n), HOST)).toBe(-20_000_001n);
    expect(skewNs(snap(HOST_BEFORE - 40n * MINUTE_NS), HOST)).toBe(-40n * MINUTE_NS);
  });

  it('positive (atime minus the time after the touch) for a clock ahead', () => {
    expect(skewNs(snap(HOST_AFTER + 20_000_001n), HOST)).toBe(20_000_001n);
    expect(skewNs(snap(HOST_AFTER + 5n * MINUTE_NS), HOST)).toBe(5n * MINUTE_NS);
  });

  it('a whole-second filesystem has a second of slack (its atime is truncated)', () => {
    const truncated = (HOST_BEFORE / SECOND) * SECOND; // 0.9 s before the touch
    const whole = (atime: bigint) => snap(atime, 1_600_000_000n * SECOND, 1_600_000_000n * SECOND);
    expect(skewNs(whole(truncated), HOST)).toBe(0n);
    expect(skewNs(whole(truncated - SECOND), HOST)).toBe(truncated - SECOND - HOST_BEFORE);
    expect(skewNs(whole(truncated + 2n * SECOND), HOST)).toBe(truncated + 2n * SECOND - HOST_AFTER);
    // The same lag with sub-second mtime/ctime is not excused.
    expect(skewNs(snap(truncated), HOST)).toBe(truncated - HOST_BEFORE);
  });
});

const FILESYSTEM: MountFacts = {
  mountPoint: '/srv/backup',
  fsType: 'ext4',
  source: '/dev/sdb1',
  mountOptions: ['rw', 'relatime'],
  superOptions: ['rw'],
  readOnly: false,
  atimePolicy: 'relatime',
  lazytime: false,
};

function measurement(overrides: Partial<Measurement> = {}): Measurement {
  return {
    digest: 'bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8',
    chunkPath: '/srv/backup/store/.chunks/bb9f/bb9f8df6',
    touchedAs: { uid: 34, gid: 34, groups: [34, 1001], capFowner: false },
    filesystem: FILESYSTEM,
    before: snap(1_600_000_000_111_111_111n),
    after: snap(HOST_BEFORE + 10_000n),
    host: HOST,
    waits: [5, 10],
    touches: 3,
    findings: [],
    ...overrides,
  };
}

function context(overrides: Partial<ReportContext> = {}): ReportContext {
  return {
    store: '/srv/backup/store',
    probe: false,
    mode: 'adaptive',
    cutoffMinutes: 1445,
    reason: 'requested',
    via: 'self',
    gcUser: { uid: 34, gid: 34, groups: [34, 1001], name: 'backup', user: 'backup', group: 'backup', from: 'option', reason: 'given with --as-user' },
    ownerFindings: [],
    startedMs: performance.now(),
    accounts,
    ...overrides,
  };
}

const atimeError: Finding = { code: 'ATIME_NOT_UPDATED', severity: 'error', message: 'atime did not move', path: '/x' };

describe('buildReport', () => {
  it('no findings: ok, SAFE summary with the filesystem, the user and the waits', () => {
    const report = buildReport(measurement(), context());
    expect(report.ok).toBe(true);
    expect(report.findings).toEqual([]);
    expect(report.summary).toBe('SAFE: ext4 at /srv/backup honours atime updates for uid 34 (backup) (3 touches, 15 ms waited)');
    expect(report.touchedAs).toEqual({ uid: 34, gid: 34, groups: [34, 1001], capFowner: false, name: 'backup', reason: 'requested', via: 'self' });
    expect(report.clock).toEqual({ skewMs: 0, hostNs: HOST[0], atimeNs: (HOST_BEFORE + 10_000n).toString() });
    expect(report).toMatchObject({ command: 'check', store: '/srv/backup/store', mode: 'adaptive', cutoffMinutes: 1445, waits: [5, 10], touches: 3 });
  });

  it('says "1 touch", not "1 touches"', () => {
    const report = buildReport(measurement({ touches: 1, waits: [] }), context());
    expect(report.summary).toBe('SAFE: ext4 at /srv/backup honours atime updates for uid 34 (backup) (1 touch, 0 ms waited)');
  });

  it('without a filesystem the summary names the store; an unknown uid is described as such', () => {
    const report = buildReport(measurement({ filesystem: undefined, touchedAs: { uid: 4242, gid: 4242, groups: [], capFowner: false } }), context());
    expect(report.summary).toBe('SAFE: /srv/backup/store honours atime updates for uid 4242 (no passwd entry) (3 touches, 15 ms waited)');
    expect(report.touchedAs.name).toBeUndefined();
  });

  it('an error finding makes it UNSAFE, with the first error code and message in the summary', () => {
    const warning: Finding = { code: 'FUSE_FILESYSTEM', severity: 'warning', message: 'fuse' };
    const second: Finding = { code: 'TOUCH_FAILED', severity: 'error', message: 'second error' };
    const report = buildReport(measurement({ findings: [warning, atimeError, second] }), context());
    expect(report.ok).toBe(false);
    expect(report.summary).toBe('UNSAFE: ext4 at /srv/backup for uid 34 (backup): ATIME_NOT_UPDATED: atime did not move');
    expect(report.findings.map((finding) => finding.code)).toEqual(['FUSE_FILESYSTEM', 'ATIME_NOT_UPDATED', 'TOUCH_FAILED']);
  });

  it('warnings and infos alone stay SAFE', () => {
    const report = buildReport(measurement({ findings: [{ code: 'PREFIX_DIR_CREATED', severity: 'info', message: 'made' }, { code: 'CHUNK_REPLACED', severity: 'warning', message: 'replaced' }] }), context());
    expect(report.ok).toBe(true);
    expect(report.summary.startsWith('SAFE: ')).toBe(true);
  });

  it('RAN_AS_STORE_OWNER comes first when the store owner was chosen, then STORE_ROOT_SYMLINK, then the measurement', () => {
    const report = buildReport(
      measurement({ findings: [atimeError] }),
      context({
        reason: 'store owner',
        resolvedFrom: '/backup-link',
        via: 'setpriv',
        gcUser: { uid: 34, gid: 34, groups: [34], from: 'store owners', reason: 'uid 34 (backup) owns /srv/backup/store/.chunks' },
      }),
    );
    expect(report.findings.map((finding) => finding.code)).toEqual(['RAN_AS_STORE_OWNER', 'STORE_ROOT_SYMLINK', 'ATIME_NOT_UPDATED']);
    expect(report.findings[0]!.severity).toBe('info');
    expect(report.findings[0]!.message).toBe('touched as uid 34 (backup), the user GC runs as (uid 34 (backup) owns /srv/backup/store/.chunks), without CAP_FOWNER: what GC may not do shows here as it would in GC (--as-user chooses another user)');
    expect(report.touchedAs).toMatchObject({ reason: 'store owner', via: 'setpriv' });
    // An info first does not hide the error in the summary.
    expect(report.summary).toContain(': ATIME_NOT_UPDATED: ');
  });

  it('any touch with CAP_FOWNER is a warning that says what it hides (root, or another user holding it); a requested non-root user without it is not', () => {
    const root = buildReport(measurement({ touchedAs: { uid: 0, gid: 0, groups: [0], capFowner: true } }), context());
    expect(root.findings.map((finding) => finding.code)).toEqual(['RAN_WITH_CAP_FOWNER']);
    expect(root.findings[0]).toMatchObject({ severity: 'warning', message: expect.stringMatching(/^touched as uid 0 \(root\) with CAP_FOWNER, .*cannot show in this verdict$/) });
    expect(root.ok).toBe(true);
    const holder = buildReport(measurement({ touchedAs: { uid: 1000, gid: 1000, groups: [1000], capFowner: true } }), context({ reason: 'store owner' }));
    expect(holder.findings.map((finding) => [finding.code, finding.severity])).toEqual([['RAN_WITH_CAP_FOWNER', 'warning']]);
    expect(buildReport(measurement(), context()).findings).toEqual([]);
  });

  it('a clock 40 minutes behind is a CLOCK_SKEW warning under a 1445-minute cutoff', () => {
    const report = buildReport(measurement({ after: snap(HOST_BEFORE - 40n * MINUTE_NS) }), context());
    const skew = report.findings.find((finding) => finding.code === 'CLOCK_SKEW');
    expect(skew?.severity).toBe('warning');
    expect(skew?.message).toContain('40.0 minutes behind');
    expect(report.clock?.skewMs).toBe(-40 * 60_000);
    expect(report.ok).toBe(true);
    expect(report.summary.startsWith('SAFE: ')).toBe(true);
  });

  it('a lag beyond cutoffMinutes is a CLOCK_SKEW error and UNSAFE', () => {
    const report = buildReport(measurement({ after: snap(HOST_BEFORE - 40n * MINUTE_NS) }), context({ cutoffMinutes: 30 }));
    const skew = report.findings.find((finding) => finding.code === 'CLOCK_SKEW');
    expect(skew?.severity).toBe('error');
    expect(report.ok).toBe(false);
    expect(report.summary.startsWith('UNSAFE: ext4 at /srv/backup for uid 34 (backup): CLOCK_SKEW: ')).toBe(true);
  });

  it('a lag of exactly cutoffMinutes is already an error', () => {
    const report = buildReport(measurement({ after: snap(HOST_BEFORE - 30n * MINUTE_NS) }), context({ cutoffMinutes: 30 }));
    expect(report.findings.find((finding) => finding.code === 'CLOCK_SKEW')?.severity).toBe('error');
  });

  it('a clock ahead by more than the cutoff is only a warning; a minute of skew is nothing', () => {
    const ahead = buildReport(measurement({ after: snap(HOST_AFTER + 60n * MINUTE_NS) }), context({ cutoffMinutes: 30 }));
    expect(ahead.findings.find((finding) => finding.code === 'CLOCK_SKEW')?.severity).toBe('warning');
    expect(ahead.ok).toBe(true);
    const minute = buildReport(measurement({ after: snap(HOST_BEFORE - MINUTE_NS) }), context());
    expect(minute.findings).toEqual([]);
    expect(minute.clock?.skewMs).toBe(-60_000);
  });

  it('no clock facts without after and host', () => {
    const report = buildReport(measurement({ after: undefined, host: undefined, findings: [atimeError] }), context());
    expect(report.clock).toBeUndefined();
    expect(report.findings.map((finding) => finding.code)).toEqual(['ATIME_NOT_UPDATED']);
  });
});

// ---------------------------------------------------------------- diagnose

const IDENTITY_NS: UserNamespace = {
  uidMap: [{ inside: 0, outside: 0, count: 4294967295 }],
  gidMap: [{ inside: 0, outside: 0, count: 4294967295 }],
  identity: true,
  overflowUid: 65534,
  overflowGid: 65534,
};
const ROOTLESS_NS: UserNamespace = {
  uidMap: [
    { inside: 0, outside: 1000, count: 1 },
    { inside: 1, outside: 100000, count: 65536 },
  ],
  gidMap: [{ inside: 0, outside: 1000, count: 1 }],
  identity: false,
  overflowUid: 65534,
  overflowGid: 65534,
};
const MOUNT: MountInfo = { ...FILESYSTEM, device: '8:17' };

function diagnosis(overrides: Partial<DiagnosisContext> = {}): DiagnosisContext {
  return {
    accounts,
    uid: 34,
    gid: 34,
    capFowner: false,
    namespace: IDENTITY_NS,
    mount: MOUNT,
    storeOwner: { uid: 34, gid: 1001 },
    store: '/srv/backup/store',
    ...overrides,
  };
}

/** A chunk's Stat, decoded from a hand-filled struct statx (so it has every field Stat has). */
function stat(uid: number, gid: number, mode = 0o100640): Stat {
  const buf = Buffer.alloc(STATX_SIZE);
  buf.writeUInt32LE(STATX.BASIC_STATS, 0);
  buf.writeUInt32LE(1, 16); // nlink
  buf.writeUInt32LE(uid, 20);
  buf.writeUInt32LE(gid, 24);
  buf.writeUInt16LE(mode, 28);
  buf.writeBigUInt64LE(77n, 32); // ino
  buf.writeBigUInt64LE(4_194_304n, 40); // size
  const decoded = decodeStat(buf);
  if (!decoded) throw new Error('decodeStat refused a complete mask');
  return decoded;
}

const CHUNK = '/srv/backup/store/.chunks/bb9f/bb9f8df6';

describe('diagnoseTouch', () => {
  it('EROFS: READ_ONLY_FS with the remount remedy for the mount point', () => {
    const finding = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EROFS' }, { stat: stat(34, 34) });
    expect(finding).toMatchObject({ code: 'READ_ONLY_FS', severity: 'error', path: CHUNK, remedy: 'mount -o remount,rw /srv/backup' });
    expect(finding.evidence).toMatchObject({ errno: 'EROFS', mountPoint: '/srv/backup', fsType: 'ext4' });
  });

  it('EROFS with a mount point that needs quoting', () => {
    const finding = diagnoseTouch(diagnosis({ mount: { ...MOUNT, mountPoint: "/mnt/o'brien disk" } }), CHUNK, { ok: false, code: 'EROFS' }, {});
    expect(finding.remedy).toBe(`mount -o remount,rw '/mnt/o'\\''brien disk'`);
  });

  it('EPERM with the immutable flag: TOUCH_EPERM_IMMUTABLE and chattr -i', () => {
    const finding = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(34, 34), flags: FS_IMMUTABLE_FL });
    expect(finding).toMatchObject({ code: 'TOUCH_EPERM_IMMUTABLE', severity: 'error', path: CHUNK, remedy: `chattr -i ${CHUNK}` });
    expect(finding.evidence).toMatchObject({ errno: 'EPERM', flags: '0x10', touchUid: 34 });
  });

  it('EPERM with the append-only flag: chattr -a; immutable wins over a foreign owner', () => {
    expect(diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(34, 34), flags: FS_APPEND_FL }).remedy).toBe(`chattr -a ${CHUNK}`);
    const both = diagnoseTouch(diagnosis(), '/srv/a b', { ok: false, code: 'EPERM' }, { stat: stat(0, 0), flags: FS_IMMUTABLE_FL | 0x80000 });
    expect(both.code).toBe('TOUCH_EPERM_IMMUTABLE');
    expect(both.remedy).toBe("chattr -i '/srv/a b'");
  });

  it('EPERM on a chunk owned by someone else, without CAP_FOWNER: TOUCH_EPERM_WRONG_OWNER with chown to the toucher and the store group', () => {
    const finding = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(0, 0, 0o100644), flags: 0 });
    expect(finding).toMatchObject({ code: 'TOUCH_EPERM_WRONG_OWNER', severity: 'error', path: CHUNK, remedy: `chown 34:1001 ${CHUNK}` });
    expect(finding.message).toContain('uid 0 (root)');
    expect(finding.message).toContain('uid 34 (backup)');
    expect(finding.message).toContain('0644');
    expect(finding.evidence).toMatchObject({ errno: 'EPERM', owner: { uid: 0, gid: 0, name: 'root' }, touchedAs: { uid: 34, gid: 34, name: 'backup' }, mode: '0644', capFowner: false });
  });

  it('the overflow uid in the initial namespace is just another owner', () => {
    const finding = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(65534, 65534) });
    expect(finding.code).toBe('TOUCH_EPERM_WRONG_OWNER');
  });

  it('EPERM on an overflow-owned chunk in a non-identity namespace: OWNER_NOT_MAPPED', () => {
    const finding = diagnoseTouch(diagnosis({ namespace: ROOTLESS_NS, uid: 0, gid: 0, storeOwner: { uid: 0, gid: 0 } }), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(65534, 65534) });
    expect(finding).toMatchObject({ code: 'OWNER_NOT_MAPPED', severity: 'error', path: CHUNK });
    expect(finding.message).toContain('uid_map 0 1000 1; 1 100000 65536');
    // The host-side command: 0:0 here is host 1000:1000 (no overflow id, nothing that cannot work inside).
    expect(finding.remedy).toMatch(/^chunkguard fix \/srv\/backup\/store --owner 1000:1000 --apply --journal \/var\/tmp\/chunkguard-fix-\$\(date \+%Y%m%d-%H%M%S-%N\)\.jsonl   # on the host, as root, outside this user namespace/);
    expect(finding.remedy).not.toContain('65534');
    expect(finding.evidence).toMatchObject({ owner: 65534, overflowUid: 65534 });
  });

  it('EPERM although the toucher owns the chunk, or has CAP_FOWNER, or no stat: TOUCH_FAILED', () => {
    expect(diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(34, 34), flags: 0 }).code).toBe('TOUCH_FAILED');
    expect(diagnoseTouch(diagnosis({ capFowner: true }), CHUNK, { ok: false, code: 'EPERM' }, { stat: stat(0, 0) }).code).toBe('TOUCH_FAILED');
    const noStat = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code: 'EPERM' }, {});
    expect(noStat).toMatchObject({ code: 'TOUCH_FAILED', evidence: { errno: 'EPERM', owner: -1 } });
  });

  it('any other errno: TOUCH_FAILED naming it', () => {
    for (const code of ['EIO', 'ENOENT', 'E523']) {
      const finding = diagnoseTouch(diagnosis(), CHUNK, { ok: false, code }, { stat: stat(0, 0), flags: FS_IMMUTABLE_FL });
      expect(finding).toMatchObject({ code: 'TOUCH_FAILED', severity: 'error', path: CHUNK, evidence: { errno: code } });
      expect(finding.message).toContain(code);
      expect(finding.remedy).toBeUndefined();
    }
  });

  it('EACCES names the directory that blocks the way (its parent when nothing on the way refuses)', () => {
    const store = join(base, 'store');
    mkdirSync(join(store, '.chunks', 'bb9f'), { recursive: true });
    const chunk = join(store, '.chunks', 'bb9f', 'bb9f8df6');
    const finding = diagnoseTouch(diagnosis({ store }), chunk, { ok: false, code: 'EACCES' }, {});
    expect(finding.code).toBe('UNREADABLE');
    expect(finding.path).toBe(join(store, '.chunks', 'bb9f'));
    expect(finding.remedy).toBe(`chown 34:1001 ${join(store, '.chunks', 'bb9f')} && chmod 0750 ${join(store, '.chunks', 'bb9f')}`);
  });
});

describe('unsafePath', () => {
  it('a symlink where a directory belongs', () => {
    const error = FsError.unsafe('/srv/backup/store/.chunks/bb9f', 'symlink', 'directory');
    const finding = unsafePath(error);
    expect(finding).toMatchObject({
      code: 'UNSAFE_PATH',
      severity: 'error',
      path: '/srv/backup/store/.chunks/bb9f',
      remedy: 'ls -la /srv/backup/store/.chunks/bb9f   # replace it with a real directory owned by the store owner',
      evidence: { found: 'symlink', expected: 'directory' },
    });
    expect(finding.message).toBe(
      '/srv/backup/store/.chunks/bb9f is a symlink where the store layout needs a directory; chunkguard does not follow it, and GC would read or write somewhere else',
    );
  });

  it('a special file where a chunk belongs, with a detail and a path that needs quoting', () => {
    const error = FsError.unsafe('/srv/my store/x', 'other', 'file');
    expect(error.code).toBe('EUNSAFEPATH');
    const finding = unsafePath(error);
    expect(finding.message.startsWith('/srv/my store/x is a special file where the store layout needs a regular file;')).toBe(true);
    expect(finding.remedy).toBe("ls -la '/srv/my store/x'   # replace it with a real chunk file owned by the store owner");
    expect(finding.evidence).toEqual({ found: 'other', expected: 'file' });
    expect(unsafePath(FsError.unsafe('/p', 'other', 'directory', 'was replaced')).message.startsWith('/p was replaced; ')).toBe(true);
  });
});

describe('zero-chunk findings name their size in words', () => {
  it('one byte is "1 byte", others "N bytes"', () => {
    expect(chunkCorrupt('/s/.chunks/bb9f/x', 1, 'too short').message).toContain('(1 byte) is corrupt');
    expect(chunkReplaced('/s/.chunks/bb9f/x', 1, 159).message).toContain('(1 byte) and has been replaced');
    expect(chunkCorrupt('/s/.chunks/bb9f/x', 12, 'too short').message).toContain('(12 bytes) is corrupt');
  });
});

