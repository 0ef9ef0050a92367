import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Accounts } from '../../src/system/passwd.js';
import { findMount, hasMountsBelow, parseMountInfo } from '../../src/system/mounts.js';
import { CAP_FOWNER, hasCapability, userNamespace } from '../../src/system/process.js';
import { parseUserSpec } from '../../src/system/user-spec.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'chunkguard-system-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const passwd = join(dir, 'passwd');
const group = join(dir, 'group');
writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/bash\nbackup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n# comment\nbroken line\n');
writeFileSync(group, 'root:x:0:\nbackup:x:34:\ntape:x:26:backup,other\n');
const accounts = new Accounts({ passwd, group });

describe('accounts from the files (no NSS)', () => {
  it('names uids and says when there is no entry', () => {
    expect(accounts.describeUid(34)).toBe('34 (backup)');
    expect(accounts.describeUid(1000)).toBe('1000 (no passwd entry)');
  });

  it('computes supplementary groups like initgroups', () => {
    expect(accounts.groupsOf(accounts.userByName('backup'), 34).sort()).toEqual([26, 34]);
  });
});

describe('parseUserSpec', () => {
  it('accepts NAME, UID, UID:GID and NAME:GROUP', () => {
    expect(parseUserSpec('backup', accounts)).toEqual({ uid: 34, gid: 34, name: 'backup' });
    expect(parseUserSpec('34', accounts)).toEqual({ uid: 34, gid: 34, name: 'backup' });
    expect(parseUserSpec('1000', accounts)).toEqual({ uid: 1000, gid: 1000, name: undefined });
    expect(parseUserSpec('1000:26', accounts)).toEqual({ uid: 1000, gid: 26, name: undefined });
    expect(parseUserSpec('backup:tape', accounts)).toEqual({ uid: 34, gid: 26, name: 'backup' });
  });

  it.each([
    ['nosuch', /no user named "nosuch"/],
    ['backup:nogroup', /no group named "nogroup"/],
    ['1:2:3', /expected NAME, UID/],
    ['99999999999', /no user named/],
  ])('rejects %s as bad input', (spec, message) => {
    expect(() => parseUserSpec(spec, accounts)).toThrow(message);
    try {
      parseUserSpec(spec, accounts);
    } catch (error) {
      expect((error as { code: string }).code).toBe('EBADINPUT');
    }
  });
});

describe('mountinfo', () => {
  const sample = [
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '40 22 0:35 / /mnt/with\\040space rw,noatime - tmpfs tmpfs rw,size=1024k',
    '41 22 7:1 / /srv/store ro,nosuid - xfs /dev/loop1 ro,lazytime,attr2',
  ].join('\n');

  it('parses options, escapes and atime policy', () => {
    const [root, spaced, store] = parseMountInfo(sample);
    expect(root).toMatchObject({ mountPoint: '/', fsType: 'ext4', atimePolicy: 'relatime', readOnly: false });
    expect(spaced).toMatchObject({ mountPoint: '/mnt/with space', atimePolicy: 'noatime' });
    expect(store).toMatchObject({ readOnly: true, lazytime: true, source: '/dev/loop1' });
  });

  it('tells whether anything is mounted strictly below a directory, and says yes when it cannot tell', () => {
    const table = join(dir, 'mountinfo-below');
    writeFileSync(table, ['22 1 254:0 / / rw - ext4 /dev/vda rw', `50 22 0:40 / ${dir}/tree/auto rw - autofs systemd-1 rw,direct`].join('\n'));
    expect(hasMountsBelow(dir, table)).toBe(true);
    // The directory itself being a mount point is not something below it; nor is a sibling sharing its name's prefix.
    const sub = join(dir, 'tree', 'auto');
    const sibling = join(dir, 'tree', 'aut');
    for (const path of [sub, sibling]) mkdirSync(path, { recursive: true });
    expect(hasMountsBelow(sub, table)).toBe(false);
    expect(hasMountsBelow(sibling, table)).toBe(false);
    expect(hasMountsBelow(dir, join(dir, 'no-such-mountinfo'))).toBe(true);
    expect(hasMountsBelow(join(dir, 'no-such-dir'), table)).toBe(true);
  });

  it('finds the mount of a real path', () => {
    const mount = findMount(dir);
    expect(mount?.mountPoint).toBeTruthy();
    expect(dir.startsWith(mount!.mountPoint)).toBe(true);
  });
});

describe('process facts', () => {
  it('reads capabilities and the user namespace from /proc', () => {
    expect(hasCapability(CAP_FOWNER)).toBe(process.geteuid!() === 0);
    expect(userNamespace().overflowUid).toBe(65534);
  });
});
