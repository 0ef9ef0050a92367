import { spawn } from 'node:child_process';
import { lchownSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeKopiaRepo, REPO_GID, REPO_UID } from '../helpers/repo.js';
import { makeStore, reachableTempDir, treeState, zeroChunkPathIn } from '../helpers/store.js';

const base = reachableTempDir('chunkguard-cli-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const file = join(base, 'a-file');
writeFileSync(file, 'x');
const plain = join(base, 'plain-dir');
mkdirSync(plain);
const dangling = join(base, 'dangling');
symlinkSync(join(base, 'nowhere'), dangling);
const store = join(base, 'store');
mkdirSync(join(store, '.chunks'), { recursive: true });

describe('chunkguard check: bad input', () => {
  const cases: [string, string[], RegExp][] = [
    ['a missing path', ['check', join(base, 'missing')], new RegExp(`^chunkguard: ${join(base, 'missing')}: no such directory$`)],
    ['a regular file', ['check', file], new RegExp(`^chunkguard: ${file}: not a directory \\(it is a regular file\\)$`)],
    ['a directory with no .chunks', ['check', plain], new RegExp(`^chunkguard: ${plain}: no \\.chunks directory: not a chunk store \\(use --probe`)],
    ['a dangling symlink as the store', ['check', dangling], new RegExp(`^chunkguard: ${dangling}: is a dangling symlink$`)],
    ['an unknown user', ['check', store, '--as-user', 'no-such-user'], /^chunkguard: --as-user no-such-user: no user named "no-such-user" in \/etc\/passwd$/],
    ['a malformed user', ['check', store, '--as-user', '1:2:3'], /^chunkguard: --as-user 1:2:3: expected NAME, UID, NAME:GROUP or UID:GID$/],
    ['a malformed cutoff', ['check', store, '--cutoff-minutes', '-5'], /^chunkguard: option '--cutoff-minutes <minutes>' argument '-5' is invalid/],
    ['no store argument', ['check'], /^chunkguard: missing required argument 'store'$/],
    ['an unknown option', ['check', store, '--frobnicate'], /^chunkguard: unknown option '--frobnicate'$/],
  ];
  it.each(cases)('%s: one line naming it, exit 2, nothing written', (_, args, message) => {
    const before = treeState(base);
    const { code, stdout, stderr } = runCli(args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(message);
    expect(treeState(base)).toEqual(before);
  });

  it('--help lists the options and exits 0', () => {
    const { code, stdout } = runCli(['check', '--help']);
    expect(code).toBe(0);
    for (const option of ['--probe', '--json', '--as-user', '--fixed-sleep', '--cutoff-minutes']) expect(stdout).toContain(option);
  });
});

describe('chunkguard check: output', () => {
  it('--json prints one object with ok and findings', () => {
    const { code, report, stdout } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(Object.keys(JSON.parse(stdout))).toEqual(expect.arrayContaining(['ok', 'findings', 'summary', 'touchedAs', 'before', 'after', 'waits', 'filesystem']));
    expect(report.ok).toBe(true);
    for (const finding of report.findings) expect(['error', 'warning', 'info']).toContain(finding.severity);
  });
});

function killDuringProbe(args: string[], signal: NodeJS.Signals, options: { uid?: number } = {}): Promise<{ signal: NodeJS.Signals | null; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'check', ...args, '--probe', '--fixed-sleep'], { stdio: 'ignore', ...options });
    setTimeout(() => child.kill(signal), 500);
    child.on('close', (code, killedBy) => resolve({ code, signal: killedBy }));
  });
}

describeAsRoot('chunkguard check: signals during --probe', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} in-process (as root) removes the probe directory`, async () => {
      const dir = join(base, `probe-${signal}`);
      mkdirSync(dir);
      const result = await killDuringProbe([dir, '--as-user', 'root'], signal);
      expect(result.signal).toBe(signal);
      expect(readdirSync(dir)).toEqual([]);
    });

    it(`${signal} while a helper runs as uid 34 removes the probe directory`, async () => {
      const dir = makeStore(join(base, `probe-helper-${signal}`));
      const result = await killDuringProbe([dir], signal);
      expect(result.signal).toBe(signal);
      // The helper gets SIGTERM from its parent's exit handler and cleans up itself.
      await new Promise((r) => setTimeout(r, 300));
      expect(readdirSync(dir)).toEqual(['.chunks']);
    });
  }
});

describeAsRoot('chunkguard check: SIGINT the moment the probe directory appears', () => {
  it('leaves nothing, however early it comes (20 runs, each interrupted within a millisecond of the mkdir)', async () => {
    const leftovers: string[][] = [];
    for (let run = 0; run < 20; run++) {
      const dir = join(base, `probe-early-${run}`);
      mkdirSync(dir);
      const child = spawn(process.execPath, [CLI, 'check', dir, '--probe', '--fixed-sleep'], { stdio: 'ignore' });
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_, signal) => resolve(signal)));
      while (readdirSync(dir).length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      child.kill('SIGINT');
      expect(await ended).toBe('SIGINT');
      // Before the fix, the removal was registered after the mkdir: a signal in between killed the process outright.
      if (readdirSync(dir).length > 0) leftovers.push(readdirSync(dir));
    }
    expect(leftovers).toEqual([]);
  }, 120_000);
});

describeAsRoot('chunkguard check run by a non-root user', () => {
  it('uid 34 checks its own store in-process', () => {
    const own = makeStore(join(base, 'store-34'));
    const { code, report } = runJson(['check', own], { uid: 34, gid: 34 });
    expect(code).toBe(0);
    // The GC user (the owner of .chunks) is this process's user: no switch needed.
    expect(report.touchedAs).toMatchObject({ uid: 34, via: 'self', reason: 'store owner', capFowner: false });
    expect(report.gcUser).toMatchObject({ uid: 34, from: 'store owners' });
  });

  it('uid 34 cannot switch to another user: exit 2', () => {
    const own = makeStore(join(base, 'store-34b'));
    const { code, stderr } = runCli(['check', own, '--as-user', 'root'], { uid: 34, gid: 34 });
    expect(code).toBe(2);
    expect(stderr.trim()).toBe('chunkguard: --as-user root: switching to uid 0 needs root; this process runs as uid 34');
  });
});

describe('chunkguard --version', () => {
  it("prints chunkguard's own version, whatever npm script runs it", () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    const { code, stdout } = runCli(['--version'], { env: { npm_package_version: '9.9.9-not-chunkguard' } });
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(version);
  });
});

describe('every command: the exit codes its --help states', () => {
  it.each(['check', 'audit', 'fix', 'env'])('chunkguard %s --help: exit 1 is an error finding, or a warning with --fail-on warning', (command) => {
    const { code, stdout } = runCli([command, '--help']);
    expect(code).toBe(0);
    const text = stdout.replace(/\s+/g, ' ');
    expect(text).toMatch(/Exit 0 [^,]+, 1 an error finding \(or a warning with --fail-on warning\), 2 bad input\./);
    expect(text).toContain('--fail-on <severity>');
    expect(text).toContain('(choices: "error", "warning", default: "error")');
  });

  it('--fail-on accepts only error and warning: anything else is bad input (exit 2, one line)', () => {
    const { code, stdout, stderr } = runCli(['audit', store, '--fail-on', 'info']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim()).toMatch(/^chunkguard: option '--fail-on <severity>' argument 'info' is invalid/);
  });
});

describeAsRoot('a warning fails nothing but with --fail-on warning; ok, the exit and the _ok gauge agree', () => {
  it('audit of a repository whose only finding is a warning (a symlink): exit 0 and chunkguard_audit_ok 1; with --fail-on warning exit 1 and 0', () => {
    const repo = makeKopiaRepo(join(base, 'warned'), { rootOwned: 0 });
    const link = join(repo.root, 'p', '0a1', 'link.f');
    symlinkSync('/etc/hostname', link);
    lchownSync(link, REPO_UID, REPO_GID);
    const plain = runCli(['audit', repo.root, '--format', 'prometheus']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`chunkguard_audit_ok{dir="${repo.root}"} 1\n`);
    expect(plain.stdout).toContain(`chunkguard_audit_findings{dir="${repo.root}",code="NON_REGULAR_FILE",severity="warning"} 1\n`);
    expect(runJson(['audit', repo.root])).toMatchObject({ code: 0, report: { ok: true, summary: expect.stringMatching(/^WARNINGS: /) } });
    const strict = runCli(['audit', repo.root, '--format', 'prometheus', '--fail-on', 'warning']);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(`chunkguard_audit_ok{dir="${repo.root}"} 0\n`);
    expect(runJson(['audit', repo.root, '--fail-on', 'warning'])).toMatchObject({ code: 1, report: { ok: false } });
    const human = runCli(['audit', repo.root, '--fail-on', 'warning']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^WARNINGS: 1 offending entry/);
  });
});

describeAsRoot('absolute paths whatever the working directory', () => {
  /** Every mention of `name` in `text` is part of the absolute path under `parent` (and there is one, unless `optional`). */
  function onlyAbsolute(text: string, parent: string, name: string, optional = false): void {
    const mentions = text.split(name).length - 1;
    if (!optional) expect(mentions).toBeGreaterThan(0);
    expect(text.split(`${parent}/${name}`).length - 1, text).toBe(mentions);
  }
  let cwd: string;
  let store: string;
  const name = 'rel-store';

  beforeAll(() => {
    cwd = join(base, 'elsewhere');
    mkdirSync(cwd);
    store = makeStore(join(cwd, name));
    // A root-owned chunk in a store of the GC user (uid 34): findings with paths and remedies.
    writeFileSync(join(dirname(zeroChunkPathIn(store)), 'a'.repeat(64)), 'x', { mode: 0o644 });
  });

  it('audit <relative path> --format prometheus labels the absolute path', () => {
    const { code, stdout } = runCli(['audit', name, '--format', 'prometheus'], { cwd });
    expect(code).toBe(1);
    expect(stdout).toContain(`chunkguard_audit_ok{dir="${store}"} 0\n`);
    onlyAbsolute(stdout, cwd, name);
  });

  it('audit <relative path>: the JSON report (dir, finding paths, examples, remedies) and the human text', () => {
    const { code, report, stdout } = runJson(['audit', name], { cwd });
    expect(code).toBe(1);
    expect(report.dir).toBe(store);
    expect(report.findings.find((f: any) => f.code === 'FOREIGN_OWNER').remedy).toMatch(new RegExp(`^chunkguard fix ${store} --owner 34:34 --apply --journal /var/tmp/`));
    onlyAbsolute(stdout, cwd, name);
    onlyAbsolute(runCli(['audit', name], { cwd }).stdout, cwd, name);
  });

  it('check <relative path> --json names the store, the chunk and every finding path absolutely', () => {
    const { code, report, stdout } = runJson(['check', name, '--as-user', 'backup'], { cwd });
    expect(code).toBe(0);
    expect(report.store).toBe(store);
    expect(report.chunkPath.startsWith(`${store}/.chunks/`)).toBe(true);
    onlyAbsolute(stdout, cwd, name);
    // The human verdict names the filesystem and mount point; any path it names is absolute.
    onlyAbsolute(runCli(['check', name, '--as-user', 'backup'], { cwd }).stdout, cwd, name, true);
  });

  it('env <relative path> --json names the path absolutely', () => {
    const { code, report, stdout } = runJson(['env', name], { cwd });
    expect(code).toBe(0);
    expect(report.path.path).toBe(store);
    onlyAbsolute(stdout, cwd, name);
  });
});
