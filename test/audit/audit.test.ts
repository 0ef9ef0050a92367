import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditStore, auditStoreWith, type AuditOptions } from '../../src/audit/index.js';
import type { AuditReport } from '../../src/audit/report.js';
import { useGetdentsSyscall } from '../../src/native/libc.js';
import { runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { describeIfKernel, itIfKernel } from '../helpers/kernel.js';
import { makeKopiaRepo, REPO_GID, REPO_UID, type Repo } from '../helpers/repo.js';
import { BACKUP_GID, BACKUP_UID, makeStore, reachableTempDir, treeState } from '../helpers/store.js';

const sorted = (lines: string[]) => [...lines].sort();

/** The report without what may differ from run to run: how long it took, and how it was scanned. */
const answer = ({ durationMs, concurrency, ...rest }: AuditReport) => rest;

/**
 * The same tree audited one stat at a time and through io_uring (forced: a local
 * tree would not use it), in worker threads and in this thread: one answer.
 */
async function everyWay(dir: string, options: AuditOptions = {}): Promise<AuditReport[]> {
  const ring = { depth: 8, kernelWorkers: 4 };
  const reports = [
    await auditStore(dir, options),
    await auditStore(dir, { ...options, workers: 0 }),
    await auditStoreWith(dir, { ...options, workers: 3 }, { ring }),
    await auditStoreWith(dir, { ...options, workers: 0 }, { ring }),
  ];
  expect(reports.map((report) => report.concurrency.via)).toEqual(['statx', 'statx', 'io_uring', 'io_uring']);
  return reports;
}

describeAsRoot('audit of a kopia-style repository with a burst of root-owned blobs', () => {
  let base: string;
  let repo: Repo;
  let dir: string;

  beforeAll(() => {
    base = reachableTempDir('chunkguard-audit-');
    repo = makeKopiaRepo(join(base, 'repo'));
    dir = repo.root;
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('finds exactly the root-owned blobs, with their owner, count and write window', () => {
    const { code, report } = runJson(['audit', dir]);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.expectedOwner).toMatchObject({ uid: REPO_UID, gid: REPO_GID, from: 'gc user' });
    expect(report.gcUser).toMatchObject({ uid: REPO_UID, from: 'majority owner' });
    expect(report.offending).toBe(repo.planted.length);
    const foreign = report.findings.find((f: any) => f.code === 'FOREIGN_OWNER');
    expect(foreign).toMatchObject({ severity: 'error', evidence: { count: 7, owner: { uid: 0, gid: REPO_GID } } });
    expect(foreign.message).toContain('owned by uid 0 (root)');
    expect(foreign.message).toContain('2026-01-31T18:00:31Z .. 18:00:33Z (7)');
    expect(foreign.remedy).toContain(`chunkguard fix ${dir} --owner ${REPO_UID}:${REPO_GID} --apply`);
    // 0600 root:1000: the GC user (uid 1000) cannot read them either.
    expect(report.findings.find((f: any) => f.code === 'UNREADABLE')).toMatchObject({ evidence: { count: 7 } });
    const rootOwner = report.owners.find((o: any) => o.uid === 0);
    expect(rootOwner).toMatchObject({ gid: REPO_GID, user: 'root', expected: false, entries: 7 });
    expect(rootOwner.bursts.mtime).toEqual([{ from: '2026-01-31T18:00:31Z', to: '2026-01-31T18:00:33Z', count: 7 }]);
    expect(rootOwner.examples.length).toBeGreaterThan(0);
    const expected = report.owners.find((o: any) => o.expected);
    expect(expected.entries).toBe(repo.blobs.length - 7 + 1 + 4 + 12); // files + root + shards + subdirs
  });

  it('says it in words in the human report', () => {
    const { code, stdout } = runCli(['audit', dir]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^PROBLEMS: 7 offending entries/);
    expect(stdout).toContain('uid 0 (root) gid 1000');
    expect(stdout).toContain('written (mtime) 2026-01-31T18:00:31Z .. 18:00:33Z: 7');
  });

  it('--list prints exactly the planted paths, as GNU find prints them', () => {
    const { code, stdout, stderr } = runCli(['audit', dir, '--list']);
    expect(code).toBe(1);
    const listed = stdout.split('\n').filter(Boolean);
    expect(sorted(listed)).toEqual(sorted(repo.planted.map((rel) => join(dir, rel))));
    const found = execFileSync('find', [dir, '!', '-uid', String(REPO_UID), '-o', '!', '-gid', String(REPO_GID)], { encoding: 'utf8' });
    expect(sorted(listed)).toEqual(sorted(found.split('\n').filter(Boolean)));
    // The report goes to stderr so the list can be piped.
    expect(stderr).toContain('PROBLEMS');
  });

  it('-0 separates with NUL, paths given relative print relative like find', () => {
    const result = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs'), 'audit', 'repo/', '--list', '-0'], { cwd: base });
    const listed = result.stdout.toString().split('\0').filter(Boolean);
    const found = execFileSync('find', ['repo/', '(', '!', '-uid', String(REPO_UID), '-o', '!', '-gid', String(REPO_GID), ')', '-print0'], { cwd: base }).toString();
    expect(sorted(listed)).toEqual(sorted(found.split('\0').filter(Boolean)));
    expect(listed.every((path) => path.startsWith('repo/') && !path.startsWith('repo//'))).toBe(true);
  });

  it('exports Prometheus metrics node_exporter can scrape', () => {
    const { code, stdout } = runCli(['audit', dir, '--format', 'prometheus']);
    expect(code).toBe(1);
    expect(stdout).toContain('# TYPE chunkguard_audit_ok gauge');
    expect(stdout).toContain(`chunkguard_audit_ok{dir="${dir}"} 0`);
    expect(stdout).toContain(`chunkguard_audit_findings{dir="${dir}",code="FOREIGN_OWNER",severity="error"} 7`);
    expect(stdout).toMatch(new RegExp(`chunkguard_audit_owner_entries\\{dir="${dir}",uid="0",gid="1000",user="root",[^}]*\\} 7`));
  });

  it('runs as the non-root GC user and finds the same entries', () => {
    const { code, report } = runJson(['audit', dir], { uid: REPO_UID, gid: REPO_GID });
    expect(code).toBe(1);
    expect(report.offending).toBe(7);
    expect(report.findings.find((f: any) => f.code === 'FOREIGN_OWNER').evidence.count).toBe(7);
  });

  itIfKernel('io_uring', 'gives the same report in worker threads and in the main thread, one stat at a time or many through io_uring', async () => {
    const [first, ...others] = await everyWay(dir);
    // More root-owned blobs than examples shown: the examples are the first paths, not the first found.
    expect(first!.owners.find((o) => o.uid === 0)!.examples).toEqual(sorted(repo.planted.map((rel) => join(dir, rel))).slice(0, 5));
    for (const other of others) expect(answer(other)).toEqual(answer(first!));
  });

  it('gives the same answer through the raw getdents64 syscall (what glibc < 2.30 gets), nothing skipped', async () => {
    const wrapper = await auditStore(dir, { workers: 0 });
    useGetdentsSyscall(true);
    try {
      const raw = await auditStore(dir, { workers: 0 });
      expect(raw.scanned).toEqual(wrapper.scanned);
      expect(raw.offending).toBe(repo.planted.length);
      expect(raw.owners).toEqual(wrapper.owners);
    } finally {
      useGetdentsSyscall(false);
    }
  });

  it('is clean, exit 0, once every entry has the expected owner', () => {
    const clean = makeKopiaRepo(join(base, 'clean'), { rootOwned: 0 });
    const { code, stdout } = runCli(['audit', clean.root]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^CLEAN: /);
  });
});

describeAsRoot('audit never follows symlinks and stays on one filesystem', () => {
  let base: string;
  let nestedMount: string | undefined;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-audit-safety-');
  });
  afterAll(() => {
    if (nestedMount) spawnSync('umount', [nestedMount]);
    rmSync(base, { recursive: true, force: true });
  });

  it('reports a symlink to a root-owned file outside as itself (a warning), never its target', () => {
    const repo = makeKopiaRepo(join(base, 'links'), { rootOwned: 0 });
    const outside = join(base, 'outside-secret');
    writeFileSync(outside, 'secret', { mode: 0o600 });
    const link = join(repo.root, 'p', '0a1', 'link.f');
    symlinkSync(outside, link);
    execFileSync('chown', ['-h', `${REPO_UID}:${REPO_GID}`, link]);
    // A warning does not fail the audit (only an error does), unless --fail-on warning asks it to.
    const { code, report } = runJson(['audit', repo.root]);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(runJson(['audit', repo.root, '--fail-on', 'warning'])).toMatchObject({ code: 1, report: { ok: false } });
    expect(report.offending).toBe(1);
    const finding = report.findings.find((f: any) => f.code === 'NON_REGULAR_FILE');
    expect(finding).toMatchObject({ severity: 'warning', path: link });
    expect(finding.message).toContain('1 symlink');
    // The target (root-owned, outside) is neither counted nor named.
    expect(report.owners.map((o: any) => o.uid)).toEqual([REPO_UID]);
    expect(JSON.stringify(report)).not.toContain('outside-secret');
  });

  it('does not cross into a filesystem mounted inside the tree unless asked', () => {
    const repo = makeKopiaRepo(join(base, 'nested'), { rootOwned: 0 });
    const mountPoint = join(repo.root, 'x', 'mnt');
    mkdirSync(mountPoint);
    chownSync(mountPoint, REPO_UID, REPO_GID);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'chunkguard-nested', mountPoint]);
    nestedMount = mountPoint;
    chownSync(mountPoint, REPO_UID, REPO_GID);
    writeFileSync(join(mountPoint, 'foreign.f'), 'x');
    chownSync(join(mountPoint, 'foreign.f'), BACKUP_UID, BACKUP_GID);

    const plain = runJson(['audit', repo.root]);
    expect(plain.report.offending).toBe(0);
    expect(plain.report.findings).toContainEqual(expect.objectContaining({ code: 'MOUNT_NOT_CROSSED', severity: 'info', path: mountPoint }));
    expect(plain.code).toBe(0);

    const crossing = runJson(['audit', repo.root, '--cross-filesystems']);
    expect(crossing.code).toBe(1);
    expect(crossing.report.findings.find((f: any) => f.code === 'FOREIGN_OWNER').path).toBe(join(mountPoint, 'foreign.f'));
  });
});

describeAsRoot('audit of a chunk store (server layout)', () => {
  let base: string;
  let store: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-audit-store-');
    store = join(base, 'store');
    const own = (path: string) => chownSync(path, BACKUP_UID, BACKUP_GID);
    mkdirSync(join(store, '.chunks'), { recursive: true, mode: 0o750 });
    own(store);
    own(join(store, '.chunks'));
    for (const prefix of ['0000', 'abcd', 'ffff']) {
      mkdirSync(join(store, '.chunks', prefix), { mode: 0o750 });
      own(join(store, '.chunks', prefix));
      const chunk = join(store, '.chunks', prefix, `${prefix}${'0'.repeat(60)}`);
      writeFileSync(chunk, 'chunk', { mode: 0o640 });
      own(chunk);
    }
    // A prefix dir replaced by a symlink, a fifo where a chunk belongs, an immutable chunk.
    symlinkSync('/tmp', join(store, '.chunks', '1234'));
    execFileSync('chown', ['-h', `${BACKUP_UID}:${BACKUP_GID}`, join(store, '.chunks', '1234')]);
    execFileSync('mkfifo', [join(store, '.chunks', 'abcd', `abcd${'1'.repeat(60)}`)]);
    chownSync(join(store, '.chunks', 'abcd', `abcd${'1'.repeat(60)}`), BACKUP_UID, BACKUP_GID);
    execFileSync('chattr', ['+i', join(store, '.chunks', 'ffff', `ffff${'0'.repeat(60)}`)]);
  });
  afterAll(() => {
    spawnSync('chattr', ['-i', join(store, '.chunks', 'ffff', `ffff${'0'.repeat(60)}`)]);
    rmSync(base, { recursive: true, force: true });
  });

  it('reports the symlinked prefix dir, the fifo and the immutable chunk, and touches nothing', () => {
    const before = treeState(store);
    const { code, report } = runJson(['audit', store]);
    expect(code).toBe(1);
    expect(report.layout).toBe('chunk-store');
    const codes = Object.fromEntries(report.findings.map((f: any) => [f.code, f]));
    expect(codes.UNSAFE_PATH.path).toBe(join(store, '.chunks', '1234'));
    expect(codes.NON_REGULAR_FILE).toMatchObject({ severity: 'warning', evidence: { count: 1 } });
    expect(codes.NON_REGULAR_FILE.message).toContain('1 fifo');
    expect(codes.TOUCH_EPERM_IMMUTABLE.remedy).toContain('chattr -i -a');
    // One of each, said in the singular.
    expect(codes.NON_REGULAR_FILE.message).toBe('1 entry where chunks belong is not what the layout expects (1 fifo): GC skips or fails on it');
    expect(codes.TOUCH_EPERM_IMMUTABLE.message).toBe('1 entry carries the immutable or append-only flag: no one, not even root, can update its atime or delete it');
    expect(codes.UNSAFE_PATH.message).toMatch(/^1 symlink where the store layout needs a directory or a chunk: chunkguard does not follow it, /);
    expect(treeState(store)).toEqual(before);
  });

  itIfKernel('io_uring', 'gives the same report one stat at a time and through io_uring', async () => {
    const [first, ...others] = await everyWay(store);
    expect(first!.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['UNSAFE_PATH', 'NON_REGULAR_FILE', 'TOUCH_EPERM_IMMUTABLE']));
    for (const other of others) expect(answer(other)).toEqual(answer(first!));
  });

  it('--as-user names a GC user that does not own the chunks: TOUCH_EPERM_WRONG_OWNER', () => {
    const { report } = runJson(['audit', store, '--as-user', String(REPO_UID), '--owner', 'backup']);
    const wrong = report.findings.find((f: any) => f.code === 'TOUCH_EPERM_WRONG_OWNER');
    expect(wrong.evidence.count).toBe(3);
    expect(wrong.message).toContain('while GC runs as uid 1000');
    expect(report.gcUser).toMatchObject({ uid: REPO_UID, from: 'option' });
  });
});

describeAsRoot('FOREIGN_OWNER says what GC cannot do: a file\'s atime, a directory\'s entries', () => {
  let base: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-foreign-kinds-');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /** A repository of the GC user (backup) with root's entries: [name, directory mode or undefined for a file]. */
  function repoWith(name: string, entries: [string, number | undefined][]): string {
    const repo = join(base, name);
    mkdirSync(repo);
    chownSync(repo, BACKUP_UID, BACKUP_GID);
    for (const [entry, mode] of entries) {
      if (mode === undefined) writeFileSync(join(repo, entry), 'x', { mode: 0o644 });
      else {
        mkdirSync(join(repo, entry));
        chmodSync(join(repo, entry), mode);
      }
    }
    return repo;
  }

  const foreign = (repo: string) => {
    const { report } = runJson(['audit', repo, '--owner', `${BACKUP_UID}:${BACKUP_GID}`]);
    return report.findings.find((f: any) => f.code === 'FOREIGN_OWNER');
  };

  it.each([
    ['one file', [['f', undefined]], 'error', 'GC as uid 34 (backup) cannot update its atime (EPERM), so it stops there or deletes it as unused'],
    ['two files', [['f', undefined], ['g', undefined]], 'error', 'GC as uid 34 (backup) cannot update their atime (EPERM), so it stops there or deletes them as unused'],
    ['one directory', [['d', 0o755]], 'error', 'GC as uid 34 (backup) cannot create or delete entries in it (no write permission for it), so it cannot delete unused chunks there and no new one can be written there'],
    ['two directories, one writable', [['d', 0o755], ['w', 0o777]], 'error', 'cannot create or delete entries in 1 of them (no write permission for it)'],
    ['a writable directory', [['w', 0o777]], 'warning', 'GC as uid 34 (backup) can still create and delete entries in it, but it differs from the rest of the store'],
    ['a file and a directory', [['f', undefined], ['d', 0o755]], 'error', "cannot update the file's atime (EPERM), so it stops there or deletes it as unused, and cannot create or delete entries in the directory (no write permission for it)"],
  ] as [string, [string, number | undefined][], string, string][])('%s owned by root', (name, entries, severity, says) => {
    const finding = foreign(repoWith(name.replaceAll(' ', '-').replace(',', ''), entries));
    expect(finding.severity).toBe(severity);
    expect(finding.message).toContain(says);
    // A directory's problem is its entries, never an atime.
    if (entries.every(([, mode]) => mode !== undefined)) expect(finding.message).not.toContain('atime');
  });

  it('one root-owned directory: "1 entry (1 dir)" in the owners of the human report', () => {
    const repo = repoWith('one-dir-human', [['d', 0o755]]);
    const { stdout } = runCli(['audit', repo, '--owner', `${BACKUP_UID}:${BACKUP_GID}`]);
    expect(stdout).toContain('uid 0 (root) gid 0 (root): 1 entry (1 dir), 0 B');
    expect(stdout).toMatch(/uid 34 \(backup\) gid 34 \(backup\) expected: 1 entry \(1 dir\), 0 B/);
  });
});

describeAsRoot('--as-user or --owner naming a uid with no account here', () => {
  let base: string;
  let store: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-no-account-');
    store = makeStore(join(base, 'store'));
    writeFileSync(join(store, '.chunks', 'f'.repeat(4) + '.f'), 'x');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const NOBODY_HERE = 99999;
  it('NO_PASSWD_ENTRY first, before the remedies that chown the store to it; once when both options name it', () => {
    expect(readFileSync('/etc/passwd', 'utf8')).not.toMatch(new RegExp(`^[^:]*:[^:]*:${NOBODY_HERE}:`, 'm'));
    for (const args of [['--as-user', String(NOBODY_HERE)], ['--owner', `${NOBODY_HERE}:${NOBODY_HERE}`], ['--as-user', String(NOBODY_HERE), '--owner', String(NOBODY_HERE)]]) {
      const { code, report } = runJson(['audit', store, ...args]);
      expect(code).toBe(1);
      const warnings = report.findings.filter((f: any) => f.code === 'NO_PASSWD_ENTRY');
      expect(warnings).toHaveLength(1);
      expect(report.findings[0]).toEqual(warnings[0]);
      expect(warnings[0]).toMatchObject({ severity: 'warning', evidence: { option: args[0], uid: NOBODY_HERE } });
      expect(warnings[0].message).toBe(`${args[0]} ${NOBODY_HERE}: uid ${NOBODY_HERE} has no account on this host (no entry in /etc/passwd), so it is probably a typo or another host's uid; make sure before a remedy below chowns the store to it`);
      // The remedies it qualifies.
      expect(report.findings.some((f: any) => f.remedy?.includes(`${NOBODY_HERE}:${NOBODY_HERE}`))).toBe(true);
    }
  });

  it('none for a uid or a name with an account', () => {
    for (const user of [String(BACKUP_UID), 'backup']) {
      const { report } = runJson(['audit', store, '--as-user', user]);
      expect(report.findings.map((f: any) => f.code)).not.toContain('NO_PASSWD_ENTRY');
    }
  });
});

describeAsRoot('TOUCH_EPERM_IMMUTABLE: the printed remedy, pasted as printed', () => {
  let base: string;
  const flagged: string[] = [];
  afterEach(() => {
    for (const path of flagged.splice(0)) spawnSync('chattr', ['-i', '-a', path]);
    rmSync(base, { recursive: true, force: true });
  });

  // Two: every one is named. Eight: more than the five examples, so the remedy finds them again by their flags.
  it.each([2, 8])('%i flagged entries: the remedy clears exactly them, and the audit is clean after it', (count) => {
    base = reachableTempDir('chunkguard-immutable-');
    const store = join(base, 'a store');
    const chunk = (prefix: string, n: number) => join(store, '.chunks', prefix, `${prefix}${String(n).repeat(60)}`);
    for (const prefix of ['0000', '0001']) {
      mkdirSync(join(store, '.chunks', prefix), { recursive: true, mode: 0o750 });
      for (let n = 0; n < 5; n++) writeFileSync(chunk(prefix, n), 'chunk', { mode: 0o640 });
    }
    // Chunks immutable and append-only, and (with eight) a prefix directory, which the remedy must reach too.
    const targets = [chunk('0000', 0), chunk('0000', 1), chunk('0000', 2), chunk('0000', 3), chunk('0000', 4), chunk('0001', 0), join(store, '.chunks', '0001'), chunk('0001', 1)].slice(0, count);
    targets.forEach((path, index) => {
      execFileSync('chattr', [index % 3 === 2 ? '+a' : '+i', path]);
      flagged.push(path);
    });
    const untouched = chunk('0001', 4);
    const ctimeBefore = statSync(untouched, { bigint: true }).ctimeNs;

    const { code, report } = runJson(['audit', store, '--owner', '0:0']);
    expect(code).toBe(1);
    const finding = report.findings.find((f: any) => f.code === 'TOUCH_EPERM_IMMUTABLE');
    expect(finding.evidence.count).toBe(count);
    expect(finding.remedy).not.toContain('#');
    execFileSync('sh', ['-c', finding.remedy]);

    const after = runJson(['audit', store, '--owner', '0:0']);
    expect(after.report.findings).toEqual([]);
    expect(after.code).toBe(0);
    // Only the flagged entries had their flags set again: the others keep their ctime.
    expect(statSync(untouched, { bigint: true }).ctimeNs).toBe(ctimeBefore);
  });
});

describeIfKernel('user namespaces', 'audit inside a user namespace', () => {
  let base: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-audit-userns-');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('an owner the namespace does not map shows as the overflow uid: OWNER_NOT_MAPPED with the podman remedies', () => {
    // Host root maps to uid 1000 inside; backup (34) is not mapped and shows as 65534.
    const dir = join(base, 'volume');
    mkdirSync(join(dir, 'p'), { recursive: true });
    writeFileSync(join(dir, 'p', 'mine.f'), 'x');
    writeFileSync(join(dir, 'p', 'theirs.f'), 'x');
    chownSync(join(dir, 'p', 'theirs.f'), BACKUP_UID, BACKUP_GID);
    const { code, report } = runJson(['audit', dir], { prefix: ['unshare', '-U', `--map-user=${REPO_UID}`, `--map-group=${REPO_GID}`] });
    expect(code).toBe(1);
    expect(report.expectedOwner).toMatchObject({ uid: REPO_UID, gid: REPO_GID });
    const notMapped = report.findings.find((f: any) => f.code === 'OWNER_NOT_MAPPED');
    expect(notMapped).toMatchObject({ severity: 'error', path: join(dir, 'p', 'theirs.f'), evidence: { count: 1, overflowUid: 65534 } });
    expect(notMapped.message).toContain('uid_map 1000 0 1');
    // The host-side command: 1000:1000 inside is host root; the overflow id is in no remedy.
    expect(notMapped.remedy).toBe(`chunkguard fix ${dir} --owner 0:0 --apply --journal /var/tmp/chunkguard-fix-\$(date +%Y%m%d-%H%M%S-%N).jsonl   # on the host, as root, outside this user namespace (host 0:0 is 1000:1000 here); or map the owner in (podman --userns=keep-id, a volume with :U)`);
    expect(report.findings.map((f: any) => f.remedy ?? '').join('\n')).not.toContain('65534');
    expect(report.findings.some((f: any) => f.code === 'FOREIGN_OWNER')).toBe(false);
  });
});

describeAsRoot('a directory the caller cannot reach', () => {
  it.each([['audit'], ['fix', '--owner', '1:1'], ['check', '--probe'], ['env']])('%s exits 2 with one line naming it', (command, ...rest) => {
    const base = reachableTempDir('chunkguard-unreachable-');
    try {
      const hidden = join(base, 'private');
      mkdirSync(join(hidden, 'store'), { recursive: true, mode: 0o700 });
      const target = join(hidden, 'store');
      const { code, stdout, stderr } = runCli([command, target, ...(rest as string[])], { uid: REPO_UID, gid: REPO_GID });
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trim()).toBe(`chunkguard: ${target}: cannot reach it (permission denied on a parent directory)`);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describeAsRoot('a directory the auditing user can list but not search (r without x)', () => {
  let base: string;
  let dir: string;
  const asBackup = { uid: BACKUP_UID, gid: BACKUP_GID };
  const ownerArg = `${BACKUP_UID}:${BACKUP_GID}`;

  beforeAll(() => {
    base = reachableTempDir('chunkguard-no-search-');
    dir = join(base, 'tree');
    // One with a file and a subdirectory, one with subdirectories only (stat'ed once opened, not in the listing).
    for (const sub of ['mixed/inner', 'dirsonly/d1', 'dirsonly/d2']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'mixed', 'file'), '');
    execFileSync('chown', ['-R', ownerArg, dir]);
    for (const sub of ['mixed', 'dirsonly']) chmodSync(join(dir, sub), 0o644);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('names each such directory once, whatever it holds, the same in worker threads and in the main thread', () => {
    const runs = [runJson(['audit', dir, '--owner', ownerArg], asBackup), runJson(['audit', dir, '--owner', ownerArg, '--workers', '0'], asBackup)];
    for (const { code } of runs) expect(code).toBe(1);
    const [threads, inline] = runs.map(({ report }) => answer(report));
    expect(inline).toEqual(threads);
    const unlisted = threads!.findings.filter((f: any) => f.evidence.kind === 'unlistable');
    expect(unlisted.map((f: any) => f.path)).toEqual([join(dir, 'dirsonly'), join(dir, 'mixed')]);
    for (const finding of unlisted) {
      expect(finding).toMatchObject({ code: 'UNREADABLE', severity: 'error', evidence: { errno: 'EACCES' } });
      expect(finding.message).toBe(`${finding.path}: chunkguard (uid ${BACKUP_UID}) could not stat an entry in it (EACCES); the directory's other entries were audited, that one and what is below it were not`);
    }
    // What was stat'ed: the top and the two directories; nothing below them.
    expect(threads!.scanned.entries).toBe(3);
    const modes = threads!.findings.find((f: any) => f.code === 'UNREADABLE' && f.evidence.examples);
    expect(modes?.evidence).toMatchObject({ count: 2, directories: 2, modes: ['0644'], examples: [join(dir, 'dirsonly'), join(dir, 'mixed')] });
  });

  it('the printed chmod, run on the paths --list prints, makes it CLEAN with every entry scanned', () => {
    const { report } = runJson(['audit', dir, '--owner', ownerArg], asBackup);
    const remedy = report.findings.find((f: any) => f.code === 'UNREADABLE' && f.evidence.examples).remedy as string;
    expect(remedy).toBe(`chmod u+rX ${join(dir, 'dirsonly')}   # and 1 more listed by --list`);
    const listed = runCli(['audit', dir, '--owner', ownerArg, '--list'], asBackup).stdout.split('\n').filter(Boolean);
    expect(listed.sort()).toEqual([join(dir, 'dirsonly'), join(dir, 'mixed')]);
    for (const path of listed) execFileSync('chmod', ['u+rX', path], asBackup);
    const after = runJson(['audit', dir, '--owner', ownerArg], asBackup);
    expect(after.code).toBe(0);
    expect(after.report.summary).toMatch(/^CLEAN: 7 entries scanned/);
  });
});

describeAsRoot('an automount point inside the tree', () => {
  itIfKernel('autofs', 'is reported as not crossed and never triggered (entering it is what triggers it)', async () => {
    const base = reachableTempDir('chunkguard-automount-');
    const dir = join(base, 'tree');
    const point = join(dir, 'auto');
    mkdirSync(point, { recursive: true });
    mkdirSync(join(dir, 'plain', 'sub'), { recursive: true });
    // Its own process group: the audit's is not the daemon's, so entering the point sends a request.
    const daemon = spawn('python3', [join(import.meta.dirname, '..', 'fixtures', 'autofs-trigger.py'), point], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    daemon.stdout.setEncoding('utf8').on('data', (data: string) => (output += data));
    const exited = new Promise((resolve) => daemon.on('exit', resolve));
    try {
      await expect.poll(() => output, { timeout: 10_000 }).toContain('ready');
      const { report } = runJson(['audit', dir, '--owner', '0:0']);
      expect(report.findings).toContainEqual(expect.objectContaining({ code: 'MOUNT_NOT_CROSSED', path: point }));
      expect(report.scanned.entries).toBe(4);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(output).not.toContain('mount request');
      // The fixture is live: listing the point does send one.
      spawnSync('ls', [point]);
      await expect.poll(() => output, { timeout: 5_000 }).toContain('mount request');
    } finally {
      daemon.kill('SIGTERM');
      await exited;
      spawnSync('umount', ['-l', point]);
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describeAsRoot('a chunk store whose .chunks the GC user can list but not search', () => {
  it('counts no prefix directory it could not stat: the owner census and the GC user are what the stats showed', () => {
    const base = reachableTempDir('chunkguard-no-search-store-');
    try {
      const store = join(base, 'store');
      const chunks = join(store, '.chunks');
      for (const prefix of ['0000', '0001', '0002', '0003']) mkdirSync(join(chunks, prefix), { recursive: true, mode: 0o750 });
      chownSync(store, BACKUP_UID, BACKUP_GID);
      chmodSync(store, 0o750);
      chmodSync(chunks, 0o744);
      const { code, report } = runJson(['audit', store], { uid: BACKUP_UID, gid: BACKUP_GID });
      expect(code).toBe(1);
      // The store's root and .chunks were stat'ed; the prefix directories behind .chunks' missing search permission were not.
      expect(report.scanned.entries).toBe(2);
      expect(report.gcUser.reason).toBe(`uid ${BACKUP_UID} (backup) owns ${store}; what is inside belongs to root, which is never taken for the GC user while part of the store belongs to someone else`);
      const inconsistent = report.findings.find((f: any) => f.code === 'INCONSISTENT_OWNER');
      expect(inconsistent.message).not.toMatch(/\d+ of \d+ prefix director/);
      expect(report.findings.filter((f: any) => f.evidence.kind === 'unlistable').map((f: any) => [f.path, f.evidence.errno])).toEqual([[chunks, 'EACCES']]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('audit bad input', () => {
  it.each([
    [['audit', '/nonexistent/chunkguard'], /\/nonexistent\/chunkguard: no such directory/],
    [['audit', '/etc/hostname'], /\/etc\/hostname: not a directory \(it is a regular file\)/],
    [['audit', '/tmp', '--owner', 'x:y:z'], /--owner x:y:z: expected NAME, UID/],
    // An empty value is quoted, not lost between the flag and the colon.
    [['audit', '/tmp', '--owner', ''], /^chunkguard: --owner '': expected NAME, UID/],
    [['audit', '/tmp', '--as-user', 'no-such-user-chunkguard'], /no user named "no-such-user-chunkguard"/],
    [['audit', '/tmp', '--list', '--json'], /--list prints paths on stdout/],
    [['audit', '/tmp', '-0'], /-0 only applies to --list/],
  ])('%j exits 2 with one line', (args, message) => {
    const { code, stdout, stderr } = runCli(args as string[]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(message as RegExp);
  });
});

describeAsRoot('names that are not UTF-8 or hold a newline', () => {
  let base: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-audit-names-');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('--list -0 prints the raw bytes find prints, and fix/undo round-trip them', () => {
    const dir = join(base, 'd');
    mkdirSync(dir);
    const odd = Buffer.concat([Buffer.from(`${dir}/bad`), Buffer.from([0xff, 0x0a]), Buffer.from('name')]);
    const oddDir = Buffer.concat([Buffer.from(`${dir}/dir`), Buffer.from([0xfe])]);
    writeFileSync(odd, 'x');
    chownSync(odd, BACKUP_UID, BACKUP_GID);
    mkdirSync(oddDir);
    const inner = Buffer.concat([oddDir, Buffer.from('/inner')]);
    writeFileSync(inner, 'y');
    chownSync(inner, BACKUP_UID, BACKUP_GID);

    const cli = join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs');
    const listed = spawnSync(process.execPath, [cli, 'audit', dir, '--owner', '0:0', '--list', '-0']).stdout;
    const found = execFileSync('find', [dir, '(', '!', '-uid', '0', '-o', '!', '-gid', '0', ')', '-print0']);
    const split = (bytes: Buffer) => sorted(bytes.toString('latin1').split('\0').filter(Boolean));
    expect(split(listed)).toEqual(split(found));
    expect(split(listed)).toHaveLength(2);

    const journal = join(base, 'names.jsonl');
    const fixed = runCli(['fix', dir, '--owner', '0:0', '--apply', '--journal', journal]);
    expect(fixed.code, fixed.stderr + fixed.stdout).toBe(0);
    expect(runJson(['audit', dir]).report.offending).toBe(0);
    expect(runCli(['fix', dir, '--undo', journal, '--apply', '--journal', join(base, 'undo.jsonl')]).code).toBe(0);
    expect(split(spawnSync(process.execPath, [cli, 'audit', dir, '--owner', '0:0', '--list', '-0']).stdout)).toEqual(split(found));
  });
});

describe('audit progress on a chunk store', () => {
  it('knows the prefix-directory total from the start and never shows more done than total', async () => {
    const base = reachableTempDir('chunkguard-progress-total-');
    try {
      const store = join(base, 'store');
      // More than one hand-over part (1024 subdirectories each) of .chunks.
      for (let i = 0; i < 2048; i++) mkdirSync(join(store, '.chunks', i.toString(16).padStart(4, '0')), { recursive: true });
      writeFileSync(join(store, '.chunks', '0001', `0001${'0'.repeat(60)}`), 'x');
      const seen: { done: number; total: number }[] = [];
      await auditStore(store, { workers: 2, onProgress: (progress) => progress.prefixDirs && seen.push({ ...progress.prefixDirs }) });
      expect(seen.length).toBeGreaterThan(10);
      expect(seen.every((p) => p.total === 2048)).toBe(true);
      expect(seen.every((p) => p.done <= p.total)).toBe(true);
      expect(seen.at(-1)).toEqual({ done: 2048, total: 2048 });
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describeAsRoot('audit --as-user of a store that user cannot reach', () => {
  it('is UNREADABLE (exit 1) naming the directory and the missing permission; the printed chmod makes it CLEAN', () => {
    const base = reachableTempDir('chunkguard-unreachable-');
    try {
      const locked = join(base, 'locked');
      mkdirSync(locked, { mode: 0o700 });
      chmodSync(locked, 0o700);
      const store = makeStore(join(locked, 'store'));
      const { code, report } = runJson(['audit', store, '--as-user', 'backup']);
      expect(code).toBe(1);
      const finding = report.findings.find((f: { code: string }) => f.code === 'UNREADABLE');
      expect(finding).toMatchObject({ severity: 'error', path: locked, remedy: `chmod o+x ${locked}` });
      expect(finding.message).toContain(`cannot reach ${store}`);
      execFileSync('sh', ['-c', finding.remedy]);
      const after = runJson(['audit', store, '--as-user', 'backup']);
      expect(after.code).toBe(0);
      expect(after.report.summary).toMatch(/^CLEAN: /);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
