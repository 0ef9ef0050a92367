/**
 * A remedy chunkguard prints is a promise: on the real filesystem that earned it,
 * each one below is carried out as printed (mount options, logins and paths read from
 * the remedy text, never from the test's own setup) and the finding is gone after it.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { itIfKernel } from '../helpers/kernel.js';
import { mountReal, type RealFs, type RealFsName } from '../helpers/realfs.js';
import { BACKUP_GID, BACKUP_UID, reachableTempDir, storeIn } from '../helpers/store.js';

interface Finding {
  code: string;
  severity: string;
  remedy?: string;
}

const codes = (report: { findings: Finding[] }) => report.findings.map((finding) => finding.code);

function finding(report: { findings: Finding[] }, code: string): Finding {
  const found = report.findings.find((f) => f.code === code);
  if (!found) throw new Error(`no ${code} in ${JSON.stringify(report.findings.map((f) => f.code))}`);
  return found;
}

/** The one match of `pattern` in a remedy, or a failure that shows the remedy. */
function parse(remedy: string | undefined, pattern: RegExp): string[] {
  const match = pattern.exec(remedy ?? '');
  if (!match) throw new Error(`remedy does not match ${pattern}: ${remedy}`);
  return match.slice(1);
}

/** A path as the remedy prints it: shell-quoted when it needs to be. */
const unquote = (word: string) => (word.startsWith("'") ? word.slice(1, -1).replaceAll(`'\\''`, "'") : word);

const open: Array<() => void> = [];
afterEach(() => {
  while (open.length > 0) open.pop()!();
});

function mounted(name: RealFsName, populate?: (dir: string) => void): RealFs {
  const fs = mountReal(name, populate ? { populate } : {});
  open.push(() => fs.unmount());
  return fs;
}

describeAsRoot('remedies, carried out on the filesystem that earned them', () => {
  itIfKernel('fuse', 'FUSE_NO_ALLOW_OTHER: mounting again with allow_other lets the GC user in (check, audit and env)', () => {
    const fs = mounted('gocryptfs-no-allow-other');
    const store = storeIn(fs.dir);
    const check = runJson(['check', store]);
    expect(check.code).toBe(1);
    const [mountPoint, option] = parse(finding(check.report, 'FUSE_NO_ALLOW_OTHER').remedy, /^umount (\S+) && mount it again with -o (allow_other)\b/);
    for (const command of ['audit', 'env']) {
      const before = runJson([command, store]);
      expect({ command, code: before.code, codes: codes(before.report) }).toMatchObject({ code: 1, codes: expect.arrayContaining(['FUSE_NO_ALLOW_OTHER']) });
    }

    execFileSync('umount', [unquote(mountPoint!)]);
    fs.remount({ options: [option!] });

    const after = runJson(['check', store]);
    expect({ code: after.code, summary: after.report.summary.split(':')[0] }).toEqual({ code: 0, summary: 'SAFE' });
    expect(after.report.touchedAs.uid).toBe(BACKUP_UID);
    for (const command of ['audit', 'env']) expect(codes(runJson([command, store]).report)).not.toContain('FUSE_NO_ALLOW_OTHER');
  });

  itIfKernel('fuse', 'NO_FILE_OWNERS on exfat: the uid=/gid= mount options give the GC user its files (atime updates are still dropped)', () => {
    const fs = mounted('exfat-fuse');
    const store = storeIn(fs.dir);
    const before = runJson(['check', store, '--as-user', String(BACKUP_UID)]);
    expect(before.code).toBe(1);
    const noOwners = before.report.findings.filter((f: Finding) => f.code === 'NO_FILE_OWNERS');
    expect(noOwners).toHaveLength(1);
    // Nothing that a chown or chmod would answer: exfat has no owners or modes to change.
    for (const f of before.report.findings as Finding[]) expect(f.remedy ?? '').not.toMatch(/(^|&& )(chown|chmod) /);
    const [mountPoint, options] = parse(noOwners[0].remedy, /^mount (\S+) again with -o (\S+) /);
    expect(options).toBe(`uid=${BACKUP_UID},gid=${BACKUP_GID}`);

    expect(unquote(mountPoint!)).toBe(fs.mountPoint);
    fs.remount({ options: options!.split(',') });

    const after = runJson(['check', store, '--as-user', String(BACKUP_UID)]);
    expect(codes(after.report)).not.toContain('NO_FILE_OWNERS');
    expect(codes(after.report)).not.toContain('CHUNK_DIR_NOT_WRITABLE');
    expect(after.report.findings.find((f: Finding) => f.severity === 'error').code).toBe('ATIME_NOT_UPDATED');
  });

  itIfKernel('fuse', 'CHOWN_IGNORED and OWNERSHIP_NOT_ENFORCED on ntfs-3g: with -o permissions fix changes the owners and audit has nothing to say', () => {
    const fs = mounted('ntfs-3g');
    const store = storeIn(fs.dir);
    const owner = `${BACKUP_UID}:${BACKUP_GID}`;
    const journal = join(reachableTempDir('chunkguard-remedy-journal-'), 'journal');
    open.push(() => rmSync(join(journal, '..'), { recursive: true, force: true }));
    const fix = runJson(['fix', store, '--owner', owner, '--apply', '--journal', journal]);
    expect({ code: fix.code, changed: fix.report.changed }).toEqual({ code: 1, changed: 0 });
    const [mountPoint, option] = parse(finding(fix.report, 'CHOWN_IGNORED').remedy, /^mount (\S+) again with -o (\S+) /);
    const audit = runJson(['audit', store, '--owner', owner]);
    expect(parse(finding(audit.report, 'OWNERSHIP_NOT_ENFORCED').remedy, /^to enforce owners, mount \S+ again with -o (\S+)$/)).toEqual([option]);

    expect(unquote(mountPoint!)).toBe(fs.mountPoint);
    fs.remount({ options: [option!] });

    rmSync(journal, { force: true });
    const fixed = runJson(['fix', store, '--owner', owner, '--apply', '--journal', journal]);
    expect({ code: fixed.code, changed: fixed.report.changed > 0, findings: codes(fixed.report) }).toEqual({ code: 0, changed: true, findings: [] });
    const clean = runJson(['audit', store, '--owner', owner]);
    expect({ code: clean.code, findings: codes(clean.report) }).toEqual({ code: 0, findings: [] });
    expect(runJson(['check', store]).code).toBe(0);
  });

  itIfKernel('fuse', 'OWNERSHIP_NOT_ENFORCED on rclone: its own flags make it show and enforce the GC user as owner', () => {
    const fs = mounted('rclone');
    const store = storeIn(fs.dir);
    const owner = `${BACKUP_UID}:${BACKUP_GID}`;
    const before = runJson(['audit', store, '--owner', owner]);
    // rclone shows its own user (root) as every file's owner: owner findings would be predictions from that.
    expect({ code: before.code, findings: codes(before.report) }).toEqual({ code: 0, findings: ['OWNERSHIP_NOT_ENFORCED'] });
    const [mountPoint, flags] = parse(finding(before.report, 'OWNERSHIP_NOT_ENFORCED').remedy, /^to enforce owners, mount (\S+) again with (--.+)$/);
    expect(flags).toBe(`--default-permissions --uid ${BACKUP_UID} --gid ${BACKUP_GID}`);

    expect(unquote(mountPoint!)).toBe(fs.mountPoint);
    fs.remount({ options: flags!.split(' ') });

    const after = runJson(['audit', store, '--owner', owner]);
    expect({ code: after.code, findings: codes(after.report) }).toEqual({ code: 0, findings: [] });
    // Owners were never rclone's problem: atime is.
    expect(runJson(['check', store]).report.findings.find((f: Finding) => f.severity === 'error').code).toBe('ATIME_NOT_UPDATED');
  });

  itIfKernel('fuse', 'sshfs with default_permissions: connecting as the GC user and giving it what root wrote on the server makes the check safe', () => {
    const fs = mounted('sshfs-default-permissions');
    const store = storeIn(fs.dir);
    const before = runJson(['check', store]);
    expect(before.code).toBe(1);
    const remedy = finding(before.report, 'CHUNK_WRITE_FAILED').remedy;
    const [mountPoint, spec, options, serverHost, owner, serverPath] = parse(
      remedy,
      /^mount the share as the GC user instead: umount (\S+) && sshfs (\S+) \S+ -o (\S+) \(with the port and identity options it was mounted with\); then on ([\d.]+), as root, give that user what the old login wrote: chown -R (\S+) (\S+)$/,
    );
    const [, login, host, remote] = /^(\w+)@([\d.]+):(\S+)$/.exec(unquote(spec!))!;
    expect({ login, host, serverHost, remote, owner, serverPath: unquote(serverPath!) }).toEqual({ login: 'backup', host: '127.0.0.1', serverHost: '127.0.0.1', remote: fs.backing, owner: 'backup:', serverPath: join(fs.backing!, 'store', 'datastore') });

    execFileSync('umount', [unquote(mountPoint!)]);
    // The server is this machine: its chown is ours to run.
    execFileSync('chown', ['-R', owner!, unquote(serverPath!)]);
    // The port and identity options the remedy asks to keep are the ones the helper mounted with: it adds them again.
    fs.remount({ options: options!.split(','), login });

    const after = runJson(['check', store]);
    expect({ code: after.code, summary: after.report.summary.split(':')[0], warnings: codes(after.report).filter((code) => code !== 'RAN_AS_STORE_OWNER') }).toEqual({ code: 0, summary: 'SAFE', warnings: ['TOUCH_SETS_MTIME'] });
  });

  itIfKernel('squashfs', 'READ_ONLY_FS on SquashFS: the copy it prints is a store the check calls safe', () => {
    const fs = mounted('squashfs', (dir) => void storeIn(dir));
    const store = join(fs.dir, 'datastore');
    const check = runJson(['check', store]);
    const remedy = finding(check.report, 'READ_ONLY_FS').remedy!;
    expect(remedy).not.toMatch(/^mount -o remount/);
    const target = reachableTempDir('chunkguard-remedy-copy-');
    open.push(() => rmSync(target, { recursive: true, force: true }));
    const [command] = parse(remedy, /: (cp -a \S+ <directory on a writable filesystem>\/)$/);
    execFileSync('sh', ['-c', command!.replace('<directory on a writable filesystem>', target)]);

    const copy = runJson(['check', join(target, 'datastore')]);
    expect({ code: copy.code, summary: copy.report.summary.split(':')[0], gcUser: copy.report.gcUser.uid }).toEqual({ code: 0, summary: 'SAFE', gcUser: BACKUP_UID });
  });

  itIfKernel('fuse', 'ATIME_NOT_UPDATED on bindfs: the directory it mirrors, named in the remedy, honours atime', () => {
    const fs = mounted('bindfs');
    const store = storeIn(fs.dir);
    const [source] = parse(finding(runJson(['check', store]).report, 'ATIME_NOT_UPDATED').remedy, /: here, point the datastore at (\S+)$/);
    expect(unquote(source!)).toBe(join(fs.backing!, 'store', 'datastore'));
    const there = runJson(['check', unquote(source!)]);
    expect({ code: there.code, summary: there.report.summary.split(':')[0], gcUser: there.report.gcUser.uid }).toEqual({ code: 0, summary: 'SAFE', gcUser: BACKUP_UID });
  });

  itIfKernel('fuse', 'ATIME_NOT_UPDATED on bindfs --map: the mirrored directory, given to the GC user by the fix the remedy prints, is safe for it', () => {
    const fs = mounted('bindfs-map');
    const store = storeIn(fs.dir);
    const [source, fixArgs] = parse(finding(runJson(['check', store]).report, 'ATIME_NOT_UPDATED').remedy, /: here, point the datastore at (\S+) and give it to the GC user there \(there it belongs to 0:0, whatever the mount shows\): chunkguard (fix \S+ --owner 34:34 --apply) --journal .+$/);
    const mirrored = unquote(source!);
    // Through the mount the store looked like the GC user's; in the source it is root's.
    const asGcUser = runJson(['check', mirrored, '--as-user', String(BACKUP_UID)]);
    expect(asGcUser.code).toBe(1);

    const journal = join(reachableTempDir('chunkguard-remedy-journal-'), 'journal');
    open.push(() => rmSync(join(journal, '..'), { recursive: true, force: true }));
    const [, path, , owner, apply] = fixArgs!.split(' ');
    const fix = runJson(['fix', unquote(path!), '--owner', owner!, apply!, '--journal', journal]);
    expect({ code: fix.code, findings: codes(fix.report) }).toEqual({ code: 0, findings: [] });

    const after = runJson(['check', mirrored, '--as-user', String(BACKUP_UID)]);
    expect({ code: after.code, summary: after.report.summary.split(':')[0] }).toEqual({ code: 0, summary: 'SAFE' });
  });
});
