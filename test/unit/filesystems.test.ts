/**
 * The filesystem knowledge table and the owner gate, as pure functions: what the real
 * matrix (test/filesystems) cannot arrange on purpose, such as two findings of the same
 * fact meeting in one report.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/findings.js';
import { atimeRemedy, knownFilesystem, ownerMountOptions, ownersOnFilesystem } from '../../src/system/filesystems.js';
import type { MountInfo } from '../../src/system/mounts.js';

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

  it("names the store's own path in the directory a mirror mirrors", () => {
    const known = knownFilesystem(mount('fuse.bindfs', ['allow_other'], '/srv/real/'));
    expect(atimeRemedy(known, { mountPoint: '/mnt/pool' }, '/mnt/pool/stores/one', owner)).toMatch(/: here, point the datastore at \/srv\/real\/stores\/one$/);
    // A store outside the mount (a symlink resolved elsewhere): the table's advice alone.
    expect(atimeRemedy(known, { mountPoint: '/mnt/pool' }, '/mnt/poolside/one', owner)).toBe(known!.advice);
  });
});

describe('the owner gate', () => {
  const exfat = { mount: mount('fuseblk', ['user_id=0', 'default_permissions', 'allow_other'], '/dev/loop3'), known: knownFilesystem(mount('fuseblk', ['default_permissions'], '/dev/loop3'), exfatDevice) };
  const finding = (code: Finding['code'], path: string, severity: Finding['severity'] = 'error'): Finding => ({ code, severity, message: code, path, remedy: `chown 34:34 ${path}`, evidence: { from: code } });

  it("folds the insert's own NO_FILE_OWNERS and the chown/chmod findings into one", () => {
    const findings = [finding('NO_FILE_OWNERS', '/mnt/pool/s/.chunks/bb9f', 'warning'), finding('CHUNK_DIR_NOT_WRITABLE', '/mnt/pool/s/.chunks/bb9f'), finding('INCONSISTENT_OWNER', '/mnt/pool/s')];
    const gated = ownersOnFilesystem(findings, exfat, { path: '/mnt/pool/s', owner });
    expect(gated.map((f) => [f.code, f.severity])).toEqual([['NO_FILE_OWNERS', 'error']]);
    expect(gated[0]!.remedy).toBe("mount /mnt/pool again with -o uid=34,gid=34 (the GC user's uid and gid)");
    expect(gated[0]!.evidence).toMatchObject({ replaces: ['CHUNK_DIR_NOT_WRITABLE', 'INCONSISTENT_OWNER'], chown: { from: 'NO_FILE_OWNERS' } });
  });

  it('leaves a directory above the mount to its own owners and modes', () => {
    const above = finding('UNREADABLE', '/mnt');
    expect(ownersOnFilesystem([above], exfat, { path: '/mnt/pool/s', owner })).toEqual([above]);
  });

  it('says where no option can enforce owners', () => {
    const smbnetfs = { mount: mount('fuse.smbnetfs', ['allow_other']), known: knownFilesystem(mount('fuse.smbnetfs', ['allow_other'])) };
    const [gated] = ownersOnFilesystem([finding('FOREIGN_OWNER', '/mnt/pool/s/x')], smbnetfs, { path: '/mnt/pool/s', owner });
    expect(gated).toMatchObject({ code: 'OWNERSHIP_NOT_ENFORCED', severity: 'info' });
    expect(gated!.message).toMatch(/smbnetfs has no option that enforces them$/);
    expect(gated!.remedy).toBeUndefined();
  });
});
