import { describe, expect, it } from 'vitest';
import { canRead, canTouch, isPrivileged, type GcUser } from '../../src/system/access.js';
import { classify, ISSUE, type ClassifyContext, type Role } from '../../src/audit/classify.js';
import { BURST_GAP_MS, BurstTracker, formatWindow, isoSeconds, OwnerTallies, type OwnerTally } from '../../src/audit/tally.js';
import { STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE } from '../../src/fs/stat.js';

const FILE = 0o100000;
const DIR = 0o040000;
const LINK = 0o120000;
const FIFO = 0o010000;
const SOCKET = 0o140000;

const BACKUP: GcUser = { uid: 34, gid: 34, groups: [34], name: 'backup' };
const ROOT: GcUser = { uid: 0, gid: 0, groups: [0], name: 'root' };
const IDENTITY = { identity: true, overflowUid: 65534, overflowGid: 65534 };
const USERNS = { identity: false, overflowUid: 65534, overflowGid: 65534 };

const ctx = (overrides: Partial<ClassifyContext> = {}): ClassifyContext => ({
  expected: { uid: 34, gid: 34 },
  gcUser: BACKUP,
  namespace: IDENTITY,
  ...overrides,
});

/** The names of the ISSUE bits set, for readable failures. */
function issues(bits: number): string[] {
  return Object.entries(ISSUE)
    .filter(([, bit]) => (bits & bit) !== 0)
    .map(([name]) => name)
    .sort();
}

describe('classify', () => {
  it('ISSUE bits are distinct single bits', () => {
    const bits = Object.values(ISSUE);
    expect(new Set(bits).size).toBe(bits.length);
    for (const bit of bits) expect(bit & (bit - 1)).toBe(0);
  });

  it('a chunk with the right owner and mode has no issue', () => {
    expect(classify(FILE | 0o640, 34, 34, 0, 'chunk', ctx())).toBe(0);
    expect(classify(DIR | 0o750, 34, 34, 0, 'prefix-dir', ctx())).toBe(0);
    expect(classify(DIR | 0o750, 34, 34, 0, 'chunks-dir', ctx())).toBe(0);
    expect(classify(FILE | 0o640, 34, 34, 0, 'other', ctx())).toBe(0);
    expect(classify(FILE | 0o640, 34, 34, 0, 'blob', ctx())).toBe(0);
  });

  it('a foreign uid or gid is FOREIGN; a foreign-owned chunk is not also UNTOUCHABLE', () => {
    expect(issues(classify(FILE | 0o644, 0, 34, 0, 'chunk', ctx()))).toEqual(['FOREIGN']);
    expect(issues(classify(FILE | 0o644, 34, 0, 0, 'chunk', ctx()))).toEqual(['FOREIGN']);
    expect(issues(classify(DIR | 0o755, 1000, 1000, 0, 'prefix-dir', ctx()))).toEqual(['FOREIGN']);
  });

  it('the overflow uid in a non-identity namespace is NOT_MAPPED, not FOREIGN', () => {
    expect(issues(classify(FILE | 0o644, 65534, 34, 0, 'chunk', ctx({ namespace: USERNS })))).toEqual(['NOT_MAPPED']);
    expect(issues(classify(FILE | 0o644, 34, 65534, 0, 'chunk', ctx({ namespace: USERNS })))).toEqual(['NOT_MAPPED']);
  });

  it('the overflow uid in the initial namespace is a real uid: FOREIGN', () => {
    expect(issues(classify(FILE | 0o644, 65534, 65534, 0, 'chunk', ctx()))).toEqual(['FOREIGN']);
  });

  it('the overflow uid is not NOT_MAPPED when it is the expected owner', () => {
    const expected = { uid: 65534, gid: 65534 };
    const gcUser: GcUser = { uid: 65534, gid: 65534, groups: [65534] };
    expect(classify(FILE | 0o640, 65534, 65534, 0, 'chunk', ctx({ expected, gcUser, namespace: USERNS }))).toBe(0);
  });

  it('a directory the GC user cannot list: UNREADABLE unless its group lets it in', () => {
    const dirRoot = (gcUser: GcUser) => classify(DIR | 0o750, 0, 34, 0, 'other', ctx({ expected: { uid: 0, gid: 34 }, gcUser }));
    // Group 34 has r-x: the backup user (in group 34) can list it.
    expect(dirRoot(BACKUP)).toBe(0);
    // A GC user not in group 34 falls to "other" (---).
    const outsider: GcUser = { uid: 1000, gid: 1000, groups: [1000] };
    expect(issues(dirRoot(outsider))).toEqual(['UNREADABLE']);
    // Supplementary membership counts.
    const member: GcUser = { uid: 1000, gid: 1000, groups: [1000, 34] };
    expect(dirRoot(member)).toBe(0);
  });

  it('a directory with r but no x for the GC user is UNREADABLE', () => {
    expect(issues(classify(DIR | 0o640, 0, 34, 0, 'other', ctx({ expected: { uid: 0, gid: 34 } })))).toEqual(['UNREADABLE']);
  });

  it('an unreadable file owned by someone else also carries FOREIGN', () => {
    expect(issues(classify(FILE | 0o600, 0, 0, 0, 'chunk', ctx()))).toEqual(['FOREIGN', 'UNREADABLE']);
  });

  it('a symlink in the layout is SYMLINK_IN_LAYOUT and nothing about its mode', () => {
    for (const role of ['chunk', 'prefix-dir', 'chunks-dir'] as Role[]) {
      expect(issues(classify(LINK | 0o777, 34, 34, 0, role, ctx()))).toEqual(['SYMLINK_IN_LAYOUT']);
    }
    // Its owner is still judged.
    expect(issues(classify(LINK | 0o777, 0, 0, 0, 'chunk', ctx()))).toEqual(['FOREIGN', 'SYMLINK_IN_LAYOUT']);
  });

  it('a symlink as a blob is NON_REGULAR; elsewhere it is fine', () => {
    expect(issues(classify(LINK | 0o777, 34, 34, 0, 'blob', ctx()))).toEqual(['NON_REGULAR']);
    expect(classify(LINK | 0o777, 34, 34, 0, 'other', ctx())).toBe(0);
  });

  it('a directory in the chunk role is NON_REGULAR', () => {
    expect(issues(classify(DIR | 0o750, 34, 34, 0, 'chunk', ctx()))).toEqual(['NON_REGULAR']);
  });

  it('a regular file where a prefix directory or .chunks belongs is NON_REGULAR', () => {
    expect(issues(classify(FILE | 0o640, 34, 34, 0, 'prefix-dir', ctx()))).toEqual(['NON_REGULAR']);
    expect(issues(classify(FILE | 0o640, 34, 34, 0, 'chunks-dir', ctx()))).toEqual(['NON_REGULAR']);
  });

  it('a special file is NON_REGULAR in any role', () => {
    for (const role of ['chunk', 'prefix-dir', 'chunks-dir', 'blob', 'other'] as Role[]) {
      expect(issues(classify(FIFO | 0o644, 34, 34, 0, role, ctx()))).toEqual(['NON_REGULAR']);
      expect(issues(classify(SOCKET | 0o755, 34, 34, 0, role, ctx()))).toEqual(['NON_REGULAR']);
    }
  });

  it('immutable (0x10) or append-only (0x20) is IMMUTABLE', () => {
    expect(STATX_ATTR_IMMUTABLE).toBe(0x10);
    expect(issues(classify(FILE | 0o640, 34, 34, 0x10, 'chunk', ctx()))).toEqual(['IMMUTABLE']);
    expect(issues(classify(FILE | 0o640, 34, 34, STATX_ATTR_APPEND, 'chunk', ctx()))).toEqual(['IMMUTABLE']);
    expect(issues(classify(DIR | 0o750, 34, 34, 0x10, 'prefix-dir', ctx()))).toEqual(['IMMUTABLE']);
    // Other attribute bits (compressed 0x4, nodump 0x40) are not.
    expect(classify(FILE | 0o640, 34, 34, 0x4 | 0x40, 'chunk', ctx())).toBe(0);
  });

  it('a chunk owned by the expected owner who is not the GC user is UNTOUCHABLE', () => {
    // Store owned by root:backup, GC runs as backup: readable through the group, but utimensat needs the owner.
    const rootStore = ctx({ expected: { uid: 0, gid: 34 } });
    expect(issues(classify(FILE | 0o640, 0, 34, 0, 'chunk', rootStore))).toEqual(['UNTOUCHABLE']);
    expect(issues(classify(FILE | 0o640, 0, 34, 0, 'blob', rootStore))).toEqual(['UNTOUCHABLE']);
    // Not for other roles (GC never touches indexes), and not for directories.
    expect(classify(FILE | 0o640, 0, 34, 0, 'other', rootStore)).toBe(0);
    expect(classify(DIR | 0o750, 0, 34, 0, 'prefix-dir', rootStore)).toBe(0);
    // A root GC user may touch anything.
    expect(classify(FILE | 0o600, 0, 34, 0, 'chunk', ctx({ expected: { uid: 0, gid: 34 }, gcUser: ROOT }))).toBe(0);
  });
});

describe('canRead', () => {
  const user: GcUser = { uid: 34, gid: 34, groups: [34, 100] };

  it('the owner triple applies to the owner, even when group or other would allow more', () => {
    expect(canRead(0o400, 34, 0, user, false)).toBe(true);
    expect(canRead(0o044, 34, 34, user, false)).toBe(false);
  });

  it('the group triple applies to a member of the group (primary or supplementary)', () => {
    expect(canRead(0o040, 0, 34, user, false)).toBe(true);
    expect(canRead(0o040, 0, 100, user, false)).toBe(true);
    expect(canRead(0o004, 0, 100, user, false)).toBe(false);
  });

  it('the other triple applies to everyone else', () => {
    expect(canRead(0o004, 0, 0, user, false)).toBe(true);
    expect(canRead(0o440, 0, 0, user, false)).toBe(false);
  });

  it('a file needs r only; a directory needs r and x', () => {
    expect(canRead(0o100, 34, 34, user, false)).toBe(false);
    expect(canRead(0o400, 34, 34, user, true)).toBe(false);
    expect(canRead(0o100, 34, 34, user, true)).toBe(false);
    expect(canRead(0o500, 34, 34, user, true)).toBe(true);
    expect(canRead(0o050, 0, 34, user, true)).toBe(true);
    expect(canRead(0o005, 0, 0, user, true)).toBe(true);
    expect(canRead(0o001, 0, 0, user, true)).toBe(false);
  });

  it('the file-type bits do not leak into the permission check', () => {
    expect(canRead(DIR | 0o000, 34, 34, user, true)).toBe(false);
    expect(canRead(FILE | 0o000, 34, 34, user, false)).toBe(false);
  });

  it('uid 0 can read anything', () => {
    expect(isPrivileged(ROOT)).toBe(true);
    expect(isPrivileged(user)).toBe(false);
    expect(canRead(0o000, 1000, 1000, ROOT, false)).toBe(true);
    expect(canRead(0o000, 1000, 1000, ROOT, true)).toBe(true);
  });
});

describe('canTouch', () => {
  it('only the owner or uid 0, whatever the mode or group', () => {
    expect(canTouch(34, BACKUP)).toBe(true);
    expect(canTouch(0, BACKUP)).toBe(false);
    expect(canTouch(1000, { uid: 1000, gid: 34, groups: [34] })).toBe(true);
    expect(canTouch(34, { uid: 1000, gid: 34, groups: [34] })).toBe(false);
    expect(canTouch(1000, ROOT)).toBe(true);
  });
});

describe('OwnerTallies', () => {
  it('add counts entries, directories and bytes per owner, with time bounds', () => {
    const tallies = new OwnerTallies();
    tallies.add(34, 34, 100, false, 5_000, 7_000);
    tallies.add(34, 34, 0, true, 1_000, 9_000);
    tallies.add(0, 0, 50, false, 3_000, 3_000);
    tallies.add(34, 34, 20, false, 8_000, 2_000);
    // Same uid, different gid is another owner.
    tallies.add(34, 0, 1, false, 4_000, 4_000);

    expect(tallies.byOwner.size).toBe(3);
    expect(tallies.byOwner.get('34:34')).toEqual({
      uid: 34, gid: 34, count: 3, directories: 1, bytes: 120, mtimeMin: 1_000, mtimeMax: 8_000, ctimeMin: 2_000, ctimeMax: 9_000,
    });
    expect(tallies.byOwner.get('0:0')).toMatchObject({ count: 1, directories: 0, bytes: 50, mtimeMin: 3_000, mtimeMax: 3_000 });
    expect(tallies.byOwner.get('34:0')).toMatchObject({ uid: 34, gid: 0, count: 1, bytes: 1 });
  });

  it('merge adds counts and widens the bounds; a new owner is copied, not shared', () => {
    const worker = new OwnerTallies();
    worker.add(34, 34, 10, false, 2_000, 2_000);
    worker.add(1000, 1000, 5, false, 100, 100);
    const sent = worker.drain();

    const main = new OwnerTallies();
    main.add(34, 34, 1, true, 5_000, 500);
    main.merge(sent);
    main.merge(sent);

    expect(main.byOwner.get('34:34')).toEqual({
      uid: 34, gid: 34, count: 3, directories: 1, bytes: 21, mtimeMin: 2_000, mtimeMax: 5_000, ctimeMin: 500, ctimeMax: 2_000,
    });
    expect(main.byOwner.get('1000:1000')).toMatchObject({ count: 2, bytes: 10 });
    // Merging twice doubled main's tally, not the one that was sent.
    const sent1000 = sent.find((tally) => tally.uid === 1000)!;
    expect(sent1000.count).toBe(1);
    main.add(1000, 1000, 1, false, 0, 0);
    expect(sent1000.count).toBe(1);
  });

  it('drain hands everything over and starts afresh', () => {
    const tallies = new OwnerTallies();
    tallies.add(34, 34, 10, false, 1, 1);
    tallies.add(0, 0, 10, false, 1, 1);
    const first = tallies.drain();
    expect(first.map((tally) => `${tally.uid}:${tally.gid}`).sort()).toEqual(['0:0', '34:34']);
    expect(tallies.byOwner.size).toBe(0);
    expect(tallies.drain()).toEqual([]);

    // The next add of the same owner (the cached last one) starts a new tally; the drained one is left alone.
    tallies.add(0, 0, 3, false, 9, 9);
    const drained00 = first.find((tally) => tally.uid === 0) as OwnerTally;
    expect(drained00.count).toBe(1);
    expect(drained00.bytes).toBe(10);
    expect(tallies.byOwner.get('0:0')).toMatchObject({ count: 1, bytes: 3, mtimeMin: 9, mtimeMax: 9 });
  });

  it('interleaved owners are each counted in full', () => {
    const tallies = new OwnerTallies();
    for (let i = 0; i < 10; i++) tallies.add(i % 2, i % 2, 1, false, i, i);
    expect(tallies.byOwner.get('0:0')?.count).toBe(5);
    expect(tallies.byOwner.get('1:1')?.count).toBe(5);
  });
});

describe('BurstTracker', () => {
  const T0 = Date.UTC(2026, 0, 31, 18, 0, 0);

  it('entries within a minute of each other form one burst, also across minute buckets', () => {
    const tracker = new BurstTracker();
    tracker.add(T0 + 59_000);
    tracker.add(T0 + 61_000);
    tracker.add(T0 + 100_000);
    tracker.add(T0 + 30_000);
    expect(tracker.bursts()).toEqual([{ from: isoSeconds(T0 + 30_000), to: isoSeconds(T0 + 100_000), count: 4 }]);
  });

  it('a gap of more than a minute splits', () => {
    const tracker = new BurstTracker();
    tracker.add(T0);
    tracker.add(T0 + 10_000);
    tracker.add(T0 + 10_000 + BURST_GAP_MS + 1);
    expect(tracker.bursts()).toEqual([
      { from: '2026-01-31T18:00:00Z', to: '2026-01-31T18:00:10Z', count: 2 },
      { from: '2026-01-31T18:01:10Z', to: '2026-01-31T18:01:10Z', count: 1 },
    ]);
  });

  it('a gap of exactly a minute joins', () => {
    expect(BURST_GAP_MS).toBe(60_000);
    const tracker = new BurstTracker();
    tracker.add(T0 + 10_000);
    tracker.add(T0 + 10_000 + BURST_GAP_MS);
    expect(tracker.bursts()).toEqual([{ from: '2026-01-31T18:00:10Z', to: '2026-01-31T18:01:10Z', count: 2 }]);
  });

  it('a chain of short gaps is one burst even when it spans many minutes', () => {
    const tracker = new BurstTracker();
    for (let i = 0; i <= 10; i++) tracker.add(T0 + i * 50_000);
    expect(tracker.bursts()).toEqual([{ from: isoSeconds(T0), to: isoSeconds(T0 + 500_000), count: 11 }]);
  });

  it('an empty minute bucket between two separated ones does not join them', () => {
    const tracker = new BurstTracker();
    tracker.add(T0 + 1_000); // minute 0
    tracker.add(T0 + 179_000); // minute 2: 178 s later
    expect(tracker.bursts()).toHaveLength(2);
  });

  it('bursts() can be called twice with the same result', () => {
    const tracker = new BurstTracker();
    tracker.add(T0 + 30_000);
    tracker.add(T0 + 80_000);
    tracker.add(T0 + 300_000);
    const first = tracker.bursts();
    expect(tracker.bursts()).toEqual(first);
    expect(first.map((burst) => burst.count)).toEqual([2, 1]);
  });

  it('no entries, no bursts', () => {
    expect(new BurstTracker().bursts()).toEqual([]);
    expect(new BurstTracker().overflowed).toBe(false);
  });
});

describe('isoSeconds and formatWindow', () => {
  it('isoSeconds drops the milliseconds (rounding down)', () => {
    expect(isoSeconds(Date.UTC(2026, 0, 31, 18, 0, 31, 999))).toBe('2026-01-31T18:00:31Z');
    expect(isoSeconds(Date.UTC(2026, 0, 31, 18, 0, 31, 0))).toBe('2026-01-31T18:00:31Z');
    expect(isoSeconds(0)).toBe('1970-01-01T00:00:00Z');
  });

  it('formatWindow: one time, the same day, different days', () => {
    expect(formatWindow('2026-01-31T18:00:31Z', '2026-01-31T18:00:31Z')).toBe('2026-01-31T18:00:31Z');
    expect(formatWindow('2026-01-31T18:00:31Z', '2026-01-31T18:00:33Z')).toBe('2026-01-31T18:00:31Z .. 18:00:33Z');
    expect(formatWindow('2026-01-31T23:59:59Z', '2026-02-01T00:00:01Z')).toBe('2026-01-31T23:59:59Z .. 2026-02-01T00:00:01Z');
  });
});
