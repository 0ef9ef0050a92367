/** Who a probe run by root touches as when nothing below names anyone but root: never root. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newDatastoreUser } from '../../src/system/gc-user.js';
import { Accounts } from '../../src/system/passwd.js';

const dir = mkdtempSync(join(tmpdir(), 'chunkguard-accounts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function accounts(passwd: string[], group: string[]): Accounts {
  const files = { passwd: join(dir, `passwd-${passwd.length}`), group: join(dir, `group-${group.length}`) };
  writeFileSync(files.passwd, `${passwd.join('\n')}\n`);
  writeFileSync(files.group, `${group.join('\n')}\n`);
  return new Accounts(files);
}

describe('newDatastoreUser', () => {
  it('is the host backup user, with its groups, where it exists', () => {
    const user = newDatastoreUser('/srv/new', accounts(['root:x:0:0::/root:/bin/sh', 'backup:x:34:34:backup:/var/backups:/usr/sbin/nologin'], ['root:x:0:', 'backup:x:34:', 'tape:x:26:backup']));
    expect(user).toMatchObject({ uid: 34, gid: 34, groups: [34, 26], user: 'backup', group: 'backup', from: 'backup user' });
    expect(user.reason).toContain("this host has the backup server's GC user, backup");
  });

  it('else nobody, a user without privileges, and the reason says to pass --as-user', () => {
    const user = newDatastoreUser('/srv/new', accounts(['root:x:0:0::/root:/bin/sh', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin'], ['root:x:0:', 'nogroup:x:65534:']));
    expect(user).toMatchObject({ uid: 65534, gid: 65534, user: 'nobody', group: 'nogroup', from: 'unprivileged user' });
    expect(user.reason).toMatch(/no backup user: checked as uid 65534, a user without privileges \(pass --as-user/);
  });

  it('and uid 65534 when the files name neither', () => {
    expect(newDatastoreUser('/srv/new', accounts(['root:x:0:0::/root:/bin/sh'], ['root:x:0:']))).toMatchObject({ uid: 65534, gid: 65534, from: 'unprivileged user' });
  });
});
