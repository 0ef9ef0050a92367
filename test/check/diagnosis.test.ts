/** Every way the check fails, produced for real, with the finding an operator would act on. */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { runCli, runJson } from '../helpers/cli.js';
import { type FuseMount, mountAtimefs } from '../helpers/fuse.js';
import { mountFs, type Mounted } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { describeIfKernel } from '../helpers/kernel.js';
import { BACKUP_GID, BACKUP_UID, makeStore, plantZeroChunk, treeState, zeroChunkPathIn } from '../helpers/store.js';

type Finding = { code: string; severity: string; message: string; path?: string; remedy?: string; evidence?: any };
const errors = (report: { findings: Finding[] }) => report.findings.filter((f) => f.severity === 'error');

describeIfKernel('ext4', 'check diagnosis on ext4', () => {
  let fs: Mounted;
  let n = 0;
  let store: string;
  beforeAll(() => {
    fs = mountFs('ext4');
  });
  afterAll(() => fs?.unmount());
  beforeEach(() => {
    store = makeStore(join(fs.mountPoint, `store${++n}`));
  });

  it('seed 002: a root-owned zero chunk in a store owned by uid 34 is TOUCH_EPERM_WRONG_OWNER, as root and as uid 34, and nothing changes', async () => {
    const chunk = await plantZeroChunk(store, { uid: 0, gid: 0 });
    const old = new Date(Date.now() - 3600_000);
    utimesSync(chunk, old, old);
    const before = treeState(store);

    for (const args of [[], ['--as-user', 'backup'], ['--as-user', '34:34']]) {
      const { code, report } = runJson(['check', store, ...args]);
      expect(code).toBe(1);
      expect(report.ok).toBe(false);
      const [finding] = errors(report);
      expect(finding?.code).toBe('TOUCH_EPERM_WRONG_OWNER');
      expect(finding?.message).toContain('owned by uid 0 (root) while the touch runs as uid 34 (backup) without CAP_FOWNER');
      expect(finding?.remedy).toBe(`chown 34:34 ${chunk}`);
      expect(finding?.evidence).toMatchObject({ errno: 'EPERM', owner: { uid: 0, name: 'root' }, touchedAs: { uid: 34, name: 'backup' } });
      expect(report.chunkAction).toBe('kept-untouched');
      expect(treeState(store)).toEqual(before);
    }

    // The human output: verdict first, then the finding and its fix.
    const human = runCli(['check', store]);
    expect(human.code).toBe(1);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^UNSAFE: ext4 at .* for uid 34 \(backup\): TOUCH_EPERM_WRONG_OWNER: /);
    expect(human.stdout).toContain(`fix:  chown 34:34 ${chunk}`);
    expect(human.stdout).toContain('chunk kept, its touch failed');
    // The message once: in the verdict line, not again in the list.
    const message = errors(runJson(['check', store]).report)[0]!.message;
    expect(human.stdout.split(message)).toHaveLength(2);
    expect(lines).toContain('  error TOUCH_EPERM_WRONG_OWNER (above)');
    expect(human.stdout).not.toContain('chunk touched');

    // The remedy works: after it, the same check passes.
    chownSync(chunk, BACKUP_UID, BACKUP_GID);
    expect(runJson(['check', store]).code).toBe(0);
  });

  it('checking as root passes only through CAP_FOWNER, and says so', async () => {
    await plantZeroChunk(store, { uid: 0, gid: 0 });
    const { code, report } = runJson(['check', store, '--as-user', 'root']);
    expect(code).toBe(0);
    expect(report.touchedAs).toMatchObject({ uid: 0, capFowner: true, reason: 'requested' });
    expect(report.findings.map((f: Finding) => f.code)).toContain('RAN_WITH_CAP_FOWNER');
  });

  it('chattr +i on the chunk is TOUCH_EPERM_IMMUTABLE, even as root', async () => {
    const chunk = await plantZeroChunk(store, { uid: BACKUP_UID, gid: BACKUP_GID });
    execFileSync('chattr', ['+i', chunk]);
    try {
      for (const args of [[], ['--as-user', 'root']]) {
        const { code, report } = runJson(['check', store, ...args]);
        expect(code).toBe(1);
        expect(errors(report)[0]).toMatchObject({ code: 'TOUCH_EPERM_IMMUTABLE', remedy: `chattr -i ${chunk}`, path: chunk });
      }
    } finally {
      execFileSync('chattr', ['-i', chunk]);
    }
  });

  it('chattr +a (append-only) is TOUCH_EPERM_IMMUTABLE with chattr -a', async () => {
    const chunk = await plantZeroChunk(store, { uid: BACKUP_UID, gid: BACKUP_GID });
    execFileSync('chattr', ['+a', chunk]);
    try {
      const { report } = runJson(['check', store]);
      expect(errors(report)[0]).toMatchObject({ code: 'TOUCH_EPERM_IMMUTABLE', remedy: `chattr -a ${chunk}` });
    } finally {
      execFileSync('chattr', ['-a', chunk]);
    }
  });

  it('a non-root GC user without write access to the prefix directory is CHUNK_DIR_NOT_WRITABLE', () => {
    const prefix = join(store, '.chunks', 'bb9f');
    chownSync(prefix, 0, 0);
    chmodSync(prefix, 0o755);
    const { code, report } = runJson(['check', store, '--as-user', 'backup']);
    expect(code).toBe(1);
    const [finding] = errors(report);
    expect(finding).toMatchObject({ code: 'CHUNK_DIR_NOT_WRITABLE', path: prefix });
    expect(finding?.message).toContain('uid 34 (backup) cannot create files in');
    expect(finding?.evidence).toMatchObject({ owner: 0, mode: '0755', triedAs: { uid: 34 } });
    expect(finding?.remedy).toBe(`chown 34:34 ${prefix} && chmod 0750 ${prefix}`);
    expect(readdirSync(prefix)).toEqual([]);
  });

  it('a GC user that cannot search a store directory is UNREADABLE, naming it', () => {
    const chunks = join(store, '.chunks');
    chownSync(chunks, 0, 0);
    chmodSync(chunks, 0o700);
    const { code, report } = runJson(['check', store, '--as-user', 'backup']);
    expect(code).toBe(1);
    expect(errors(report)[0]).toMatchObject({ code: 'UNREADABLE', path: chunks });
  });

  it('.chunks as a symlink is UNSAFE_PATH and nothing is written where it points', () => {
    const elsewhere = join(fs.mountPoint, `elsewhere${n}`);
    mkdirSync(join(elsewhere, 'bb9f'), { recursive: true });
    rmSync(join(store, '.chunks'), { recursive: true });
    symlinkSync(elsewhere, join(store, '.chunks'));
    const { code, report } = runJson(['check', store, '--as-user', 'root']);
    expect(code).toBe(1);
    expect(errors(report)[0]).toMatchObject({ code: 'UNSAFE_PATH', path: join(store, '.chunks') });
    expect(readdirSync(join(elsewhere, 'bb9f'))).toEqual([]);
  });

  it('a prefix directory that is a symlink is UNSAFE_PATH', () => {
    const elsewhere = join(fs.mountPoint, `elsewhere${n}`);
    mkdirSync(elsewhere);
    const prefix = join(store, '.chunks', 'bb9f');
    rmSync(prefix, { recursive: true });
    symlinkSync(elsewhere, prefix);
    const { code, report } = runJson(['check', store, '--as-user', 'root']);
    expect(code).toBe(1);
    expect(errors(report)[0]).toMatchObject({ code: 'UNSAFE_PATH', path: prefix });
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('a symlink at the chunk path is UNSAFE_PATH and its target is neither touched nor replaced', () => {
    const outside = join(fs.mountPoint, `outside${n}`);
    writeFileSync(outside, 'not a chunk');
    const old = new Date('2021-01-01T00:00:00Z');
    utimesSync(outside, old, old);
    symlinkSync(outside, zeroChunkPathIn(store));
    const { code, report } = runJson(['check', store, '--as-user', 'root']);
    expect(code).toBe(1);
    expect(errors(report)[0]).toMatchObject({ code: 'UNSAFE_PATH', path: zeroChunkPathIn(store) });
    expect(statSync(outside).atimeMs).toBe(old.getTime());
    expect(lstatSync(zeroChunkPathIn(store)).isSymbolicLink()).toBe(true);
  });

  it('a directory at the chunk path is UNSAFE_PATH', () => {
    mkdirSync(zeroChunkPathIn(store));
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(1);
    expect(errors(report)[0]).toMatchObject({ code: 'UNSAFE_PATH' });
  });

  it('an empty pre-existing chunk is replaced and reported', async () => {
    writeFileSync(zeroChunkPathIn(store), '');
    chownSync(zeroChunkPathIn(store), BACKUP_UID, BACKUP_GID);
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(report.chunkAction).toBe('replaced');
    expect(report.findings.map((f: Finding) => f.code)).toContain('CHUNK_REPLACED');
  });

  it('a read-only remount is READ_ONLY_FS with the remount command', async () => {
    await plantZeroChunk(store, { uid: BACKUP_UID, gid: BACKUP_GID });
    fs.remountReadOnly();
    try {
      for (const args of [[], ['--as-user', 'root']]) {
        const { code, report } = runJson(['check', store, ...args]);
        expect(code).toBe(1);
        expect(errors(report)[0]).toMatchObject({ code: 'READ_ONLY_FS', remedy: `mount -o remount,rw ${fs.mountPoint}` });
        expect(report.filesystem.readOnly).toBe(true);
      }
      // --probe cannot even create its directory.
      const probe = runJson(['check', store, '--probe', '--as-user', 'root']);
      expect(errors(probe.report)[0]?.code).toBe('READ_ONLY_FS');
    } finally {
      fs.remountReadWrite();
    }
  });

  it('inside a user namespace, a chunk whose owner is not mapped is OWNER_NOT_MAPPED', async () => {
    for (const dir of [store, join(store, '.chunks'), join(store, '.chunks', 'bb9f')]) chmodSync(dir, 0o755);
    await plantZeroChunk(store, { uid: BACKUP_UID, gid: BACKUP_GID });
    const { code, report } = runJson(['check', store], { prefix: ['unshare', '-U', '--map-user=1000', '--map-group=1000'] });
    expect(code).toBe(1);
    const [finding] = errors(report);
    expect(finding?.code).toBe('OWNER_NOT_MAPPED');
    expect(finding?.message).toContain('owned by uid 65534, the overflow uid');
    // Host root is uid 1000 here: the host-side command gives the store to host 0:0, so it shows as 1000:1000 inside.
    expect(finding?.remedy).toBe(`chunkguard fix ${store} --owner 0:0 --apply --journal /var/tmp/chunkguard-fix-$(date +%Y%m%d-%H%M%S-%N).jsonl   # on the host, as root, outside this user namespace (host 0:0 is 1000:1000 here); or map the owner in (podman --userns=keep-id, a volume with :U)`);
    expect(finding?.evidence.uidMap).toEqual([{ inside: 1000, outside: 0, count: 1 }]);
  });
});

describeAsRoot('check on a full filesystem', () => {
  it('ENOSPC is CHUNK_WRITE_FAILED naming the errno, exit 1, no temp file left', () => {
    const full = mountFs('tmpfs', 1);
    try {
      const store = makeStore(join(full.mountPoint, 'store'), { uid: 0, gid: 0 });
      try {
        execFileSync('sh', ['-c', `head -c 2M /dev/zero > ${join(full.mountPoint, 'filler')}`], { stdio: 'ignore' });
      } catch {
        // Expected: it stops when the filesystem is full.
      }
      const { code, report } = runJson(['check', store]);
      expect(code).toBe(1);
      expect(errors(report)[0]).toMatchObject({ code: 'CHUNK_WRITE_FAILED', evidence: { errno: 'ENOSPC' } });
      expect(errors(report)[0]?.message).toContain('ENOSPC');
      expect(readdirSync(join(store, '.chunks', 'bb9f'))).toEqual([]);
    } finally {
      full.unmount();
    }
  });
});

describeIfKernel('fuse', 'check on a FUSE filesystem that ignores atime updates', () => {
  let fuse: FuseMount;
  beforeEach(() => {
    fuse = mountAtimefs('ignore-atime');
  });
  afterEach(() => fuse?.unmount());

  it('a new chunk: ATIME_NOT_UPDATED after waits covering 2 s granularity', () => {
    mkdirSync(join(fuse.mountPoint, '.chunks'));
    const { code, report } = runJson(['check', fuse.mountPoint]);
    expect(code).toBe(1);
    expect(errors(report)[0]?.code).toBe('ATIME_NOT_UPDATED');
    expect(report.waits.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThanOrEqual(2000);
    expect(report.filesystem.fsType).toBe('fuse.atimefs');
  });

  it('an existing chunk with a fresh atime: utimensat succeeds, atime does not advance, ATIME_NOT_UPDATED', async () => {
    makeStore(fuse.backing, { uid: 0, gid: 0 });
    const chunk = await plantZeroChunk(fuse.backing, { uid: 0, gid: 0 });
    utimesSync(chunk, new Date(), new Date(Date.now() - 3600_000));
    const { code, report } = runJson(['check', fuse.mountPoint]);
    expect(code).toBe(1);
    const [finding] = errors(report);
    expect(finding?.code).toBe('ATIME_NOT_UPDATED');
    expect(finding?.message).toContain('succeeded but atime did not advance');
    expect(report.before.atimeNs).toBe(report.after.atimeNs);
  });

  it('--fixed-sleep (the server variant) catches it too', () => {
    mkdirSync(join(fuse.mountPoint, '.chunks'));
    const { code, report } = runJson(['check', fuse.mountPoint, '--fixed-sleep']);
    expect(code).toBe(1);
    expect(errors(report)[0]?.code).toBe('ATIME_NOT_UPDATED');
  });
});

describeAsRoot('check on a FUSE filesystem whose inode numbers change', () => {
  let fuse: FuseMount;
  beforeEach(() => {
    fuse = mountAtimefs('unstable-ino');
  });
  afterEach(() => fuse?.unmount());

  it('retries once, then INODE_CHANGED', () => {
    mkdirSync(join(fuse.mountPoint, '.chunks'));
    const { code, report } = runJson(['check', fuse.mountPoint]);
    expect(code).toBe(1);
    expect(errors(report)[0]?.code).toBe('INODE_CHANGED');
    expect(report.before.ino).not.toBe(report.after.ino);
    // First try, retry: two measured touches after the reference touch.
    expect(report.touches).toBe(3);
  });
});
