/**
 * The single executable (`npm run sea`) as it runs on a backup server without
 * Node.js: built once for this file, copied into an empty directory, and run
 * in a mount namespace where every Node binary of this machine is /dev/null
 * (bound over it). Each command is compared with `node dist/cli.js` on the
 * same input: the same exit code, verdict and findings.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { zeroChunkBlob } from '../../src/chunk/zero-chunk.js';
import { CLI, runCli } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, makeStore, plantZeroChunk, reachableTempDir, treeState } from '../helpers/store.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BUILT = join(ROOT, 'dist', 'sea', 'chunkguard');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

/** Every Node binary a command could find here: this test's, the system's, the one on PATH. */
function nodeBinaries(): string[] {
  const onPath = spawnSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).stdout.trim();
  return [...new Set([process.execPath, '/usr/bin/node', onPath].filter((path) => path && existsSync(path)).map((path) => realpathSync(path)))];
}

const quote = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let base: string;
let bin: string;

/** The command line that runs `args` in `bin`'s directory with Node hidden, as `uid` when given. */
function hiddenNode(args: string[], uid?: number): string[] {
  const binds = nodeBinaries().map((node) => `mount --bind /dev/null ${quote(node)}`);
  const as = uid === undefined ? '' : `setpriv --reuid=${uid} --regid=${uid} --clear-groups `;
  const script = `${binds.join(' && ')} && cd ${quote(base)} && exec ${as}"$@"`;
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...args];
}

function runSea(args: string[], options: { uid?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const [command, ...rest] = hiddenNode(['./chunkguard', ...args], options.uid);
  const result = spawnSync(command!, rest, { encoding: 'utf8', input: options.input, env: { ...process.env, NO_COLOR: '1', ...options.env }, timeout: 120_000 });
  if (result.error) throw result.error;
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** What must match between the executable and `node dist/cli.js`: the exit, the verdict's first word, the findings. */
function gist(run: { code: number | null; stdout: string }) {
  const report = JSON.parse(run.stdout) as { ok: boolean; summary: string; findings: { code: string; severity: string; path?: string }[] };
  return { code: run.code, ok: report.ok, verdict: report.summary.split(':')[0], findings: report.findings.map(({ code, severity, path }) => ({ code, severity, path })) };
}

/** chunkguard's temporary directories in TMPDIR: none may stay behind. */
const leftovers = (): string[] => readdirSync(tmpdir()).filter((name) => /^chunkguard-[A-Za-z0-9]{6}$/.test(name));

describeAsRoot('the single executable on a host without Node', () => {
  let fs: Mounted;
  let before: string[];

  beforeAll(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'sea.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    base = reachableTempDir('chunkguard-sea-');
    bin = join(base, 'chunkguard');
    copyFileSync(BUILT, bin);
    execFileSync('chmod', ['755', bin]);
    fs = mountFs('tmpfs', 64);
    before = leftovers();
  }, 660_000);
  afterAll(() => {
    fs?.unmount();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('is built with its checksum, and Node is really gone where it runs', () => {
    const [sum, name] = readFileSync(join(ROOT, 'dist', 'sea', 'chunkguard.sha256'), 'utf8').trim().split(/\s+/);
    expect(name).toBe('chunkguard');
    expect(execFileSync('sha256sum', [BUILT], { encoding: 'utf8' }).split(' ')[0]).toBe(sum);
    expect(readdirSync(base)).toEqual(['chunkguard']);
    const [command, ...rest] = hiddenNode(['sh', '-c', 'node -e 0; echo "node exit $?"; command -v node']);
    const probe = spawnSync(command!, rest, { encoding: 'utf8' });
    expect(probe.stdout).toMatch(/^node exit [1-9]\d*$/m);
  });

  it('--version is chunkguard\'s, as from node dist/cli.js', () => {
    const run = runSea(['--version']);
    expect(run).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect(runCli(['--version']).stdout).toBe(run.stdout);
  });

  it('check, as root, on a tmpfs store of uid 34: SAFE, touched as uid 34 on a switched thread, as node dist/cli.js', () => {
    const store = makeStore(join(fs.mountPoint, 'store-ok'));
    const run = runSea(['check', store, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: true, touchedAs: { uid: BACKUP_UID, gid: BACKUP_GID, via: 'thread', capFowner: false } });
    expect(gist(run)).toEqual(gist(runCli(['check', store, '--json'])));
    expect(leftovers()).toEqual(before);
  });

  it('check as uid 34 on a root-owned zero chunk: TOUCH_EPERM_WRONG_OWNER, exit 1, nothing changed, as node dist/cli.js', async () => {
    const store = makeStore(join(fs.mountPoint, 'store-root-chunk'));
    await plantZeroChunk(store, { uid: 0, gid: 0 });
    const state = treeState(store);
    const run = runSea(['check', store, '--json'], { uid: BACKUP_UID });
    expect(run.code, run.stderr).toBe(1);
    expect(gist(run).findings.filter((finding) => finding.severity === 'error').map((finding) => finding.code)).toEqual(['TOUCH_EPERM_WRONG_OWNER']);
    expect(gist(run)).toEqual(gist(runCli(['check', store, '--json'], { uid: BACKUP_UID, gid: BACKUP_GID })));
    expect(treeState(store)).toEqual(state);
  });

  it('audit with worker threads on a store of 10,000 entries: the same counts and findings as node dist/cli.js', () => {
    const store = join(base, 'audit-store');
    execFileSync(process.execPath, [join(ROOT, 'bench', 'make-store.mjs'), store, '10000'], { stdio: 'ignore' });
    const run = runSea(['audit', store, '--workers', '2', '--json']);
    const node = runCli(['audit', store, '--workers', '2', '--json']);
    expect(run.code, run.stderr).toBe(node.code);
    const [sea, ours] = [JSON.parse(run.stdout), JSON.parse(node.stdout)];
    expect(sea.concurrency).toMatchObject({ workers: 2 });
    expect(sea.scanned).toEqual(ours.scanned);
    expect(sea.scanned.entries).toBeGreaterThan(10_000);
    expect(gist(run)).toEqual(gist(node));
  });

  it('env: the same verdict and findings as node dist/cli.js', () => {
    const run = runSea(['env', '--json']);
    expect(gist(run)).toEqual(gist(runCli(['env', '--json'])));
  });

  it('bad input: one line naming the path, exit 2, as node dist/cli.js', () => {
    const missing = join(base, 'missing');
    const run = runSea(['check', missing]);
    expect(run).toMatchObject({ code: 2, stdout: '', stderr: `chunkguard: ${missing}: no such directory\n` });
    expect(runCli(['check', missing])).toMatchObject({ code: run.code, stdout: run.stdout, stderr: run.stderr });
  });

  it('the helper is the executable in its helper role: as uid 34 it measures what dist/helper.cjs measures', async () => {
    const blob = (await zeroChunkBlob()).toString('base64');
    /** The request the check sends its helper (check/as-user.ts), for a store of its own. */
    const request = (name: string): string => {
      const store = makeStore(join(fs.mountPoint, name));
      const root = statSync(store, { bigint: true });
      const plan = { store, probe: false, mode: 'adaptive', storeOwner: { uid: BACKUP_UID, gid: BACKUP_GID }, rootIdentity: { dev: root.dev.toString(), ino: root.ino.toString() } };
      return JSON.stringify({ plan, blob });
    };
    const run = runSea([], { uid: BACKUP_UID, input: request('store-helper-sea'), env: { CHUNKGUARD_SEA_ROLE: 'helper' } });
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout);
    expect(answer.error).toBeUndefined();
    const node = spawnSync('setpriv', ['--reuid=34', '--regid=34', '--clear-groups', process.execPath, join(ROOT, 'dist', 'helper.cjs')], { input: request('store-helper-node'), encoding: 'utf8' });
    const ours = JSON.parse(node.stdout);
    const outcome = (measurement: { findings: { code: string }[]; chunkAction: string }) => ({ codes: measurement.findings.map((f) => f.code), chunkAction: measurement.chunkAction });
    expect(outcome(answer.measurement)).toEqual({ codes: [], chunkAction: 'inserted' });
    expect(outcome(answer.measurement)).toEqual(outcome(ours.measurement));
    expect(leftovers()).toEqual(before);
  });

  it('SIGINT during a check: ends as node dist/cli.js ends (130 in a shell), nothing left in the store or TMPDIR', async () => {
    const probe = join(base, 'probe');
    mkdirSync(probe);
    chownSync(probe, BACKUP_UID, BACKUP_GID);
    const interrupted = (command: string, args: string[]) =>
      new Promise<Run>((resolve) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (data: string) => (stderr += data));
        setTimeout(() => child.kill('SIGINT'), 700);
        child.on('close', (code, signal) => resolve({ code, signal, stdout: '', stderr }));
      });
    const [command, ...rest] = hiddenNode(['./chunkguard', 'check', probe, '--probe', '--fixed-sleep']);
    const sea = await interrupted(command!, rest);
    const node = await interrupted(process.execPath, [CLI, 'check', probe, '--probe', '--fixed-sleep']);
    expect({ code: sea.code, signal: sea.signal }).toEqual({ code: node.code, signal: node.signal });
    // A shell reports a process ended by SIGINT as 128 + 2.
    expect(sea.signal === 'SIGINT' || sea.code === 130).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readdirSync(probe)).toEqual([]);
    expect(leftovers()).toEqual(before);
  });
});
