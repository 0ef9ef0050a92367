/**
 * The audit on a network filesystem: a chunk store on a real sshfs mount (its
 * own sshd on 127.0.0.1, dir_cache=no, so every stat is a round trip) gives
 * the report the same store gives on the local directory sshfs serves, while
 * the audit keeps many more stats in flight there, and says so.
 */
import { lchownSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, runJson } from '../helpers/cli.js';
import { describeIfKernel, itIfKernel } from '../helpers/kernel.js';
import { mountReal, type RealFs } from '../helpers/realfs.js';
import { BACKUP_GID, BACKUP_UID } from '../helpers/store.js';

const WRITTEN = new Date('2026-01-31T18:00:31Z');

/**
 * A server-layout store: 16 prefix directories of 4 chunks, 7 chunks root left
 * behind (more than the 5 examples a finding shows), one of them unreadable, a
 * prefix directory replaced by a symlink, a fifo where a chunk belongs. Whole
 * seconds, as SFTP carries them.
 */
function populate(store: string): void {
  const own = (path: string, uid = BACKUP_UID) => lchownSync(path, uid, BACKUP_GID);
  mkdirSync(join(store, '.chunks'), { mode: 0o750 });
  own(store);
  own(join(store, '.chunks'));
  for (let p = 0; p < 16; p++) {
    const prefix = (p * 0x1000 + 0x0a0b).toString(16).padStart(4, '0');
    const dir = join(store, '.chunks', prefix);
    mkdirSync(dir, { mode: 0o750 });
    own(dir);
    for (let c = 0; c < 4; c++) {
      const chunk = join(dir, `${prefix}${c.toString().repeat(60)}`);
      const rootOwned = p % 2 === 1 && p < 15 && c === 0;
      writeFileSync(chunk, 'chunk', { mode: rootOwned && p === 1 ? 0o600 : 0o640 });
      own(chunk, rootOwned ? 0 : BACKUP_UID);
      utimesSync(chunk, WRITTEN, new Date(WRITTEN.getTime() + c * 1000));
    }
  }
  symlinkSync('/tmp', join(store, '.chunks', '1234'));
  own(join(store, '.chunks', '1234'));
  const fifo = join(store, '.chunks', '0a0b', `0a0b${'f'.repeat(60)}`);
  execFileSync('mkfifo', [fifo]);
  own(fifo);
}

/** The report with the store's path as a placeholder, and without what is the filesystem's own (ctime: SFTP carries none, sshfs shows mtime). */
function comparable(report: any, store: string): unknown {
  const { durationMs, concurrency, dir, ...rest } = report;
  const text = JSON.stringify(rest).replaceAll(store, '<store>');
  return JSON.parse(text, (key, value) => (key === 'ctime' ? undefined : value));
}

describeIfKernel('fuse', 'audit on a network filesystem (sshfs over a loopback sshd)', () => {
  let fs: RealFs;
  let local: string;
  let remote: string;
  beforeAll(() => {
    fs = mountReal('sshfs');
    // Filled locally in the directory sshfs serves, in a directory the mount has not looked up
    // yet (the kernel keeps a FUSE attribute for a second; dir_cache=no turns off only sshfs's cache).
    local = join(fs.backing!, 'store', 'datastore');
    remote = join(fs.dir, 'datastore');
    mkdirSync(local, { mode: 0o750 });
    populate(local);
  });
  afterAll(() => fs?.unmount());

  itIfKernel('io_uring', 'gives the report the local directory gives, with many more stats in flight, and says why', () => {
    const args = ['--owner', `${BACKUP_UID}:${BACKUP_GID}`];
    const there = runJson(['audit', remote, ...args]);
    const here = runJson(['audit', local, ...args]);
    expect(there.code).toBe(1);
    expect(here.code).toBe(1);
    expect(there.report.offending).toBe(9); // 7 root-owned chunks, the symlink, the fifo
    expect(comparable(there.report, remote)).toEqual(comparable(here.report, local));

    expect(there.report.concurrency).toMatchObject({ filesystem: 'fuse.sshfs', via: 'io_uring' });
    expect(there.report.concurrency.reason).toContain('every stat is a round trip');
    expect(here.report.concurrency).toMatchObject({ via: 'statx' });
    expect(here.report.concurrency.reason).toContain('is local');
    expect(there.report.concurrency.statsInFlight).toBeGreaterThan(4 * here.report.concurrency.statsInFlight);

    const human = runCli(['audit', remote, ...args]).stdout;
    expect(human).toContain(`up to ${there.report.concurrency.statsInFlight} stats in flight (io_uring, ${there.report.concurrency.workers} worker threads): fuse.sshfs is a FUSE filesystem`);
  });

  it('lists exactly the offending paths there, as find does', () => {
    const listed = runCli(['audit', remote, '--owner', `${BACKUP_UID}:${BACKUP_GID}`, '--list']).stdout.split('\n').filter(Boolean);
    const found = execFileSync('find', [remote, '!', '-uid', String(BACKUP_UID), '-o', '!', '-gid', String(BACKUP_GID)], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(found).toHaveLength(7);
    // find's test is the owner only; the audit's list has the symlink and the fifo too.
    expect(listed.sort()).toEqual([...found, join(remote, '.chunks', '1234'), join(remote, '.chunks', '0a0b', `0a0b${'f'.repeat(60)}`)].sort());
  });
});
