import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixOwnership, undoJournal } from '../../src/repair/fix.js';
import { CLI, runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeKopiaRepo, REPO_GID, REPO_UID, type Repo } from '../helpers/repo.js';
import { mountFs } from '../helpers/mounts.js';
import { BACKUP_GID, BACKUP_UID, makeStore, reachableTempDir, treeState, zeroChunkPathIn } from '../helpers/store.js';

const OWNER = `${REPO_UID}:${REPO_GID}`;

function journalLines(text: string): any[] {
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

describeAsRoot('fix: dry run, --apply, --undo', () => {
  let base: string;
  let repo: Repo;
  let outside: string;
  let link: string;

  beforeEach(() => {
    base = reachableTempDir('chunkguard-fix-');
    repo = makeKopiaRepo(join(base, 'repo'));
    // A root-owned symlink in the tree pointing at a root-owned file outside it.
    outside = join(base, 'outside-root-file');
    writeFileSync(outside, 'not yours', { mode: 0o600 });
    link = join(repo.root, 'q', 'f9e', 'escape.f');
    symlinkSync(outside, link);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('a dry run prints what it would change and changes nothing', () => {
    const before = treeState(repo.root);
    const { code, stdout } = runCli(['fix', repo.root, '--owner', OWNER]);
    expect(code).toBe(1);
    const planned = stdout.split('\n').filter((line) => line.startsWith('would chown'));
    expect(planned).toHaveLength(repo.planted.length + 1);
    expect(stdout).toContain(`would chown ${OWNER} ${join(repo.root, repo.planted[0]!)}  (now 0:${REPO_GID})`);
    expect(stdout).toContain('DRY RUN: 8 entries would be changed');
    expect(treeState(repo.root)).toEqual(before);
  });

  it('--apply repairs exactly the offending entries, lchowns the symlink and never its target, journals each change', () => {
    const before = treeState(repo.root);
    const journal = join(base, 'fix.jsonl');
    const { code, stderr, stdout } = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('DONE: 8 entries changed');
    const after = treeState(repo.root);
    const changed = Object.keys(after).filter((rel) => after[rel] !== before[rel]).sort();
    expect(changed).toEqual([...repo.planted, 'q/f9e/escape.f'].sort());
    for (const rel of changed) expect(after[rel]).toMatch(new RegExp(`^${OWNER} `));
    expect(lstatSync(link).uid).toBe(REPO_UID);
    expect(statSync(outside).uid).toBe(0);
    const records = journalLines(readFileSync(journal, 'utf8'));
    expect(records[0]).toMatchObject({ op: 'begin', root: repo.root });
    expect(records.filter((r) => r.op === 'chown').map((r) => r.rel).sort()).toEqual(changed);
    expect(records.find((r) => r.rel === repo.planted[0])).toMatchObject({ from: `0:${REPO_GID}`, to: OWNER });
    expect(runCli(['audit', repo.root]).code).toBe(0); // the symlink is still a finding, a warning: it does not fail the audit
    expect(runJson(['audit', repo.root]).report.findings.map((f: any) => f.code)).toEqual(['NON_REGULAR_FILE']);
  });

  it('without --journal the journal goes to stdout and the summary to stderr; --undo restores every owner', () => {
    const before = treeState(repo.root);
    const applied = runCli(['fix', repo.root, '--owner', OWNER, '--apply']);
    expect(applied.code).toBe(0);
    expect(applied.stderr).toContain('DONE: 8 entries changed');
    const journal = join(base, 'from-stdout.jsonl');
    writeFileSync(journal, applied.stdout);
    expect(journalLines(applied.stdout).filter((r) => r.op === 'chown')).toHaveLength(8);

    const dry = runCli(['fix', repo.root, '--undo', journal]);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('DRY RUN: 8 entries would get their old owner back');
    const undone = runCli(['fix', repo.root, '--undo', journal, '--apply', '--journal', join(base, 'undo.jsonl')]);
    expect(undone.code, undone.stderr).toBe(0);
    expect(undone.stdout).toContain('DONE: 8 entries got their old owner back');
    expect(treeState(repo.root)).toEqual(before);
    expect(statSync(outside).uid).toBe(0);
  });

  it('a dry-run --undo reads each entry as --apply does: after the undo, nothing "would chown" and it exits 0', () => {
    const before = treeState(repo.root);
    const journal = join(base, 'applied.jsonl');
    expect(runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal]).code).toBe(0);
    const undone = runCli(['fix', repo.root, '--undo', journal, '--apply', '--journal', join(base, 'undone.jsonl')]);
    expect(undone.code, undone.stderr).toBe(0);
    expect(treeState(repo.root)).toEqual(before);
    const dry = runCli(['fix', repo.root, '--undo', journal]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).not.toContain('would chown');
    expect(dry.stdout).toContain('DONE: 8 entries have their old owner already, nothing to revert');
    // Half undone by hand: the dry run names only the entries still to revert, and counts the others.
    chownSync(join(repo.root, repo.planted[0]!), REPO_UID, REPO_GID);
    const half = runCli(['fix', repo.root, '--undo', journal]);
    expect(half.code).toBe(1);
    expect(half.stdout.split('\n').filter((line) => line.startsWith('would chown'))).toEqual([`would chown 0:${REPO_GID} ${join(repo.root, repo.planted[0]!)}  (now ${OWNER})`]);
    expect(half.stdout).toContain('DRY RUN: 1 entry would get its old owner back (7 had it already)');
  });

  it('the library never writes the journal to its host\'s stdout: apply without a journal is EBADINPUT naming it, nothing changed', async () => {
    const before = treeState(repo.root);
    const refusal = { code: 'EBADINPUT', option: 'journal', reason: expect.stringContaining('apply needs a journal, a file path or a writable stream') };
    await expect(fixOwnership(repo.root, { owner: OWNER, apply: true })).rejects.toMatchObject(refusal);
    const journal = join(base, 'lib.jsonl');
    writeFileSync(journal, `${JSON.stringify({ op: 'begin', root: repo.root, time: new Date().toISOString(), version: 1 })}\n`);
    await expect(undoJournal(repo.root, journal, { apply: true })).rejects.toMatchObject(refusal);
    await expect(fixOwnership(repo.root, { owner: OWNER, apply: true, journal: 42 as never })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'journal' });
    expect(treeState(repo.root)).toEqual(before);
  });

  it('the library writes the journal to a writable stream it is given, each record before its change', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.setEncoding('utf8').on('data', (text: string) => lines.push(...text.split('\n').filter(Boolean)));
    const report = await fixOwnership(repo.root, { owner: OWNER, apply: true, journal: stream });
    expect(report).toMatchObject({ ok: true, changed: 8, journal: 'stream' });
    const records = lines.map((line) => JSON.parse(line));
    expect(records[0]).toMatchObject({ op: 'begin', root: repo.root });
    expect(records.filter((r) => r.op === 'chown')).toHaveLength(8);
    // The stream's journal undoes the fix like a file's.
    const journal = join(base, 'from-stream.jsonl');
    writeFileSync(journal, `${lines.join('\n')}\n`);
    expect(await undoJournal(repo.root, journal, { apply: true, journal: join(base, 'undo-stream.jsonl') })).toMatchObject({ ok: true, changed: 8 });
    expect(lstatSync(join(repo.root, repo.planted[0]!)).uid).toBe(0);
  });

  it('a relative path from another working directory: the JSON report, its changes and the journal name absolute paths', () => {
    const cwd = dirname(repo.root);
    const relative = basename(repo.root);
    const dry = runJson(['fix', relative, '--owner', OWNER], { cwd });
    expect(dry.code).toBe(1);
    expect(dry.report.dir).toBe(repo.root);
    expect(dry.report.changes.map((c: any) => c.path)).toContain(join(repo.root, repo.planted[0]!));
    for (const finding of dry.report.findings) if (finding.path) expect(finding.path.startsWith(`${repo.root}/`), finding.path).toBe(true);
    expect(dry.report.findings.find((f: any) => f.code === 'FOREIGN_OWNER').remedy).toContain(`chunkguard fix ${repo.root} --owner ${OWNER} --apply --journal /var/tmp/chunkguard-fix-`);
    const applied = runJson(['fix', relative, '--owner', OWNER, '--apply', '--journal', 'rel.jsonl'], { cwd });
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.report).toMatchObject({ dir: repo.root, journal: join(cwd, 'rel.jsonl') });
    const records = journalLines(readFileSync(join(cwd, 'rel.jsonl'), 'utf8'));
    expect(records.filter((r) => r.op === 'chown').map((r) => r.path)).toContain(join(repo.root, repo.planted[0]!));
    const human = runCli(['fix', relative, '--undo', 'rel.jsonl'], { cwd });
    expect(human.stdout).toContain(`would chown 0:${REPO_GID} ${join(repo.root, repo.planted[0]!)}`);
  });

  it('a warning (NOT_GC_USER) does not fail a fix; with --fail-on warning it does (exit 1, ok false)', () => {
    const other = makeKopiaRepo(join(base, 'other'));
    const notGc = `${BACKUP_UID}:${BACKUP_GID}`;
    const plain = runJson(['fix', repo.root, '--owner', notGc, '--apply', '--journal', join(base, 'w1.jsonl')]);
    expect(plain.report.findings.map((f: any) => [f.code, f.severity])).toEqual([['NOT_GC_USER', 'warning']]);
    expect(plain).toMatchObject({ code: 0, report: { ok: true } });
    const strict = runJson(['fix', other.root, '--owner', notGc, '--apply', '--journal', join(base, 'w2.jsonl'), '--fail-on', 'warning']);
    expect(strict.report.findings.map((f: any) => [f.code, f.severity])).toEqual([['NOT_GC_USER', 'warning']]);
    expect(strict).toMatchObject({ code: 1, report: { ok: false, skipped: 0 } });
  });

  it('re-checks each entry just before changing it: one replaced since the audit is skipped and reported (exit 1)', async () => {
    const victim = join(repo.root, repo.planted[0]!);
    const report = await fixOwnership(repo.root, {
      owner: OWNER,
      apply: true,
      journal: join(base, 'race.jsonl'),
      onChange: (record) => {
        if (record.rel !== repo.planted[0]) return;
        // Another writer replaces the file between the audit and the chown.
        const replacement = `${victim}.new`;
        writeFileSync(replacement, 'replaced');
        chownSync(replacement, 0, 0);
        renameSync(replacement, victim);
      },
    });
    expect(report.ok).toBe(false);
    expect(report.skipped).toBe(1);
    expect(report.skippedExamples[0]).toMatchObject({ path: victim, reason: expect.stringContaining('replaced since the audit') });
    expect(lstatSync(victim).uid).toBe(0);
    expect(report.changed).toBe(7);
  });

  it('refuses what would lose a journal or mix outputs (exit 2, one line, nothing changed)', () => {
    const before = treeState(repo.root);
    const existing = join(base, 'exists.jsonl');
    writeFileSync(existing, '');
    const cases: [string[], RegExp][] = [
      [['fix', repo.root], /needs --owner/],
      [['fix', repo.root, '--owner', 'a:b:c'], /--owner a:b:c: expected NAME, UID/],
      [['fix', repo.root, '--owner', OWNER, '--apply', '--journal', existing], /exists already/],
      [['fix', repo.root, '--owner', OWNER, '--apply', '--journal', join(repo.root, 'j.jsonl')], /must be outside the directory/],
      [['fix', repo.root, '--owner', OWNER, '--apply', '--json'], /--json --apply needs --journal/],
      [['fix', repo.root, '--undo', join(base, 'missing.jsonl')], /cannot read the journal/],
      [['fix', repo.root, '--undo', existing, '--owner', OWNER], /leave out --owner/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr, stdout } = runCli(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(message);
    }
    writeFileSync(existing, '{"op":"chown","rel":"../../etc/passwd","dev":"1:1","ino":"1","from":"0:0","to":"1:1"}\n');
    const escape = runCli(['fix', repo.root, '--undo', existing, '--apply']);
    expect(escape.code).toBe(2);
    expect(escape.stderr).toMatch(/exists.jsonl:1: path \.\.\/\.\.\/etc\/passwd leaves the directory/);
    expect(treeState(repo.root)).toEqual(before);
  });

  it('a journal on a full filesystem: one line naming it and ENOSPC, exit 2, nothing changed, no empty journal left to block the retry', () => {
    const tiny = mountFs('tmpfs', 1);
    try {
      const filler = join(tiny.mountPoint, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
      } catch {
        // Full now.
      }
      const before = treeState(repo.root);
      const journal = join(tiny.mountPoint, 'fix.jsonl');
      const full = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal]);
      expect(full.code).toBe(2);
      expect(full.stderr.trim().split('\n')).toHaveLength(1);
      expect(full.stderr).toContain(journal);
      expect(full.stderr).toContain('ENOSPC');
      expect(treeState(repo.root)).toEqual(before);
      expect(existsSync(journal)).toBe(false);
      rmSync(filler);
      const retry = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal]);
      expect(retry.code, retry.stderr).toBe(0);
      expect(retry.stdout).toContain('DONE: 8 entries changed');
    } finally {
      tiny.unmount();
    }
  });

  it('an immutable entry: skipped, and the reason says which flag (from its stat), not a guess', () => {
    const victim = join(repo.root, repo.planted[0]!);
    execFileSync('chattr', ['+i', victim]);
    try {
      const { code, stdout } = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', join(base, 'immutable.jsonl')]);
      expect(code).toBe(1);
      expect(stdout).toContain('chown failed with EPERM: the immutable flag is set (chattr -i first)');
      expect(lstatSync(victim).uid).toBe(0);
    } finally {
      execFileSync('chattr', ['-i', victim]);
    }
  });

  it('--apply with nothing to change does not offer an undo', () => {
    const clean = makeKopiaRepo(join(base, 'clean'), { rootOwned: 0 });
    const { code, stdout } = runCli(['fix', clean.root, '--owner', OWNER, '--apply', '--journal', join(base, 'nothing.jsonl')]);
    expect(code).toBe(0);
    expect(stdout).toContain('no change recorded');
    expect(stdout).not.toContain('--undo');
  });

  it('a hard link to a file outside the tree is not chowned (another name for it is outside): skipped and reported', () => {
    const precious = join(base, 'precious');
    writeFileSync(precious, 'root only', { mode: 0o600 });
    linkSync(precious, join(repo.root, 'q', '56c', 'planted-link.f'));
    const journal = join(base, 'hl.jsonl');
    const { code, stdout } = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/it has 2 hard links, and another may be outside the directory/);
    expect(statSync(precious)).toMatchObject({ uid: 0, gid: 0 });
    // Everything else was repaired.
    for (const rel of repo.planted) expect(statSync(join(repo.root, rel)).uid).toBe(REPO_UID);
    expect(journalLines(readFileSync(journal, 'utf8')).some((r) => r.op === 'chown' && r.rel.includes('planted-link'))).toBe(false);
  });

  describe('a hostile journal changes nothing outside the directory', () => {
    // The file an attacker wants: outside the tree, owned by the journal's "to", so an undo would give it to root.
    let secretDir: string;
    let secret: string;
    let identity: { dev: string; ino: string };
    beforeEach(() => {
      secretDir = join(base, 'outside');
      mkdirSync(secretDir);
      secret = join(secretDir, 'secret');
      writeFileSync(secret, 'secret');
      chownSync(secret, REPO_UID, REPO_GID);
      const stat = statSync(secret, { bigint: true });
      const major = Number(stat.dev >> 8n) & 0xfff;
      const minor = Number(stat.dev & 0xffn) | (Number(stat.dev >> 12n) & 0xfff00);
      identity = { dev: `${major}:${minor}`, ino: String(stat.ino) };
    });
    const journalWith = (...records: object[]): string => {
      const file = join(base, `hostile-${Math.random().toString(16).slice(2)}.jsonl`);
      const lines = [{ op: 'begin', root: repo.root, time: new Date().toISOString(), version: 1 }, ...records];
      writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
      return file;
    };
    const chown = (fields: object) => ({ op: 'chown', path: 'x', ...identity, from: '0:0', to: OWNER, ...fields });
    const b64 = (text: string) => Buffer.from(text).toString('base64');

    it.each([
      ['a plain ".." path', chown({ rel: '../outside/secret' })],
      ['a harmless rel with a ".." relBase64', chown({ rel: 'q/f9e/harmless.f', relBase64: b64('../outside/secret') })],
      ['".." in both forms', chown({ rel: '../outside/secret', relBase64: b64('../outside/secret') })],
      ['".." in the middle', chown({ rel: 'q/../../outside/secret' })],
      ['an absolute path', chown({ rel: '/etc/passwd' })],
      ['an absolute relBase64', chown({ rel: 'q', relBase64: b64('/etc/passwd') })],
      ['an empty component', chown({ rel: 'q//f9e' })],
      ['a "." path', chown({ rel: '.' })],
      ['".." in a failed record', { op: 'failed', rel: '../outside/secret', errno: 'EPERM' }],
    ])('%s: refused before anything is changed (exit 2, one line naming the line)', (_, record) => {
      const before = treeState(repo.root);
      const journal = journalWith(chown({ rel: 'kopia.repository.f' }), record);
      const { code, stdout, stderr } = runCli(['fix', repo.root, '--undo', journal, '--apply']);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(`${journal}:3: `);
      expect(statSync(secret)).toMatchObject({ uid: REPO_UID, gid: REPO_GID });
      expect(treeState(repo.root)).toEqual(before);
    });

    it('a valid path through a symlink planted inside the tree is not followed at the point of use (walked from the root, O_NOFOLLOW)', () => {
      symlinkSync(secretDir, join(repo.root, 'q', 'door'));
      const journal = journalWith(chown({ rel: 'q/door/secret' }));
      const { code, stdout } = runCli(['fix', repo.root, '--undo', journal, '--apply', '--journal', join(base, 'undo.jsonl')]);
      expect(code).toBe(1);
      expect(stdout).toMatch(/INCOMPLETE: 0 of 1 entry reverted, 1 left/);
      expect(stdout).toMatch(/door.*symlink/);
      expect(statSync(secret)).toMatchObject({ uid: REPO_UID, gid: REPO_GID });
      const records = journalLines(readFileSync(join(base, 'undo.jsonl'), 'utf8'));
      expect(records.filter((r) => r.op === 'chown')).toEqual([]);
    });
  });

  it('runs as a non-root user: what it may not chown is left and reported', () => {
    const journals = join(base, 'journals');
    mkdirSync(journals);
    chownSync(journals, REPO_UID, REPO_GID);
    const journal = join(journals, 'nonroot.jsonl');
    const { code, stdout, stderr } = runCli(['fix', repo.root, '--owner', OWNER, '--apply', '--journal', journal], { uid: REPO_UID, gid: REPO_GID });
    expect(code).toBe(1);
    expect(stdout).toMatch(/INCOMPLETE: 0 of 8 entries changed/);
    expect(stdout).toContain('chown failed with EPERM: this process lacks CAP_CHOWN (run the fix as root)');
    expect(stderr).toBe('');
    const records = journalLines(readFileSync(journal, 'utf8'));
    expect(records.filter((r) => r.op === 'failed')).toHaveLength(8);
  });
});

describe('fix --json', () => {
  it('a dry run reports the planned changes in one JSON object', () => {
    const base = reachableTempDir('chunkguard-fix-json-');
    try {
      const dir = join(base, 'd');
      execFileSync('mkdir', [dir]);
      writeFileSync(join(dir, 'a'), 'x');
      const uid = process.geteuid!();
      const other = uid === 0 ? 1 : uid;
      const { code, report } = runJson(['fix', dir, '--owner', `${other}:${other}`]);
      if (uid === 0) {
        expect(code).toBe(1);
        expect(report).toMatchObject({ command: 'fix', dryRun: true, planned: 2, changesShown: 2 });
        expect(report.changes[0]).toMatchObject({ op: 'chown', to: `${other}:${other}` });
      } else {
        expect(code).toBe(0);
        expect(report.planned).toBe(0);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describeAsRoot('a fix remedy that audit prints, pasted as printed', () => {
  let base: string;
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('clears its finding, leaves its journal in a file, and that journal undoes it', () => {
    base = reachableTempDir('chunkguard-remedy-');
    const store = makeStore(join(base, 'store'));
    const chunk = join(dirname(zeroChunkPathIn(store)), 'a'.repeat(64));
    writeFileSync(chunk, 'x', { mode: 0o644 });
    const before = treeState(store);
    const audit = runJson(['audit', store]);
    expect(audit.code).toBe(1);
    const remedy: string = audit.report.findings.find((f: any) => f.code === 'FOREIGN_OWNER').remedy;
    expect(remedy).toMatch(/^chunkguard fix \S+ --owner 34:34 --apply --journal \/var\/tmp\/chunkguard-fix-\$\(date \+%Y%m%d-%H%M%S-%N\)\.jsonl /);
    // chunkguard on PATH, as installed; the remedy run by a shell, as pasted.
    const bin = join(base, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'chunkguard'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`, { mode: 0o755 });
    const pasted = spawnSync('sh', ['-c', remedy], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH}` } });
    expect(pasted.status, pasted.stdout + pasted.stderr).toBe(0);
    const journal = /journal: (\/var\/tmp\/chunkguard-fix-\d{8}-\d{6}-\d{9}\.jsonl) \(revert with --undo\)/.exec(pasted.stdout)?.[1];
    expect(journal, pasted.stdout).toBeDefined();
    try {
      expect(existsSync(journal!)).toBe(true);
      expect(runJson(['audit', store])).toMatchObject({ code: 0, report: { ok: true } });
      expect(lstatSync(chunk)).toMatchObject({ uid: BACKUP_UID, gid: BACKUP_GID });
      const undone = runCli(['fix', store, '--undo', journal!, '--apply', '--journal', join(base, 'undo.jsonl')]);
      expect(undone.code, undone.stderr).toBe(0);
      expect(treeState(store)).toEqual(before);
      expect(lstatSync(chunk)).toMatchObject({ uid: 0, gid: 0 });
    } finally {
      rmSync(journal!, { force: true });
    }
  });
});

describeAsRoot('fix --undo of one entry speaks of one', () => {
  it('"1 entry would get its old owner back", then "got its old owner back"', () => {
    const base = reachableTempDir('chunkguard-undo-one-');
    try {
      const dir = join(base, 'tree');
      mkdirSync(dir);
      chownSync(dir, BACKUP_UID, BACKUP_GID);
      writeFileSync(join(dir, 'one'), 'x');
      const journal = join(base, 'journal');
      expect(runCli(['fix', dir, '--owner', `${BACKUP_UID}:${BACKUP_GID}`, '--apply', '--journal', journal]).code).toBe(0);
      const dry = runCli(['fix', dir, '--undo', journal]);
      expect(dry.stdout).toMatch(/^DRY RUN: 1 entry would get its old owner back; run again with --apply$/m);
      const applied = runCli(['fix', dir, '--undo', journal, '--apply', '--journal', join(base, 'undo-journal')]);
      expect(applied.stdout).toMatch(/^DONE: 1 entry got its old owner back$/m);
      expect(statSync(join(dir, 'one')).uid).toBe(0);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
