/**
 * walkIndexes on real stores from the writer: the server's marking order
 * (namespaces, groups, snapshots newest first), indexes outside the scheme,
 * hidden names, symlinks, FIFOs and directories named like indexes, names
 * that are not UTF-8, snapshots pruned during the walk, the store whose own
 * name is hidden, and, as root, directories the GC user (uid 34) cannot list
 * or enter while root reads them, lost+found, and a filesystem mounted inside.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkguardError } from '../../src/errors.js';
import { Dir } from '../../src/fs/dir.js';
import { type RelPath } from '../../src/fs/rel-path.js';
import { type IndexWalk, walkIndexes, type WalkHooks } from '../../src/gc/index-walk.js';
import { placeOf } from '../../src/gc/scheme.js';
import type { GcUser } from '../../src/system/access.js';
import { switchThreadTo } from '../../src/system/thread-credentials.js';
import { chunkOf, encodeIndex, type SnapshotSpec, snapshotRel, writePbsStore } from '../helpers/pbs-store.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, reachableTempDir } from '../helpers/store.js';

const ROOT: GcUser = { uid: 0, gid: 0, groups: [0] };
const BACKUP: GcUser = { uid: BACKUP_UID, gid: BACKUP_GID, groups: [BACKUP_GID] };
const BACKUP_OWNER = { uid: BACKUP_UID, gid: BACKUP_GID };

let tmp: string;
beforeAll(() => {
  tmp = reachableTempDir('chunkguard-gc-walk-');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let unique = 0;
const freshStore = (name = 'store') => join(tmp, `case-${unique++}`, name);

const data = (n: number, salt: string) => Array.from({ length: n }, (_, i) => Buffer.from(`chunk ${salt}${i}`));
const index = (name: string, salt = name) => ({ name, chunks: data(2, salt) });

/** walkIndexes on the store at `path`; the caller's root stays open and usable. */
function walk(path: string, user: GcUser = ROOT, hooks?: WalkHooks, signal?: AbortSignal): IndexWalk {
  const root = Dir.open(path);
  try {
    const result = walkIndexes(root, user, signal, hooks);
    expect(root.statSelf().mode & 0o170000).toBe(0o040000);
    return result;
  } finally {
    root.close();
  }
}

const relsOf = (items: Array<{ rel: RelPath }>) => items.map((item) => item.rel);

/** An index file's bytes written at `path` (outside what the writer's spec can place). */
function plantIndex(path: string, salt = path): void {
  const digests = data(1, salt).map((chunk) => chunkOf(chunk).digest);
  writeFileSync(path, encodeIndex({ kind: path.endsWith('.fidx') ? 'fixed' : 'dynamic', digests }));
}

const snapshot = (spec: Omit<SnapshotSpec, 'indexes'>, ...names: string[]): SnapshotSpec => ({ ...spec, indexes: names.map((name) => index(name, `${snapshotRel(spec)}/${name}`)) });

describe('walkIndexes: the scheme in the server\'s marking order', () => {
  it('root namespace first (groups by type and id, snapshots newest first, files by name), then namespaces depth first', () => {
    const store = freshStore();
    const record = writePbsStore(store, {
      snapshots: [
        snapshot({ ns: ['prod', 'db'], type: 'ct', id: '300', time: '2026-01-01T00:00:00Z' }, 'root.pxar.didx'),
        snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'drive-scsi0.img.fidx'),
        snapshot({ type: 'vm', id: '100', time: '2026-03-01T00:00:00Z' }, 'drive-scsi1.img.fidx', 'drive-scsi0.img.fidx'),
        snapshot({ type: 'vm', id: '100', time: '2026-02-01T00:00:00Z' }),
        snapshot({ type: 'ct', id: '200', time: '2025-01-01T00:00:00Z' }, 'root.pxar.didx', 'catalog.pcat1.didx'),
        snapshot({ ns: ['prod'], type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'drive-scsi0.img.fidx'),
        snapshot({ ns: ['alpha'], type: 'host', id: 'h', time: '2026-01-01T00:00:00Z' }, 'root.pxar.didx'),
        snapshot({ type: 'host', id: 'web', time: '2026-01-01T00:00:00Z' }, 'etc.pxar.didx'),
      ],
    });
    const result = walk(store);
    expect(relsOf(result.indexes)).toEqual([
      'ct/200/2025-01-01T00:00:00Z/catalog.pcat1.didx',
      'ct/200/2025-01-01T00:00:00Z/root.pxar.didx',
      'host/web/2026-01-01T00:00:00Z/etc.pxar.didx',
      'vm/100/2026-03-01T00:00:00Z/drive-scsi0.img.fidx',
      'vm/100/2026-03-01T00:00:00Z/drive-scsi1.img.fidx',
      'vm/100/2026-01-01T00:00:00Z/drive-scsi0.img.fidx',
      'ns/alpha/host/h/2026-01-01T00:00:00Z/root.pxar.didx',
      'ns/prod/vm/100/2026-01-01T00:00:00Z/drive-scsi0.img.fidx',
      'ns/prod/ns/db/ct/300/2026-01-01T00:00:00Z/root.pxar.didx',
    ]);
    expect(new Set(relsOf(result.indexes))).toEqual(new Set(relsOf(record.indexes)));
    // Every snapshot directory, the one without indexes too.
    expect(result.snapshots).toEqual([...record.snapshots].sort());
    expect(result.snapshots).toContain('vm/100/2026-02-01T00:00:00Z');
    expect(result).toMatchObject({ outsideScheme: 0, denied: [], unreadable: [], schemeStops: [], hiddenRoot: false, unread: [] });
    for (const found of result.indexes) {
      const written = record.indexes.find((item) => item.rel === found.rel)!;
      const size = statSync(join(store, String(found.rel))).size;
      expect(found).toEqual({ rel: written.rel, kind: written.kind, snapshot: placeOf(found.rel)!.snapshot, type: 'file', uid: process.geteuid!(), gid: process.getegid!(), mode: 0o100644, size });
    }
  });

  it('an empty store, and a directory with nothing in it, have nothing to read', () => {
    const store = freshStore();
    writePbsStore(store, { snapshots: [] });
    const empty = freshStore();
    mkdirSync(empty, { recursive: true });
    for (const path of [store, empty]) {
      expect(walk(path)).toEqual({ indexes: [], outsideScheme: 0, snapshots: [], denied: [], unreadable: [], schemeStops: [], hiddenRoot: false, unread: [] });
    }
  });

  it('stops when the signal fires', () => {
    const store = freshStore();
    writePbsStore(store, { snapshots: [snapshot({ type: 'vm', id: '1', time: '2026-01-01T00:00:00Z' }, 'a.fidx')] });
    const controller = new AbortController();
    controller.abort(new Error('operator'));
    let caught: unknown;
    try {
      walk(store, ROOT, {}, controller.signal);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ChunkguardError);
    expect(caught).toMatchObject({ code: 'EABORT' });
  });
});

describe('walkIndexes: what the whole-store walk adds', () => {
  it('indexes outside the scheme are read after it, sorted by path, and counted', () => {
    const store = freshStore();
    const record = writePbsStore(store, {
      snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'drive-scsi0.img.fidx')],
      outside: [
        { dir: 'vm/100/notatime', ...index('x.fidx') },
        { dir: 'stray', ...index('a.didx') },
        { dir: '', ...index('root.fidx') },
        { dir: 'vm/100', ...index('in-group.didx') },
        { dir: 'vm/100/2026-01-01T00:00:00Z/sub', ...index('deeper.fidx') },
        { dir: 'ns/a/ns/b/ns/c/ns/d/ns/e/ns/f/ns/g/ns/h/vm/1/2026-01-01T00:00:00Z', ...index('eight-deep.fidx') },
        { dir: 'ns', ...index('in-ns.didx') },
        { dir: 'lxc/1/2026-01-01T00:00:00Z', ...index('unknown-type.fidx') },
      ],
    });
    const result = walk(store);
    const outside = [...record.outside].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(relsOf(result.indexes)).toEqual(['vm/100/2026-01-01T00:00:00Z/drive-scsi0.img.fidx', ...outside]);
    expect(result.outsideScheme).toBe(8);
    for (const found of result.indexes.slice(1)) {
      expect(found.snapshot).toBeUndefined();
      expect(placeOf(found.rel)).toBeUndefined();
    }
    // A namespace eight deep is not the scheme's, nor is its snapshot.
    expect(result.snapshots).toEqual(['vm/100/2026-01-01T00:00:00Z']);
  });

  it('skips hidden names and what is below them (.chunks too), but not a hidden-looking name that is not UTF-8; a hidden index in a snapshot is the scheme\'s', () => {
    const store = freshStore();
    writePbsStore(store, {
      snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'drive-scsi0.img.fidx', '.hidden.fidx')],
      outside: [
        { dir: '.hidden', ...index('x.fidx') },
        { dir: 'stray/.also-hidden', ...index('y.didx') },
        { dir: '.chunks/abcd', ...index('z.fidx') },
        { dir: 'stray', ...index('.dotted.fidx') },
      ],
    });
    const notUtf8 = Buffer.from('.\xff', 'latin1');
    mkdirSync(Buffer.concat([Buffer.from(`${store}/`), notUtf8]));
    writeFileSync(Buffer.concat([Buffer.from(`${store}/`), notUtf8, Buffer.from('/w.fidx')]), encodeIndex({ kind: 'fixed', digests: [chunkOf(Buffer.from('w')).digest] }));
    const result = walk(store);
    expect(relsOf(result.indexes)).toEqual([
      'vm/100/2026-01-01T00:00:00Z/.hidden.fidx',
      'vm/100/2026-01-01T00:00:00Z/drive-scsi0.img.fidx',
      Buffer.concat([notUtf8, Buffer.from('/w.fidx')]),
    ]);
    expect(result.indexes[0]!.snapshot).toBe('vm/100/2026-01-01T00:00:00Z');
    expect(result.outsideScheme).toBe(1);
  });

  it('lists a symlink, a FIFO and a directory named like an index by what they are, follows no symlink and opens no FIFO', () => {
    const store = freshStore();
    const snap = 'vm/100/2026-01-01T00:00:00Z';
    writePbsStore(store, { snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'drive-scsi0.img.fidx')] });
    const elsewhere = join(tmp, `elsewhere-${unique++}`);
    mkdirSync(elsewhere);
    plantIndex(join(elsewhere, 'target.fidx'));
    symlinkSync(join(elsewhere, 'target.fidx'), join(store, snap, 'link.fidx'));
    symlinkSync(elsewhere, join(store, 'linked-dir'));
    symlinkSync(join(elsewhere, 'missing.didx'), join(store, 'dangling.didx'));
    execFileSync('mkfifo', [join(store, snap, 'pipe.didx')]);
    mkdirSync(join(store, 'dir.fidx'));
    plantIndex(join(store, 'dir.fidx', 'inner.didx'));
    const result = walk(store);
    expect(result.indexes.map((found) => [found.rel, found.type, found.snapshot])).toEqual([
      [`${snap}/drive-scsi0.img.fidx`, 'file', snap],
      // The snapshot's listing keeps regular files only: these are read after the scheme.
      ['dangling.didx', 'symlink', undefined],
      ['dir.fidx', 'directory', undefined],
      ['dir.fidx/inner.didx', 'file', undefined],
      [`${snap}/link.fidx`, 'symlink', undefined],
      [`${snap}/pipe.didx`, 'fifo', undefined],
    ]);
    expect(result.indexes.find((found) => found.rel === `${snap}/link.fidx`)!.mode & 0o170000).toBe(0o120000);
    expect(result.outsideScheme).toBe(5);
  });

  it('names that are not UTF-8 stay bytes; in a snapshot such an index is outside the scheme', () => {
    const store = freshStore();
    const snap = 'vm/100/2026-01-01T00:00:00Z';
    writePbsStore(store, { snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')] });
    const bad = Buffer.from('\xe9t\xe9.fidx', 'latin1');
    const path = (dir: string) => Buffer.concat([Buffer.from(`${store}/${dir}/`), bad]);
    writeFileSync(path(snap), encodeIndex({ kind: 'fixed', digests: [chunkOf(Buffer.from('x')).digest] }));
    mkdirSync(join(store, 'stray'));
    writeFileSync(path('stray'), encodeIndex({ kind: 'fixed', digests: [chunkOf(Buffer.from('y')).digest] }));
    const result = walk(store);
    expect(relsOf(result.indexes)).toEqual([`${snap}/a.fidx`, Buffer.concat([Buffer.from('stray/'), bad]), Buffer.concat([Buffer.from(`${snap}/`), bad])]);
    expect(Buffer.isBuffer(result.indexes[1]!.rel)).toBe(true);
    expect(result.indexes[2]!.snapshot).toBeUndefined();
  });

  it('skips a snapshot pruned while the walk runs: before its entry is looked at, and after', () => {
    const store = freshStore();
    const times = ['2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z'];
    writePbsStore(store, { snapshots: times.map((time) => snapshot({ type: 'vm', id: '100', time }, 'a.fidx', 'b.didx')) });
    const removed: string[] = [];
    const prune = (time: string) => {
      rmSync(join(store, 'vm/100', time), { recursive: true });
      removed.push(time);
    };
    const result = walk(store, ROOT, {
      listed: (rel) => {
        // Listing the group: the oldest goes before its entry is stat'ed.
        if (rel === 'vm/100') prune(times[0]!);
        // Listing the middle one (its siblings are known by then): the newest goes before it is opened.
        if (rel === `vm/100/${times[1]}`) prune(times[2]!);
      },
    });
    expect(removed).toEqual([times[0], times[2]]);
    expect(relsOf(result.indexes)).toEqual([`vm/100/${times[1]}/a.fidx`, `vm/100/${times[1]}/b.didx`]);
    expect(result).toMatchObject({ denied: [], unreadable: [], outsideScheme: 0 });
  });
});

describe('walkIndexes: names the scheme\'s listings stop at', () => {
  it('a bad namespace name (a hidden one too), a snapshot time out of range, and an ns that is a file or a FIFO, in marking order', () => {
    const store = freshStore();
    writePbsStore(store, {
      snapshots: [
        snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx'),
        snapshot({ ns: ['prod'], type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx'),
        snapshot({ ns: ['test'], type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx'),
      ],
      outside: [
        { dir: 'vm/100/2026-13-01T00:00:00Z', ...index('bad-time.fidx') },
        { dir: 'ns/bad name/vm/1/2026-01-01T00:00:00Z', ...index('x.fidx') },
      ],
    });
    mkdirSync(join(store, 'ns/.hidden'));
    writeFileSync(join(store, 'ns/prod/ns'), 'not a directory');
    execFileSync('mkfifo', [join(store, 'ns/test/ns')]);
    // A symlinked ns is followed by the server and not here: no stop.
    mkdirSync(join(store, 'ns/zeta'));
    symlinkSync(tmp, join(store, 'ns/zeta/ns'));
    const result = walk(store);
    expect(result.schemeStops.map((stop) => [stop.rel, stop.code, stop.type])).toEqual([
      ['vm/100/2026-13-01T00:00:00Z', 'BAD_SNAPSHOT_TIME', undefined],
      ['ns/.hidden', 'BAD_NAMESPACE', undefined],
      ['ns/bad name', 'BAD_NAMESPACE', undefined],
      ['ns/prod/ns', 'NOT_A_DIRECTORY', 'file'],
      ['ns/test/ns', 'NOT_A_DIRECTORY', 'fifo'],
    ]);
    expect(result.schemeStops[4]!.reason).toMatch(/GC hangs/);
    // What is below a refused name is still walked, outside the scheme.
    expect(relsOf(result.indexes).slice(3)).toEqual(['ns/bad name/vm/1/2026-01-01T00:00:00Z/x.fidx', 'vm/100/2026-13-01T00:00:00Z/bad-time.fidx']);
    expect(result.outsideScheme).toBe(2);
  });
});

describe('walkIndexes: a store whose own name starts with a dot', () => {
  it('gets no whole-store walk: the scheme is read, indexes outside it are not (unread), and only scheme directories are judged', () => {
    const store = freshStore('.hidden-store');
    writePbsStore(store, {
      snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')],
      outside: [
        { dir: 'stray', ...index('a.didx') },
        { dir: 'vm/100/2026-01-01T00:00:00Z', ...{ ...index('x'), name: '.hidden.fidx' } },
      ],
      owner: BACKUP_OWNER,
    });
    const result = walk(store, BACKUP);
    expect(result.hiddenRoot).toBe(true);
    expect(relsOf(result.indexes)).toEqual(['vm/100/2026-01-01T00:00:00Z/.hidden.fidx', 'vm/100/2026-01-01T00:00:00Z/a.fidx']);
    expect(result.outsideScheme).toBe(0);
    expect(relsOf(result.unread)).toEqual(['stray/a.didx']);
    // Rust normalises a trailing `/.` away: still hidden. A path ending in `..` has no name: not hidden.
    expect(walk(`${store}/.`, BACKUP).hiddenRoot).toBe(true);
    expect(walk(`${store}/vm/..`, BACKUP)).toMatchObject({ hiddenRoot: false, outsideScheme: 1, unread: [] });
  });
});

describeAsRoot('walkIndexes: judged for the GC user', () => {
  const owned = (spec: Parameters<typeof writePbsStore>[1]) => {
    const store = freshStore();
    return { store, record: writePbsStore(store, { ...spec, owner: BACKUP_OWNER }) };
  };

  it('a 0700 root:root snapshot directory is denied to uid 34 and read by root, and nothing below it is judged again', () => {
    const { store } = owned({
      snapshots: [
        snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx', 'b.didx'),
        snapshot({ type: 'vm', id: '100', time: '2026-02-01T00:00:00Z' }, 'a.fidx'),
      ],
    });
    const locked = join(store, 'vm/100/2026-01-01T00:00:00Z');
    chownSync(locked, 0, 0);
    chmodSync(locked, 0o700);
    mkdirSync(join(locked, 'inner'), { mode: 0o700 });
    const asBackup = walk(store, BACKUP);
    expect(asBackup.denied).toEqual([{ rel: 'vm/100/2026-01-01T00:00:00Z', errno: 'EACCES', uid: 0, gid: 0, mode: 0o040700, lacks: 'read', listed: true }]);
    // Root read what the GC user cannot: the report can say so.
    expect(relsOf(asBackup.indexes)).toEqual(['vm/100/2026-02-01T00:00:00Z/a.fidx', 'vm/100/2026-01-01T00:00:00Z/a.fidx', 'vm/100/2026-01-01T00:00:00Z/b.didx']);
    const asRoot = walk(store, ROOT);
    expect(asRoot.denied).toEqual([]);
    expect(asRoot.indexes).toEqual(asBackup.indexes);
  });

  it('a directory the GC user can list but not enter is denied when GC opens something in it (always for a namespace)', () => {
    const { store } = owned({
      snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')],
      outside: [{ dir: 'stray', ...index('a.didx') }],
    });
    mkdirSync(join(store, 'notes'));
    writeFileSync(join(store, 'notes/readme.txt'), 'no index here');
    // An empty namespace: the server still looks up its ns/ there.
    mkdirSync(join(store, 'ns/empty'), { recursive: true });
    for (const dir of ['vm/100/2026-01-01T00:00:00Z', 'stray', 'notes', 'ns/empty']) {
      chownSync(join(store, dir), 0, 0);
      chmodSync(join(store, dir), 0o744);
    }
    const result = walk(store, BACKUP);
    expect(result.denied.map((stop) => [stop.rel, stop.lacks, stop.mode])).toEqual([
      ['ns/empty', 'search', 0o040744],
      ['stray', 'search', 0o040744],
      ['vm/100/2026-01-01T00:00:00Z', 'search', 0o040744],
    ]);
  });

  it('lost+found right below the root is left out when the GC user cannot list it (the server skips it), deeper it is denied', () => {
    const { store } = owned({ snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')] });
    for (const dir of ['lost+found', 'stray/lost+found']) {
      mkdirSync(join(store, dir), { recursive: true, mode: 0o700 });
      plantIndex(join(store, dir, 'found.fidx'));
    }
    chownSync(join(store, 'stray'), BACKUP_UID, BACKUP_GID);
    const result = walk(store, BACKUP);
    expect(result.denied.map((stop) => stop.rel)).toEqual(['stray/lost+found']);
    expect(relsOf(result.indexes)).toEqual(['vm/100/2026-01-01T00:00:00Z/a.fidx', 'stray/lost+found/found.fidx']);
    // One the GC user can read is walked like any other directory.
    chownSync(join(store, 'lost+found'), BACKUP_UID, BACKUP_GID);
    expect(relsOf(walk(store, BACKUP).indexes)).toContain('lost+found/found.fidx');
  });

  it('a directory chunkguard itself cannot list is denied and not listed', () => {
    const { store } = owned({ snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')], outside: [{ dir: 'stray', ...index('a.didx') }] });
    chownSync(join(store, 'stray'), 0, 0);
    chmodSync(join(store, 'stray'), 0o700);
    const back = switchThreadTo({ uid: BACKUP_UID, gid: BACKUP_GID, groups: [BACKUP_GID] });
    let result: IndexWalk;
    try {
      result = walk(store, BACKUP);
    } finally {
      back();
    }
    expect(result.denied).toEqual([{ rel: 'stray', errno: 'EACCES', uid: 0, gid: 0, mode: 0o040700, lacks: 'read', listed: false }]);
    expect(relsOf(result.indexes)).toEqual(['vm/100/2026-01-01T00:00:00Z/a.fidx']);
  });

  it('a hidden store: a denied directory outside the scheme is not judged (GC never opens it), a denied snapshot is', () => {
    const store = freshStore('.store');
    writePbsStore(store, {
      snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')],
      outside: [{ dir: 'stray', ...index('a.didx') }],
      owner: BACKUP_OWNER,
    });
    for (const dir of ['stray', 'vm/100/2026-01-01T00:00:00Z']) {
      chownSync(join(store, dir), 0, 0);
      chmodSync(join(store, dir), 0o700);
    }
    const result = walk(store, BACKUP);
    expect(result.denied.map((stop) => stop.rel)).toEqual(['vm/100/2026-01-01T00:00:00Z']);
    expect(relsOf(result.unread)).toEqual(['stray/a.didx']);
  });

  it('crosses into a filesystem mounted inside the store, as the server\'s walk does', () => {
    const { store } = owned({ snapshots: [snapshot({ type: 'vm', id: '100', time: '2026-01-01T00:00:00Z' }, 'a.fidx')] });
    const mountPoint = join(store, 'stray/mnt');
    const snapshotMount = join(store, 'vm/100/2026-02-01T00:00:00Z');
    mkdirSync(mountPoint, { recursive: true });
    mkdirSync(snapshotMount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'chunkguard-test', mountPoint]);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'chunkguard-test', snapshotMount]);
      try {
        plantIndex(join(mountPoint, 'mounted.fidx'));
        plantIndex(join(snapshotMount, 'b.fidx'));
        const result = walk(store, BACKUP);
        expect(relsOf(result.indexes)).toEqual(['vm/100/2026-02-01T00:00:00Z/b.fidx', 'vm/100/2026-01-01T00:00:00Z/a.fidx', 'stray/mnt/mounted.fidx']);
      } finally {
        execFileSync('umount', [snapshotMount]);
      }
    } finally {
      execFileSync('umount', [mountPoint]);
    }
  });
});
