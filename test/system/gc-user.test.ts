/**
 * Who GC runs as and who should own the store, on the layouts operators have,
 * through the CLI as they run it. Every remedy printed here is run, and shown to
 * clear its finding (the namespace's remedy is run on the host, where it says it runs).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { datastoreOf } from '../../src/system/datastores.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectEnvironmentWith } from '../../src/system/environment.js';
import { runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { describeIfKernel } from '../helpers/kernel.js';
import { BACKUP_GID, BACKUP_UID, reachableTempDir, treeState, zeroChunkPathIn } from '../helpers/store.js';

const BACKUP = { uid: BACKUP_UID, gid: BACKUP_GID };
const ROOT = { uid: 0, gid: 0 };
const base = reachableTempDir('chunkguard-gcuser-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

let serial = 0;
/** A store as the server lays it out: prefix directories, chunks and a snapshot, all `owner`'s. */
function pbsStore(owner: { uid: number; gid: number }, prefixes = ['0001', '00a2', '7f3c', 'bb9f', 'ffff']): string {
  const store = join(base, `store-${++serial}`);
  mkdirSync(join(store, 'vm', '100', '2026-11-20T00:00:00Z'), { recursive: true });
  writeFileSync(join(store, 'vm', '100', '2026-11-20T00:00:00Z', 'index.json.blob'), 'x');
  writeFileSync(join(store, '.lock'), '');
  for (const prefix of prefixes) {
    mkdirSync(join(store, '.chunks', prefix), { recursive: true, mode: 0o750 });
    for (let i = 0; i < 3; i++) writeFileSync(join(store, '.chunks', prefix, `${prefix}${String(i).padStart(60, '0')}`), 'chunk');
  }
  execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, store]);
  execFileSync('chmod', ['0750', join(store, '.chunks'), ...prefixes.map((prefix) => join(store, '.chunks', prefix))]);
  return store;
}

/** Run a printed remedy as the operator would paste it (a shell; the comment after `#` is the shell's). */
function runRemedy(remedy: string): void {
  const result = spawnSync('sh', ['-c', remedy], { encoding: 'utf8' });
  expect(result.status, `${remedy}\n${result.stderr}`).toBe(0);
}

const allRemedies = (report: { findings: { remedy?: string }[] }) => report.findings.map((finding) => finding.remedy ?? '').join('\n');

describeAsRoot('the GC user, inferred', () => {
  it('a root-owned mount point over a backup store: backup is the GC user, one narrow chown, no chown to root', () => {
    const store = pbsStore(BACKUP);
    chownSync(store, 0, 0);
    chmodSync(store, 0o755);
    const { code, report } = runJson(['audit', store]);
    expect(report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'store owners' });
    expect(report.expectedOwner).toMatchObject({ uid: BACKUP_UID, gid: BACKUP_GID, from: 'gc user' });
    expect(report.findings.map((finding: { code: string }) => finding.code)).toEqual(['INCONSISTENT_OWNER']);
    const [finding] = report.findings;
    expect(finding).toMatchObject({ severity: 'warning', path: store, remedy: `chown -h 34:34 ${store}` });
    expect(finding.message).toContain(`${store} is owned by 0:0 (root:root) (mode 0755)`);
    expect(allRemedies(report)).not.toMatch(/--owner 0:0|chown -h?R? ?0:0/);
    // A warning only (backups of a new type cannot make their directory): it does not fail the audit.
    expect(code).toBe(0);
    // The check passes: the store is healthy for GC; it says who it ran as and why.
    const check = runJson(['check', store]);
    expect(check.code, check.stdout).toBe(0);
    expect(check.report.touchedAs).toMatchObject({ uid: BACKUP_UID, reason: 'store owner', via: 'thread', capFowner: false });
    expect(check.report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'store owners' });
    expect(lstatSync(zeroChunkPathIn(store)).uid).toBe(BACKUP_UID);
    runRemedy(finding.remedy);
    const after = runJson(['audit', store]);
    expect(after.code, after.stdout).toBe(0);
    expect(after.report.findings).toEqual([]);
  });

  it('root-owned .chunks and prefix directory in a backup store: check as root exits 1 and leaves no root-owned chunk; the remedy clears it', () => {
    const store = pbsStore(BACKUP, ['0001', '7f3c']);
    chownSync(join(store, '.chunks'), 0, 0);
    chmodSync(join(store, '.chunks'), 0o755);
    mkdirSync(join(store, '.chunks', 'bb9f'), { mode: 0o755 });
    const before = treeState(store);
    const { code, report, stdout } = runJson(['check', store]);
    expect(code, stdout).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.touchedAs).toMatchObject({ uid: BACKUP_UID, via: 'thread', capFowner: false });
    expect(report.gcUser.uid).toBe(BACKUP_UID);
    // Nothing was created: in particular no chunk owned by root (seed 002).
    expect(treeState(store)).toEqual(before);
    expect(existsSync(zeroChunkPathIn(store))).toBe(false);
    const finding = report.findings.find((entry: { code: string }) => entry.code === 'INCONSISTENT_OWNER');
    expect(finding.remedy).toContain(`chown -h 34:34 ${join(store, '.chunks')}`);
    expect(finding.remedy).not.toMatch(/chown -h?R|\b0:0\b/);
    // The audit names the root-owned prefix directory the check's sample may not have seen.
    const audit = runJson(['audit', store]);
    const layout = audit.report.findings.find((entry: { code: string }) => entry.code === 'INCONSISTENT_OWNER');
    expect(layout.severity).toBe('error');
    expect(layout.message).toContain('1 of 3 prefix directories is owned by 0:0 (root:root) (mode 0755)');
    expect(audit.report.findings.some((entry: { code: string }) => entry.code === 'FOREIGN_OWNER')).toBe(false);
    runRemedy(layout.remedy);
    const check = runJson(['check', store]);
    expect(check.code, check.stdout).toBe(0);
    expect(lstatSync(zeroChunkPathIn(store)).uid).toBe(BACKUP_UID);
    const clean = runJson(['audit', store]);
    expect(clean.code, clean.stdout).toBe(0);
  });

  it('a few root-owned chunks in a backup store: the GC user is backup, the chunks are FOREIGN_OWNER with a fix that clears them', () => {
    const store = pbsStore(BACKUP);
    const stray = join(store, '.chunks', '0001', `0001${'f'.repeat(60)}`);
    writeFileSync(stray, 'chunk');
    const { code, report } = runJson(['audit', store]);
    expect(code).toBe(1);
    expect(report.gcUser.uid).toBe(BACKUP_UID);
    const foreign = report.findings.find((finding: { code: string }) => finding.code === 'FOREIGN_OWNER');
    expect(foreign).toMatchObject({ severity: 'error', evidence: { count: 1 } });
    expect(foreign.remedy).toMatch(new RegExp(`^chunkguard fix ${store} --owner 34:34 --apply`));
    runRemedy(foreign.remedy.replace(/^chunkguard /, `${process.execPath} ${join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs')} `).split('   #')[0]!);
    expect(lstatSync(stray).uid).toBe(BACKUP_UID);
    expect(runCli(['audit', store]).code).toBe(0);
  });

  it('a repository: the majority owner of its contents counted in full, not the top directory or a sample', () => {
    // Sampled (48 entries a directory) the 2000-owned files outnumber the 1000-owned ones;
    // counted, 1000 owns more. The audit must answer from the counts.
    const repo = join(base, `repo-${++serial}`);
    for (const [dir, owner, files] of [['a', 1000, 100], ['b', 2000, 40], ['c', 2000, 40]] as const) {
      mkdirSync(join(repo, dir), { recursive: true });
      for (let i = 0; i < files; i++) writeFileSync(join(repo, dir, `blob${i}`), 'x');
      execFileSync('chown', ['-R', `${owner}:${owner}`, join(repo, dir)]);
    }
    const { code, report } = runJson(['audit', repo]);
    expect(code).toBe(1);
    expect(report.gcUser).toMatchObject({ uid: 1000, from: 'majority owner' });
    expect(report.gcUser.reason).toContain('101 of 183 entries');
    expect(report.expectedOwner).toMatchObject({ uid: 1000, gid: 1000 });
    const foreign = report.findings.filter((finding: { code: string }) => finding.code === 'FOREIGN_OWNER');
    expect(foreign.map((finding: { evidence: { owner: { uid: number }; count: number } }) => [finding.evidence.owner.uid, finding.evidence.count]).sort()).toEqual([
      [0, 1],
      [2000, 82],
    ]);
  });

  it('fix --owner that is not the GC user warns before anything is changed', () => {
    const store = pbsStore(BACKUP);
    const { code, report } = runJson(['fix', store, '--owner', '0:0']);
    expect(code).toBe(1);
    expect(report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'store owners' });
    // The warning first; then what the dry run would change, the error that makes its exit 1.
    expect(report.findings).toEqual([expect.objectContaining({ code: 'NOT_GC_USER', severity: 'warning' }), expect.objectContaining({ code: 'FOREIGN_OWNER', severity: 'error' })]);
    expect(report.findings[0].message).toContain('GC cannot update the atime of chunks it does not own');
  });

  it('check as a user that cannot switch to the GC user says its verdict is not GC\'s', () => {
    const store = pbsStore(BACKUP);
    const { report } = runJson(['check', store], { uid: 1000, gid: 1000 });
    expect(report.gcUser.uid).toBe(BACKUP_UID);
    expect(report.touchedAs).toMatchObject({ uid: 1000, reason: 'current user' });
    const finding = report.findings.find((entry: { code: string }) => entry.code === 'NOT_GC_USER');
    expect(finding).toMatchObject({ severity: 'warning', remedy: `sudo chunkguard check ${store}   # as root it touches as uid 34` });
    // The remedy as root (this test already is, so without sudo): it checks as the GC user and the warning is gone.
    const asRoot = spawnSync('sh', ['-c', `${finding.remedy.split('   #')[0].replace(/^sudo chunkguard /, `${process.execPath} ${join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs')} `)} --json`], { encoding: 'utf8' });
    expect(asRoot.status, asRoot.stderr).toBe(0);
    const after = JSON.parse(asRoot.stdout);
    expect(after.touchedAs).toMatchObject({ uid: BACKUP_UID, capFowner: false });
    expect(after.findings.map((entry: { code: string }) => entry.code)).not.toContain('NOT_GC_USER');
  });
});

describeAsRoot('the GC user: edge cases found in review', () => {
  it('.chunks chowned without its group does not regroup the store: the gid comes from most of that user\'s entries', () => {
    const store = pbsStore(BACKUP);
    chownSync(join(store, '.chunks'), BACKUP_UID, 0);
    const { report } = runJson(['audit', store]);
    expect(report.expectedOwner).toMatchObject({ uid: BACKUP_UID, gid: BACKUP_GID });
    const finding = report.findings.find((entry: { code: string }) => entry.code === 'INCONSISTENT_OWNER');
    expect(finding.remedy).toBe(`chown -h 34:34 ${join(store, '.chunks')}`);
    expect(report.findings.filter((entry: { code: string }) => entry.code === 'FOREIGN_OWNER')).toEqual([]);
    runRemedy(finding.remedy);
    expect(runCli(['audit', store]).code).toBe(0);
  });

  it('a store whose structure is root\'s but whose snapshots are backup\'s: backup, never a chown to root', () => {
    const store = pbsStore(BACKUP);
    execFileSync('chown', ['-R', '0:0', join(store, '.chunks')]);
    const { report } = runJson(['audit', store]);
    expect(report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'store owners' });
    expect(allRemedies(report)).not.toMatch(/--owner 0:0|chown -h?R? ?0:0/);
  });

  it('check as a user that is not the GC user leaves nothing in the store, even where it could write', () => {
    const store = pbsStore(BACKUP, ['0001']);
    chmodSync(join(store, '.chunks'), 0o777);
    const before = treeState(store);
    const { report, stdout } = runJson(['check', store], { uid: 65534, gid: 65534 });
    expect(report.findings.map((entry: { code: string }) => entry.code), stdout).toContain('NOT_GC_USER');
    expect(report.probe).toBe(true);
    expect(treeState(store)).toEqual(before);
  });

  it('a store root the caller may pass but not list (0711): check and env diagnose, they do not refuse', () => {
    const store = pbsStore(BACKUP);
    chmodSync(store, 0o711);
    const check = runJson(['check', store], { uid: 65534, gid: 65534 });
    expect(check.code, check.stderr).toBe(1);
    expect(check.report.gcUser).toMatchObject({ uid: BACKUP_UID });
    const env = runJson(['env', store], { uid: 65534, gid: 65534 });
    expect(env.code, env.stderr).not.toBe(2);
    expect(env.report.gcUser.uid).toBe(BACKUP_UID);
  });

  it('--list when the counts overrule the sample: exactly what find prints for the owner finally expected', () => {
    const repo = join(base, `relist-${++serial}`);
    for (let d = 0; d < 20; d++) mkdirSync(join(repo, `d${d}`), { recursive: true });
    execFileSync('chown', ['-R', '1001:1001', repo]);
    const deep = join(repo, 'd0', 'x', 'y', 'z');
    mkdirSync(deep, { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(deep, `f${i}`), 'x');
    execFileSync('chown', ['-R', '1002:1002', join(repo, 'd0', 'x')]);
    const { report } = runJson(['audit', repo]);
    const { uid, gid } = report.expectedOwner;
    const listed = runCli(['audit', repo, '--list']).stdout.split('\n').filter(Boolean).sort();
    const found = execFileSync('find', [repo, '(', '!', '-uid', String(uid), '-o', '!', '-gid', String(gid), ')'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    expect(listed).toEqual(found);
    expect(listed.length).toBe(report.offending);
  });
});

describe('datastore.cfg matching', () => {
  it('the listed directory or one above, by device and inode; never "/" (or a link to it), and comments are skipped', () => {
    const dir = join(base, `cfg-${++serial}`);
    const store = join(dir, 'store');
    mkdirSync(join(store, '.chunks'), { recursive: true });
    symlinkSync('/', join(dir, 'to-root'));
    symlinkSync(store, join(dir, 'to-store'));
    const config = join(dir, 'datastore.cfg');
    const write = (text: string) => writeFileSync(config, text);
    write(`datastore: all\n\tpath /\n\ndatastore: linked\n\tpath ${join(dir, 'to-root')}\n`);
    expect(datastoreOf(store, config)).toBeUndefined();
    write(`# datastore: commented\n#\tpath ${store}\ndatastore: main\n\t# path /elsewhere\n\tpath ${join(dir, 'to-store')}\n`);
    expect(datastoreOf(join(store, '.chunks'), config)).toMatchObject({ name: 'main' });
    expect(datastoreOf(dir, config)).toBeUndefined();
  });
});

describeAsRoot('a datastore in the backup server\'s datastore.cfg', () => {
  const config = '/etc/proxmox-backup/datastore.cfg';
  const saved = `${config}.chunkguard-test-${process.pid}`;
  let createdDir = false;
  let store: string;

  beforeAll(() => {
    createdDir = !existsSync('/etc/proxmox-backup');
    mkdirSync('/etc/proxmox-backup', { recursive: true });
    if (existsSync(config)) renameSync(config, saved);
    // A store made entirely by root: only the server's config says that GC runs as backup.
    store = pbsStore(ROOT);
    writeFileSync(config, `datastore: other\n\tpath ${join(base, 'elsewhere')}\n\ndatastore: main\n\tcomment made by root\n\tpath ${store}\n\tgc-schedule daily\n`);
  });
  afterAll(() => {
    rmSync(config, { force: true });
    if (existsSync(saved)) renameSync(saved, config);
    if (createdDir) rmSync('/etc/proxmox-backup', { recursive: true, force: true });
  });

  it('check runs as backup; audit expects backup, and its remedies make the store backup\'s', () => {
    const check = runJson(['check', store]);
    expect(check.report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'datastore.cfg', datastore: { name: 'main', config } });
    expect(check.report.gcUser.reason).toBe(`${store} is datastore "main" in ${config}: the backup server runs GC as its backup user`);
    expect(check.report.touchedAs).toMatchObject({ uid: BACKUP_UID, reason: 'datastore.cfg', via: 'thread' });
    // backup cannot write in root's 0750 prefix directory: unsafe, and nothing of root's made.
    expect(check.code).toBe(1);
    expect(existsSync(zeroChunkPathIn(store))).toBe(false);

    const audit = runJson(['audit', store]);
    expect(audit.code).toBe(1);
    expect(audit.report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'datastore.cfg' });
    const codes = audit.report.findings.map((finding: { code: string }) => finding.code);
    expect(codes).toContain('INCONSISTENT_OWNER');
    expect(codes).toContain('FOREIGN_OWNER');
    for (const finding of audit.report.findings.filter((entry: { code: string }) => ['INCONSISTENT_OWNER', 'FOREIGN_OWNER'].includes(entry.code))) {
      const remedy = finding.remedy.split('   #')[0].replace(/^chunkguard /, `${process.execPath} ${join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs')} `);
      runRemedy(remedy);
    }
    expect(runJson(['audit', store]).report.findings).toEqual([]);
    const after = runJson(['check', store]);
    expect(after.code, after.stdout).toBe(0);
    expect(lstatSync(zeroChunkPathIn(store)).uid).toBe(BACKUP_UID);
  });

  it('a directory inside the datastore counts as the datastore; env shows the GC user', () => {
    const env = runJson(['env', join(store, '.chunks')]);
    expect(env.report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'datastore.cfg' });
    const human = runCli(['env', store]);
    expect(human.stdout).toContain('GC user uid 34 (backup) gid 34 (backup) (datastore.cfg: ');
  });
});

describeIfKernel('user namespaces', 'user namespaces: the audited directory itself is not mapped', () => {
  const unshare = ['unshare', '-U', '--map-user=1000', '--map-group=1000'];

  it('OWNER_NOT_MAPPED with the host-side command, no overflow id in any remedy, and it clears the finding', () => {
    const repo = join(base, `ns-${++serial}`);
    mkdirSync(join(repo, 'p'), { recursive: true });
    mkdirSync(join(repo, 'q'), { mode: 0o700 });
    writeFileSync(join(repo, 'p', 'blob'), 'x', { mode: 0o600 });
    execFileSync('chown', ['-R', '1000:1000', repo]);
    const { code, report } = runJson(['audit', repo], { prefix: unshare });
    expect(code).toBe(1);
    // In the namespace, uid 1000 is host root; host 1000 is unmapped and shows as 65534.
    expect(report.gcUser).toMatchObject({ uid: 1000, from: 'current user' });
    expect(report.expectedOwner).toMatchObject({ uid: 1000, gid: 1000 });
    const notMapped = report.findings.find((finding: { code: string }) => finding.code === 'OWNER_NOT_MAPPED');
    expect(notMapped.evidence.count).toBe(4);
    expect(allRemedies(report)).not.toContain('65534');
    // Unreadable unmapped entries have no chmod or chown remedy of their own: none could work inside.
    expect(report.findings.filter((finding: { code: string; remedy?: string }) => finding.code === 'UNREADABLE' && /chmod|chown|fix/.test(finding.remedy ?? ''))).toEqual([]);
    expect(notMapped.remedy).toBe(`chunkguard fix ${repo} --owner 0:0 --apply --journal /var/tmp/chunkguard-fix-$(date +%Y%m%d-%H%M%S-%N).jsonl   # on the host, as root, outside this user namespace (host 0:0 is 1000:1000 here); or map the owner in (podman --userns=keep-id, a volume with :U)`);
    // Inside the namespace the same command cannot work; on the host (here: this process) it does.
    const inside = runCli(['fix', repo, '--owner', '1000:1000', '--apply', '--journal', join(base, `inside-${serial}.jsonl`)], { prefix: unshare });
    expect(inside.code).not.toBe(0);
    runRemedy(notMapped.remedy.split('   #')[0]!.replace(/^chunkguard /, `${process.execPath} ${join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs')} `) + ` --journal ${join(base, `host-${serial}.jsonl`)}`);
    const after = runJson(['audit', repo], { prefix: unshare });
    expect(after.code, after.stdout).toBe(0);
    expect(after.report.findings).toEqual([]);
    expect(readFileSync(join(base, `host-${serial}.jsonl`), 'utf8')).toContain('"to":"0:0"');
  });

  it('env on the unmapped directory: the host-side chown', () => {
    const dir = join(base, `ns-env-${++serial}`);
    mkdirSync(dir);
    chownSync(dir, 1000, 1000);
    const { report } = runJson(['env', dir], { prefix: unshare });
    const finding = report.findings.find((entry: { code: string }) => entry.code === 'OWNER_NOT_MAPPED');
    expect(finding.remedy).toMatch(new RegExp(`^chown -h 0:0 ${dir}   # on the host`));
    runRemedy(finding.remedy.split('   #')[0]);
    const after = runJson(['env', dir], { prefix: unshare });
    expect(after.report.findings.filter((entry: { code: string }) => entry.code === 'OWNER_NOT_MAPPED')).toEqual([]);
  });
});

describe('NO_PASSWD_ENTRY', () => {
  it('says what still breaks with USER and HOME set, and the printed passwd line, appended as printed, clears it', () => {
    // This process's uid missing from a passwd file (the library reads the file it is given).
    const passwd = join(base, `passwd-${++serial}`);
    writeFileSync(passwd, 'someone:x:4242:4242::/home/someone:/bin/sh\n');
    const saved = { USER: process.env.USER, HOME: process.env.HOME };
    Object.assign(process.env, { USER: 'gc', HOME: '/tmp' });
    try {
      const report = inspectEnvironmentWith(undefined, {}, { accountFiles: { passwd } });
      const finding = report.findings.find((entry) => entry.code === 'NO_PASSWD_ENTRY')!;
      expect(finding.message).toContain('$USER and $HOME are set');
      expect(finding.message).toContain('getpwuid() still finds nothing');
      expect(finding.remedy).toMatch(/^echo 'gc:x:\d+:\d+::\/tmp:\/usr\/sbin\/nologin' >> \/etc\/passwd   # in the image/);
      // Run as printed, on this test's passwd file instead of the machine's.
      runRemedy(finding.remedy!.split('   #')[0]!.replace('/etc/passwd', passwd));
      const after = inspectEnvironmentWith(undefined, {}, { accountFiles: { passwd } });
      expect(after.findings.map((entry) => entry.code)).not.toContain('NO_PASSWD_ENTRY');
      expect(after.passwd).toMatchObject({ name: 'gc', uid: process.geteuid!() });
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
