/**
 * The single executable (`npm run sea`) as it runs on a backup server without
 * Node.js: built once for this file, copied into an empty directory, and run
 * in a mount namespace where every Node binary of this machine is /dev/null
 * (bound over it). Each command is compared with `node dist/cli.cjs` on the
 * same input: the same exit code, verdict and findings.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { zeroChunkBlob } from '../../src/chunk/zero-chunk.js';
import { CLI, runCli } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot, inCI } from '../helpers/privileged.js';
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

/** The command line that runs `args` in `cwd` (default: `bin`'s directory) with Node hidden (and `mounts` run first), as `uid` when given. */
function hiddenNode(args: string[], uid?: number, mounts: string[] = [], cwd = base): string[] {
  const binds = [...nodeBinaries().map((node) => `mount --bind /dev/null ${quote(node)}`), ...mounts];
  const as = uid === undefined ? '' : `setpriv --reuid=${uid} --regid=${uid} --clear-groups `;
  const script = `${binds.join(' && ')} && cd ${quote(cwd)} && exec ${as}"$@"`;
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...args];
}

interface HiddenOptions {
  uid?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  mounts?: string[];
  cwd?: string;
}

/** `args` (the program first) run with Node hidden (hiddenNode), to its end. */
function runHidden(args: string[], options: HiddenOptions = {}): Run {
  const [command, ...rest] = hiddenNode(args, options.uid, options.mounts, options.cwd);
  const result = spawnSync(command!, rest, { encoding: 'utf8', input: options.input, env: { ...process.env, NO_COLOR: '1', ...options.env }, timeout: 180_000 });
  if (result.error) throw result.error;
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** The x64 executable copied into `base`, TMPDIR the scratch directory unless `env` says otherwise. */
function runSea(args: string[], options: HiddenOptions = {}): Run {
  const before = readdirSync(scratchDir);
  const run = runHidden(['./chunkguard', ...args], { ...options, env: { TMPDIR: scratchDir, ...options.env } });
  expect(readdirSync(scratchDir)).toEqual(before);
  return run;
}

/** What must match between the executable and `node dist/cli.cjs`: the exit, the verdict's first word, the findings. */
function gist(run: { code: number | null; stdout: string }) {
  const report = JSON.parse(run.stdout) as { ok: boolean; summary: string; findings: { code: string; severity: string; path?: string }[] };
  return { code: run.code, ok: report.ok, verdict: report.summary.split(':')[0], findings: report.findings.map(({ code, severity, path }) => ({ code, severity, path })) };
}

/**
 * TMPDIR of every run: a directory of its own on tmpfs, where the executable writes koffi's
 * module (as an unnamed file): nothing of the executable's may ever appear in it, whatever
 * ends the run. The `node dist/cli.cjs` runs compared with it keep their code cache there,
 * in a directory of their own (src/runtime/code-cache.ts), removed after each test; the
 * executable has V8's code cache inside itself and never makes one.
 */
const NODE_CODE_CACHE = /^chunkguard-code-cache-\d+$/;
let scratchDir: string;

describeAsRoot('the single executable on a host without Node', () => {
  let fs: Mounted;

  beforeAll(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'sea.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    base = reachableTempDir('chunkguard-sea-');
    bin = join(base, 'chunkguard');
    copyFileSync(BUILT, bin);
    chmodSync(bin, 0o755);
    fs = mountFs('tmpfs', 64);
    scratchDir = join(fs.mountPoint, 'scratch');
    mkdirSync(scratchDir);
    chmodSync(scratchDir, 0o1777);
  }, 660_000);
  afterEach(() => {
    const left = readdirSync(scratchDir);
    for (const name of left.filter((entry) => NODE_CODE_CACHE.test(entry))) rmSync(join(scratchDir, name), { recursive: true });
    expect(left.filter((entry) => !NODE_CODE_CACHE.test(entry))).toEqual([]);
  });
  afterAll(() => {
    fs?.unmount();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('is built with its checksum, and Node is really gone where it runs', () => {
    const [sum, name] = readFileSync(join(ROOT, 'dist', 'sea', 'chunkguard.sha256'), 'utf8').trim().split(/\s+/);
    expect(name).toBe('chunkguard');
    expect(execFileSync('sha256sum', [BUILT], { encoding: 'utf8' }).split(' ')[0]).toBe(sum);
    expect(readdirSync(base)).toEqual(['chunkguard']);
    const probe = runHidden(['sh', '-c', 'node -e 0; echo "node exit $?"; command -v node']);
    expect(probe.stdout).toMatch(/^node exit [1-9]\d*$/m);
  });

  it('--version is chunkguard\'s, as from node dist/cli.cjs', () => {
    const run = runSea(['--version']);
    expect(run).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect(runCli(['--version']).stdout).toBe(run.stdout);
    // From another directory, by its absolute path, with no node_modules anywhere near.
    const fromRoot = runHidden([bin, 'check', '--probe', join(base, 'probe-from-root'), '--json'], { mounts: [`mkdir ${quote(join(base, 'probe-from-root'))}`], cwd: '/', env: { TMPDIR: scratchDir } });
    expect(fromRoot.code, fromRoot.stderr).toBe(0);
    expect(JSON.parse(fromRoot.stdout)).toMatchObject({ ok: true, probe: true });
  });

  it('check, as root, on a tmpfs store of uid 34: SAFE, touched as uid 34 on a switched thread, as node dist/cli.cjs', () => {
    const store = makeStore(join(fs.mountPoint, 'store-ok'));
    const run = runSea(['check', store, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: true, touchedAs: { uid: BACKUP_UID, gid: BACKUP_GID, via: 'thread', capFowner: false } });
    expect(gist(run)).toEqual(gist(runCli(['check', store, '--json'])));
  });

  it('check as uid 34 on a root-owned zero chunk: TOUCH_EPERM_WRONG_OWNER, exit 1, nothing changed, as node dist/cli.cjs', async () => {
    const store = makeStore(join(fs.mountPoint, 'store-root-chunk'));
    await plantZeroChunk(store, { uid: 0, gid: 0 });
    const state = treeState(store);
    const run = runSea(['check', store, '--json'], { uid: BACKUP_UID });
    expect(run.code, run.stderr).toBe(1);
    expect(gist(run).findings.filter((finding) => finding.severity === 'error').map((finding) => finding.code)).toEqual(['TOUCH_EPERM_WRONG_OWNER']);
    expect(gist(run)).toEqual(gist(runCli(['check', store, '--json'], { uid: BACKUP_UID, gid: BACKUP_GID })));
    expect(treeState(store)).toEqual(state);
  });

  it('audit with worker threads on a store of 10,000 entries: the same counts and findings as node dist/cli.cjs', () => {
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

  it('env: the same verdict and findings as node dist/cli.cjs', () => {
    const run = runSea(['env', '--json']);
    expect(gist(run)).toEqual(gist(runCli(['env', '--json'])));
  });

  it('bad input: one line naming the path, exit 2, as node dist/cli.cjs', () => {
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
  });

  it('SIGINT during a check: killed by SIGINT (130 in a shell) as node dist/cli.cjs is, nothing left in the probe or TMPDIR', async () => {
    /** Started on its own probe directory, interrupted once the check has written there. */
    const interrupted = async (name: string, command: string, args: (probe: string) => string[]) => {
      const probe = join(base, name);
      mkdirSync(probe);
      chownSync(probe, BACKUP_UID, BACKUP_GID);
      const child = spawn(command, args(probe), { stdio: 'ignore', env: { ...process.env, TMPDIR: scratchDir } });
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
      for (let waited = 0; readdirSync(probe).length === 0 && waited < 20_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(readdirSync(probe)).not.toEqual([]);
      child.kill('SIGINT');
      const end = await ended;
      return { ...end, left: readdirSync(probe) };
    };
    const [command, ...rest] = hiddenNode([]);
    const sea = await interrupted('probe-sea', command!, (probe) => [...rest, './chunkguard', 'check', probe, '--probe', '--fixed-sleep']);
    const node = await interrupted('probe-node', process.execPath, (probe) => [CLI, 'check', probe, '--probe', '--fixed-sleep']);
    expect(sea).toEqual({ code: null, signal: 'SIGINT', left: [] });
    expect(node).toEqual(sea);
  });

  it('TMPDIR on a noexec mount: koffi loads from the next directory, and the audit answers as node dist/cli.cjs', () => {
    const noexec = join(base, 'noexec');
    mkdirSync(noexec);
    const store = join(base, 'small-store');
    mkdirSync(join(store, '.chunks', '0000'), { recursive: true });
    const run = runSea(['audit', store, '--workers', '2', '--json'], { env: { TMPDIR: noexec }, mounts: [`mount -t tmpfs -o noexec chunkguard-noexec ${quote(noexec)}`] });
    expect(run.code, run.stderr).toBe(0);
    expect(gist(run)).toEqual(gist(runCli(['audit', store, '--workers', '2', '--json'])));
  });

  it('every scratch directory noexec: exit 2, one line saying why, nothing written', () => {
    const store = join(base, 'small-store-2');
    mkdirSync(join(store, '.chunks', '0000'), { recursive: true });
    const state = treeState(store);
    // The executable and the store seen at /mnt, outside the directories made noexec (each bound over itself, remounted noexec).
    const scratchDirs = ['/tmp', '/var/tmp', '/dev/shm'];
    const mounts = [`mount --bind ${quote(base)} /mnt`, ...scratchDirs.map((dir) => `mount --bind ${quote(dir)} ${quote(dir)} && mount -o remount,bind,noexec ${quote(dir)}`)];
    const run = runHidden(['./chunkguard', 'audit', '/mnt/small-store-2'], { mounts, cwd: '/mnt', env: { TMPDIR: '/tmp' } });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^chunkguard: cannot load the native binding \(koffi, libc\.so\.6\) on linux\/x64: koffi's native module could not be loaded from an unnamed file in /);
    for (const dir of scratchDirs) expect(run.stderr).toContain(`${dir}: ERR_DLOPEN_FAILED`);
    expect(treeState(store)).toEqual(state);
  });

  it('NODE_OPTIONS of the host does not reach it: --require of a missing file changes nothing', () => {
    expect(runSea(['--version'], { env: { NODE_OPTIONS: '--require /nonexistent-chunkguard-preload.js' } })).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});

/** arm64 glibc and libstdc++ for qemu's user-mode emulation (Debian's cross packages). */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const qemu = spawnSync('sh', ['-c', 'command -v qemu-aarch64'], { encoding: 'utf8' }).stdout.trim();
const emulated = qemu !== '' && existsSync(join(ARM64_SYSROOT, 'lib', 'libstdc++.so.6'));

/**
 * The arm64 executable, built the same way (`--arch arm64`), run where it can run: under
 * qemu-aarch64 on this x64 machine, with Node hidden as above. The CLI's paths that matter
 * across architectures: koffi's arm64 module from the blob, the thread switch, the workers.
 */
function describeArm64(name: string, body: () => void): void {
  if (emulated) describeAsRoot(name, body);
  else if (inCI) describe(name, () => it('needs qemu-aarch64 and the arm64 cross libraries', () => expect.fail('.ci/run installs qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross: CI=true forbids skipping')));
  else describe.skip(`${name} (skipped: qemu-aarch64 or ${ARM64_SYSROOT} missing; apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross)`, body);
}

describeArm64('the arm64 executable, under qemu-aarch64', () => {
  let fs: Mounted;
  let dir: string;
  const BUILT_ARM64 = join(ROOT, 'dist', 'sea', 'linux-arm64', 'chunkguard');

  beforeAll(() => {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'sea.mjs'), '--arch', 'arm64'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    dir = reachableTempDir('chunkguard-sea-arm64-');
    copyFileSync(BUILT_ARM64, join(dir, 'chunkguard'));
    chmodSync(join(dir, 'chunkguard'), 0o755);
    fs = mountFs('tmpfs', 64);
  }, 660_000);
  afterAll(() => {
    fs?.unmount();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const runArm64 = (args: string[]): Run => runHidden([qemu, '-L', ARM64_SYSROOT, './chunkguard', ...args], { cwd: dir });

  it('is an arm64 ELF with its checksum, and says chunkguard\'s version', () => {
    const header = readFileSync(BUILT_ARM64).subarray(0, 20);
    expect(header.readUInt16LE(18)).toBe(183); // EM_AARCH64
    const [sum] = readFileSync(join(dirname(BUILT_ARM64), 'chunkguard.sha256'), 'utf8').split(/\s+/);
    expect(execFileSync('sha256sum', [BUILT_ARM64], { encoding: 'utf8' }).split(' ')[0]).toBe(sum);
    expect(runArm64(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('check, as root, on a tmpfs store of uid 34: SAFE, touched as uid 34 on a switched thread, as node dist/cli.cjs', () => {
    const store = makeStore(join(fs.mountPoint, 'store-arm64'));
    const run = runArm64(['check', store, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, touchedAs: { uid: BACKUP_UID, via: 'thread', capFowner: false } });
    expect(gist(run)).toEqual(gist(runCli(['check', store, '--json'])));
  }, 120_000);

  it('audit with worker threads: the same counts and findings as node dist/cli.cjs', () => {
    const store = join(dir, 'audit-store');
    for (let prefix = 0; prefix < 64; prefix++) {
      const sub = join(store, '.chunks', prefix.toString(16).padStart(4, '0'));
      mkdirSync(sub, { recursive: true });
      for (let n = 0; n < 8; n++) writeFileSync(join(sub, `${prefix.toString(16).padStart(4, '0')}${n.toString(16).padStart(60, '0')}`), '');
    }
    execFileSync('chown', ['-R', '34:34', store]);
    chownSync(join(store, '.chunks', '0003', `0003${'5'.padStart(60, '0')}`), 0, 0);
    const run = runArm64(['audit', store, '--workers', '2', '--json']);
    const node = runCli(['audit', store, '--workers', '2', '--json']);
    expect(run.code, run.stderr).toBe(1);
    expect(JSON.parse(run.stdout).scanned).toEqual(JSON.parse(node.stdout).scanned);
    expect(gist(run)).toEqual(gist(node));
  }, 180_000);
});
