/**
 * chunkguard runs as root over a store that a less trusted user can write.
 * A symlink planted at any level, or swapped in while a command runs, must
 * never make it write, touch or chown anything outside the store. The store
 * here is root-owned, so the check runs as root with CAP_FOWNER: a followed
 * touch or write would succeed, and show up outside.
 */
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { zeroChunkBlob, zeroChunkDigest } from '../../src/chunk/zero-chunk.js';
import { runCli, runJson } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeStore, treeState, zeroChunkPathIn } from '../helpers/store.js';

const ROOT = { uid: 0, gid: 0 };
const DIGEST = zeroChunkDigest();
const PREFIX = DIGEST.slice(0, 4);
const OLD = new Date('2020-01-01T00:00:00Z');
const SWAPPER = join(import.meta.dirname, '..', 'helpers', 'swapper.mjs');

let fs: Mounted;
let n = 0;
let store: string;
let outside: string;

/** What a followed symlink would reach: a prefix dir with a zero chunk, a .chunks, a file, a subtree, all uid 1000 with old times. */
async function makeOutside(): Promise<string> {
  const dir = join(fs.mountPoint, `outside${n}`);
  const blob = await zeroChunkBlob();
  for (const prefix of [join(dir, PREFIX), join(dir, 'chunks', PREFIX)]) {
    mkdirSync(prefix, { recursive: true });
    writeFileSync(join(prefix, DIGEST), blob);
  }
  mkdirSync(join(dir, 'sub'));
  for (let i = 0; i < 50; i++) writeFileSync(join(dir, 'sub', `file${i}`), 'x');
  writeFileSync(join(dir, 'victim'), 'precious');
  const own = (path: string) => {
    chownSync(path, 1000, 1000);
    utimesSync(path, OLD, OLD);
  };
  for (const name of [PREFIX, join(PREFIX, DIGEST), 'chunks', join('chunks', PREFIX), join('chunks', PREFIX, DIGEST), 'sub', 'victim']) own(join(dir, name));
  for (let i = 0; i < 50; i++) own(join(dir, 'sub', `file${i}`));
  return dir;
}

/** A tmpfs for the block, and for each test a root-owned store and a fresh outside tree. */
function withStoreAndOutside(): void {
  beforeAll(() => {
    fs = mountFs('tmpfs', 64);
  });
  afterAll(() => fs.unmount());
  beforeEach(async () => {
    n++;
    store = makeStore(join(fs.mountPoint, `store${n}`), ROOT);
    outside = await makeOutside();
  });
}

/** Where a symlink goes in the store, and what outside it points at. */
const LOCATIONS: Array<[string, () => string, () => string]> = [
  ['.chunks', () => join(store, '.chunks'), () => join(outside, 'chunks')],
  ['the prefix directory', () => join(store, '.chunks', PREFIX), () => join(outside, PREFIX)],
  ['the chunk path', () => zeroChunkPathIn(store), () => join(outside, 'victim')],
];

const errorCodes = (report: { findings: Array<{ code: string; severity: string }> }) =>
  report.findings.filter((finding) => finding.severity === 'error').map((finding) => finding.code);

describeAsRoot('planted symlinks: UNSAFE_PATH, and nothing outside the store changes', () => {
  withStoreAndOutside();

  it.each(LOCATIONS)('at %s: check, audit and fix --apply report it and leave the target alone', (_, at, target) => {
    rmSync(at(), { recursive: true, force: true });
    symlinkSync(target(), at());
    const before = treeState(outside);

    const check = runJson(['check', store]);
    expect(check.code).toBe(1);
    expect(errorCodes(check.report)).toEqual(['UNSAFE_PATH']);
    expect(check.report.findings.find((finding: { code: string }) => finding.code === 'UNSAFE_PATH').path).toBe(at());

    const audit = runJson(['audit', store]);
    expect(audit.code).toBe(1);
    expect(errorCodes(audit.report)).toContain('UNSAFE_PATH');

    const fix = runCli(['fix', store, '--owner', '34:34', '--apply', '--journal', join(fs.mountPoint, `journal${n}`)]);
    expect(fix.code).not.toBe(2);

    expect(treeState(outside)).toEqual(before);
  });
});

/** Run `body` while the swapper flips `path` and a symlink to `target`; returns the swapper's count. */
async function whileSwapping(path: string, target: string, body: () => void): Promise<number> {
  const stop = join(fs.mountPoint, `stop${n}`);
  const swapper = spawn(process.execPath, [SWAPPER, path, target, stop], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  swapper.stdout.setEncoding('utf8').on('data', (data: string) => (out += data));
  const exited = new Promise((resolve) => swapper.on('close', resolve));
  try {
    body();
  } finally {
    writeFileSync(stop, '');
    await exited;
  }
  return Number(out);
}

describeAsRoot('a directory or chunk swapped for a symlink while commands run (a second process in a loop)', () => {
  withStoreAndOutside();

  it.each(LOCATIONS)('%s: 30 checks each pass or refuse, and nothing outside is written or touched', async (_, at, target) => {
    const before = treeState(outside);
    const outcomes = new Map<string, number>();
    const swaps = await whileSwapping(at(), target(), () => {
      for (let i = 0; i < 30; i++) {
        const { code, stdout, stderr } = runCli(['check', store, '--json']);
        // Exit 2 only when .chunks itself is absent as the command starts: not a store at that moment.
        const outcome = code === 2 ? `bad input: ${/no \.chunks directory/.test(stderr)}` : `${code} ${errorCodes(JSON.parse(stdout)).join(',')}`;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
    });
    expect(swaps).toBeGreaterThan(30);
    // Refused, or a step that lost a race with the swap (the entry vanished mid-step): reported, never a crash.
    for (const outcome of outcomes.keys()) expect(outcome).toMatch(/^0 $|^1 (UNSAFE_PATH|INODE_CHANGED|TOUCH_FAILED|CHUNK_WRITE_FAILED)$|^bad input: true$/);
    expect(treeState(outside)).toEqual(before);
  });

  it('a subtree swapped while fix --apply chowns it: nothing outside is chowned', async () => {
    const sub = join(store, 'sub');
    const before = treeState(outside);
    let changed = 0;
    for (let round = 0; round < 5; round++) {
      rmSync(sub, { recursive: true, force: true });
      mkdirSync(sub);
      for (let i = 0; i < 2000; i++) {
        writeFileSync(join(sub, `file${i}`), 'x');
        chownSync(join(sub, `file${i}`), 1000, 1000);
      }
      await whileSwapping(sub, join(outside, 'sub'), () => {
        const fix = runJson(['fix', store, '--owner', '0:0', '--apply', '--journal', join(fs.mountPoint, `journal${n}-${round}`)]);
        expect(fix.code).not.toBe(2);
        changed += fix.report.changed;
      });
      expect(readdirSync(join(outside, 'sub')).length).toBe(50);
    }
    expect(changed).toBeGreaterThan(0);
    expect(treeState(outside)).toEqual(before);
  });
});
