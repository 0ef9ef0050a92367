/**
 * Checks beside each other and beside an audit or a fix on the same store:
 * every one succeeds, the store ends with one valid zero chunk, and no temp
 * file is left.
 */
import { chownSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEMP_MARKER } from '../../src/store/insert.js';
import { zeroChunkBlob } from '../../src/chunk/zero-chunk.js';
import { runCliAsync } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeIfKernel } from '../helpers/kernel.js';
import { BACKUP_GID, BACKUP_UID, makeStore, zeroChunkPathIn } from '../helpers/store.js';

let fs: Mounted;
let n = 0;

function freshStore(): string {
  return makeStore(join(fs.mountPoint, `store${++n}`));
}

/** A store that also holds `count` chunk-like files owned by uid 1000, for audit and fix to work through. */
function busyStore(count: number): string {
  const store = freshStore();
  for (let prefix = 0; prefix < 64; prefix++) {
    const dir = join(store, '.chunks', prefix.toString(16).padStart(4, '0'));
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    // The store's directories are the GC user's; only the chunks are someone else's.
    chownSync(dir, BACKUP_UID, BACKUP_GID);
    for (let i = 0; i < count / 64; i++) {
      const file = join(dir, `${prefix.toString(16).padStart(4, '0')}${i.toString(16).padStart(60, '0')}`);
      writeFileSync(file, 'x');
      chownSync(file, 1000, 1000);
    }
  }
  return store;
}

async function expectOneValidChunk(store: string): Promise<void> {
  const prefix = join(store, '.chunks', 'bb9f');
  expect(readdirSync(prefix)).toEqual([zeroChunkPathIn(store).split('/').pop()]);
  expect(readFileSync(zeroChunkPathIn(store)).equals(await zeroChunkBlob())).toBe(true);
}

const checks = (store: string, count: number, env?: NodeJS.ProcessEnv) =>
  Array.from({ length: count }, () => runCliAsync(['check', store, '--json'], { env }));

/**
 * `count` checks that all stop just before renaming their temp file into
 * place, then go on together: every rename races every other.
 */
async function racingChecks(store: string, count: number) {
  const release = join(fs.mountPoint, `release${n}`);
  const running = checks(store, count, { CHUNKGUARD_TEST_FAULT: `before-rename:hold=${release}` });
  const prefix = join(store, '.chunks', 'bb9f');
  const deadline = Date.now() + 30_000;
  while (readdirSync(prefix).filter((name) => name.includes(TEMP_MARKER)).length < count && Date.now() < deadline) {
    await sleep(20);
  }
  expect(readdirSync(prefix).filter((name) => name.includes(TEMP_MARKER)).length).toBe(count);
  writeFileSync(release, '');
  return Promise.all(running);
}

function expectAllSafe(results: Array<{ code: number | null; stdout: string; stderr: string }>): void {
  for (const result of results) {
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout);
    expect(report.findings.filter((finding: { severity: string }) => finding.severity === 'error')).toEqual([]);
    expect(result.code).toBe(0);
  }
}

describeIfKernel('ext4', 'concurrent checks on one store (ext4)', () => {
  beforeAll(() => {
    fs = mountFs('ext4');
  });
  afterAll(() => fs.unmount());

  it('16 checks at once on a store without the zero chunk all pass; one chunk, no temp file', async () => {
    const store = freshStore();
    const results = await Promise.all(checks(store, 16));
    expectAllSafe(results);
    await expectOneValidChunk(store);
  });

  it('16 checks whose renames race (all held just before it) all pass: one inserts, the others keep its chunk', async () => {
    const store = freshStore();
    const results = await racingChecks(store, 16);
    expectAllSafe(results);
    const actions = results.map((result) => JSON.parse(result.stdout).chunkAction);
    // Whoever renamed first inserted; the others found its chunk there and kept it, as the server does.
    expect(actions.filter((action) => action === 'inserted').length).toBe(1);
    expect(actions.filter((action) => action === 'touched').length).toBe(15);
    await expectOneValidChunk(store);
  });

  it('16 checks at once on a store without the prefix directory all pass: one creates it, the others use it', async () => {
    const store = freshStore();
    rmdirSync(join(store, '.chunks', 'bb9f'));
    const results = await Promise.all(checks(store, 16));
    expectAllSafe(results);
    const created = results.filter((result) => JSON.parse(result.stdout).findings.some((finding: { code: string }) => finding.code === 'PREFIX_DIR_CREATED'));
    expect(created.length).toBe(1);
    await expectOneValidChunk(store);
  });

  it('16 checks at once on a store whose zero chunk is empty all pass; it is replaced once by a valid one', async () => {
    const store = freshStore();
    writeFileSync(zeroChunkPathIn(store), '');
    chownSync(zeroChunkPathIn(store), BACKUP_UID, BACKUP_GID);
    const results = await racingChecks(store, 16);
    expectAllSafe(results);
    await expectOneValidChunk(store);
  });

  it('8 checks while an audit walks the store all pass, and the audit reports what it found', async () => {
    const store = busyStore(20_000);
    const [audit, ...results] = await Promise.all([runCliAsync(['audit', store, '--json']), ...checks(store, 8)]);
    expectAllSafe(results);
    expect(audit.code).toBe(1);
    const report = JSON.parse(audit.stdout);
    expect(report.findings.map((finding: { code: string }) => finding.code)).toContain('FOREIGN_OWNER');
    await expectOneValidChunk(store);
  });

  it('8 checks while fix --apply changes 20,000 owners all pass, and the fix completes', async () => {
    const store = busyStore(20_000);
    const journal = join(fs.mountPoint, `journal${n}.jsonl`);
    const [fix, ...results] = await Promise.all([
      runCliAsync(['fix', store, '--owner', `${BACKUP_UID}:${BACKUP_GID}`, '--apply', '--journal', journal, '--json']),
      ...checks(store, 8),
    ]);
    expectAllSafe(results);
    expect(fix.code).toBe(0);
    expect(JSON.parse(fix.stdout).changed).toBeGreaterThanOrEqual(20_000);
    await expectOneValidChunk(store);
  });
});
