import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, runCli, runJson } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeStore, reachableTempDir, treeState } from '../helpers/store.js';

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
