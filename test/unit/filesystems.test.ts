/**
 * The filesystem knowledge table and the owner gate, as pure functions: what the real
 * matrix (test/filesystems) cannot arrange on purpose, such as two findings of the same
 * fact meeting in one report.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/findings.js';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atimeRemedy, fuseWithoutAllowOther, knownFilesystem, ownerMountOptions, ownersOnFilesystem, samePlaceIn } from '../../src/system/filesystems.js';
import type { MountInfo } from '../../src/system/mounts.js';
import { noFileOwners } from '../../src/check/check-findings.js';

function mount(fsType: string, superOptions: string[], source = 'none', mountPoint = '/mnt/pool'): MountInfo {
  return { mountPoint, fsType, source, superOptions, mountOptions: [], readOnly: false, atimePolicy: 'relatime', lazytime: false } as unknown as MountInfo;
}

const exfatDevice = () => Buffer.from('\xebv\x90EXFAT   ', 'latin1');
const owner = { uid: 34, gid: 34 };

describe('the knowledge table', () => {
  it('reads a fuseblk daemon from its device and fills the GC user into its owner options', () => {
    const known = knownFilesystem(mount('fuseblk', ['user_id=0', 'default_permissions', 'allow_other'], '/dev/loop3'), exfatDevice);
    expect(known).toMatchObject({ name: 'exfat-fuse', owners: 'none', fuse: true });
    expect(ownerMountOptions(known, { uid: 1000, gid: 1001 })).toBe('-o uid=1000,gid=1001');
  });

  it('keeps ntfs-3g owners only with the option that keeps them', () => {
    const ntfs = () => Buffer.from('\xebR\x90NTFS    ', 'latin1');
    expect(knownFilesystem(mount('fuseblk', ['allow_other'], '/dev/loop3'), ntfs)?.owners).toBe('ignored');
    expect(knownFilesystem(mount('fuseblk', ['allow_other', 'default_permissions'], '/dev/loop3'), ntfs)?.owners).toBe('kept');
  });

  it("names the store's own path in the directory a mirror mirrors, and the fix where it has another owner there", () => {
    const source = mkdtempSync(join(tmpdir(), 'chunkguard-mirror-'));
    try {
      mkdirSync(join(source, 'stores', 'one'), { recursive: true });
      const bindfs = mount('fuse.bindfs', ['allow_other'], `${source}/`);
      const known = knownFilesystem(bindfs);
      const mirrored = join(source, 'stores', 'one');
      expect(atimeRemedy(known, bindfs, '/mnt/pool/stores/one', { uid: 0, gid: 0 })).toBe(`${known!.advice}: here, point the datastore at ${mirrored}`);
      expect(atimeRemedy(known, bindfs, '/mnt/pool/stores/one', owner)).toBe(
        `${known!.advice}: here, point the datastore at ${mirrored} and give it to the GC user there (there it belongs to 0:0, whatever the mount shows): chunkguard fix ${mirrored} --owner 34:34 --apply --journal /var/tmp/chunkguard-fix-\$(date +%Y%m%d-%H%M%S-%N).jsonl`,
      );
      // Not a directory there (missing, or a symlink): nothing is named.
      symlinkSync('/etc', join(source, 'stores', 'two'));
      expect(atimeRemedy(known, bindfs, '/mnt/pool/stores/two', owner)).toBe(known!.advice);
      expect(atimeRemedy(known, bindfs, '/mnt/pool/stores/three', owner)).toBe(known!.advice);
      // A store outside the mount: the table's advice alone.
      expect(atimeRemedy(known, bindfs, '/mnt/poolside/one', owner)).toBe(known!.advice);
    } finally {
      rmSync(source, { recursive: true, force: true });
    }
  });

  it('translates the mount root and a source of / without losing the path', () => {
    expect(samePlaceIn('/', '/mnt/pool', '/mnt/pool')).toBe('/');
    expect(samePlaceIn('/srv/x', '/mnt/pool', '/mnt/pool')).toBe('/srv/x');
    expect(samePlaceIn('/srv/x/', '/mnt/pool/a/b', '/mnt/pool')).toBe('/srv/x/a/b');
    expect(samePlaceIn('/srv/x', '/mnt/poolside', '/mnt/pool')).toBeUndefined();
  });
});

describe('the owner gate', () => {
  const exfat = { mount: mount('fuseblk', ['user_id=0', 'default_permissions', 'allow_other'], '/dev/loop3'), known: knownFilesystem(mount('fuseblk', ['default_permissions'], '/dev/loop3'), exfatDevice) };
  const finding = (code: Finding['code'], path: string, severity: Finding['severity'] = 'error'): Finding => ({ code, severity, message: code, path, remedy: `chown 34:34 ${path}`, evidence: { from: code } });

  it("folds the insert's own NO_FILE_OWNERS and the chown/chmod findings into one", () => {
    const findings = [finding('NO_FILE_OWNERS', '/mnt/pool/s/.chunks/bb9f', 'warning'), finding('CHUNK_DIR_NOT_WRITABLE', '/mnt/pool/s/.chunks/bb9f'), finding('INCONSISTENT_OWNER', '/mnt/pool/s')];
    const gated = ownersOnFilesystem(findings, exfat, { path: '/mnt/pool/s', gcUser: owner });
    expect(gated.map((f) => [f.code, f.severity])).toEqual([['NO_FILE_OWNERS', 'error']]);
    expect(gated[0]!.remedy).toBe("mount /mnt/pool again with -o uid=34,gid=34 (the GC user's uid and gid)");
    expect(gated[0]!.evidence).toMatchObject({ replaces: ['CHUNK_DIR_NOT_WRITABLE', 'INCONSISTENT_OWNER'], chown: { from: 'NO_FILE_OWNERS' } });
  });

  it('leaves what the owner options do not explain: a mode problem of the GC user\'s own, chunkguard\'s own failure to list', () => {
    const ownMode = { ...finding('CHUNK_DIR_NOT_WRITABLE', '/mnt/pool/s/.chunks/bb9f'), evidence: { owner: 34, mode: '0555' } };
    const unlistable = { ...finding('UNREADABLE', '/mnt/pool/s/.chunks/0001'), evidence: { kind: 'unlistable', errno: 'EIO' } };
    expect(ownersOnFilesystem([ownMode, unlistable], exfat, { path: '/mnt/pool/s', gcUser: owner })).toEqual([ownMode, unlistable]);
  });

  it('never turns a measured failure into "not enforced" where the daemon decides', () => {
    const smbnetfs = { mount: mount('fuse.smbnetfs', ['allow_other']), known: knownFilesystem(mount('fuse.smbnetfs', ['allow_other'])) };
    const refused = { ...finding('CHUNK_DIR_NOT_WRITABLE', '/mnt/pool/s/.chunks/bb9f'), evidence: { owner: 0, errno: 'EACCES' } };
    const predicted = finding('INCONSISTENT_OWNER', '/mnt/pool/s');
    const gated = ownersOnFilesystem([refused, predicted], smbnetfs, { path: '/mnt/pool/s', gcUser: owner, measured: [refused] });
    expect(gated.map((f) => [f.code, f.severity])).toEqual([['CHUNK_DIR_NOT_WRITABLE', 'error'], ['OWNERSHIP_NOT_ENFORCED', 'info']]);
  });

  it('leaves a directory above the mount to its own owners and modes', () => {
    const above = finding('UNREADABLE', '/mnt');
    expect(ownersOnFilesystem([above], exfat, { path: '/mnt/pool/s', gcUser: owner })).toEqual([above]);
  });

  it('one owner finding explained: said in the singular', () => {
    const [gated] = ownersOnFilesystem([finding('FOREIGN_OWNER', '/mnt/pool/s/x')], exfat, { path: '/mnt/pool/s', gcUser: owner });
    expect(gated!.message).toMatch(/; 1 owner finding comes from those options$/);
  });

  it('says where no option can enforce owners', () => {
    const smbnetfs = { mount: mount('fuse.smbnetfs', ['allow_other']), known: knownFilesystem(mount('fuse.smbnetfs', ['allow_other'])) };
    const [gated] = ownersOnFilesystem([finding('FOREIGN_OWNER', '/mnt/pool/s/x')], smbnetfs, { path: '/mnt/pool/s', gcUser: owner });
    expect(gated).toMatchObject({ code: 'OWNERSHIP_NOT_ENFORCED', severity: 'info' });
    expect(gated!.message).toMatch(/smbnetfs has no option that enforces them$/);
    expect(gated!.remedy).toBeUndefined();
  });
});

describe('root squashing (NFS: documented, no kernel client here)', () => {
  it("names root_squash when root's chown of a new chunk is refused on an NFS mount", () => {
    const nfs = mount('nfs4', ['rw', 'vers=4.2', 'sec=sys'], 'nas:/export/pbs', '/mnt/nas');
    const finding = noFileOwners('/mnt/nas/store/.chunks/bb9f', { code: 'EPERM' }, owner, { known: knownFilesystem(nfs), mount: nfs });
    expect(finding).toMatchObject({ code: 'NO_FILE_OWNERS', severity: 'warning' });
    expect(finding.message).toMatch(/failed with EPERM: the NFS server squashes root \(root_squash maps it to nobody, 65534\)/);
    expect(finding.remedy).toBe('run chunkguard and GC as uid 34 on this share, or export it with no_root_squash for this client');
  });
});

describe('FUSE without allow_other', () => {
  const describeUid = (uid: number) => String(uid);
  it('names the mounter, and user_allow_other for a mounter other than root', () => {
    const byUser = fuseWithoutAllowOther(mount('fuse.gocryptfs', ['user_id=1000', 'group_id=1000'], '/home/ann/cipher'), 34, describeUid);
    expect(byUser).toMatchObject({ code: 'FUSE_NO_ALLOW_OTHER', severity: 'error', path: '/mnt/pool' });
    expect(byUser!.message).toMatch(/only uid 1000 may enter it/);
    expect(byUser!.remedy).toBe('umount /mnt/pool && mount it again with -o allow_other (as a user other than root: add user_allow_other to /etc/fuse.conf first), e.g. in its fstab options');
    const byRoot = fuseWithoutAllowOther(mount('fuse.gocryptfs', ['user_id=0', 'group_id=0'], '/srv/cipher'), 34, describeUid);
    expect(byRoot!.remedy).not.toMatch(/fuse\.conf/);
  });

  it('says nothing with allow_other, for the mounter itself, or off FUSE', () => {
    expect(fuseWithoutAllowOther(mount('fuse.gocryptfs', ['user_id=1000', 'allow_other']), 34, describeUid)).toBeUndefined();
    expect(fuseWithoutAllowOther(mount('fuse.gocryptfs', ['user_id=34']), 34, describeUid)).toBeUndefined();
    expect(fuseWithoutAllowOther(mount('ext4', ['rw']), 34, describeUid)).toBeUndefined();
  });
});
