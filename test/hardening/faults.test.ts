/**
 * Faults at every step of insert and check: injected deterministically
 * (CHUNKGUARD_TEST_FAULT=<step>:eio|kill), SIGKILL at random moments, a full
 * filesystem, a disk that fails writes, and signals during --probe. The
 * store always holds either no zero chunk or a valid one, a failure is
 * reported with its errno, and what a killed run leaves is removed by the next.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zeroChunkBlob, zeroChunkProblem } from '../../src/chunk/zero-chunk.js';
import { TEMP_MARKER } from '../../src/store/insert.js';
import { PROBE_PREFIX } from '../../src/store/leftovers.js';
import { runCliAsync, runJson } from '../helpers/cli.js';
import { type FuseMount, mountAtimefs } from '../helpers/fuse.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { describeIfKernel } from '../helpers/kernel.js';
import { BACKUP_GID, BACKUP_UID, makeStore, zeroChunkPathIn } from '../helpers/store.js';

const ROOT = { uid: 0, gid: 0 };
const INSERT_STEPS = ['temp-created', 'written', 'chowned', 'before-rename'] as const;

let fs: Mounted;
let n = 0;

const prefixOf = (store: string) => join(store, '.chunks', 'bb9f');
const tempsIn = (store: string) => readdirSync(prefixOf(store)).filter((name) => name.includes(TEMP_MARKER));
const errors = (report: { findings: Array<{ severity: string }> }) => report.findings.filter((finding) => finding.severity === 'error') as any[];

/** The invariant: no zero chunk, or a valid one; nothing else but temp files in its directory. */
async function expectNoneOrValid(store: string): Promise<'none' | 'valid'> {
  const chunk = zeroChunkPathIn(store);
  for (const name of readdirSync(prefixOf(store))) {
    expect(name === chunk.split('/').pop() || name.includes(TEMP_MARKER)).toBe(true);
  }
  if (!existsSync(chunk)) return 'none';
  expect(await zeroChunkProblem(readFileSync(chunk))).toBeUndefined();
  return 'valid';
}

describeIfKernel('ext4', 'injected faults at each step of insert and check', () => {
  beforeAll(() => {
    fs = mountFs('ext4');
  });
  afterAll(() => fs.unmount());

  describe.each([
    ['as root (root-owned store)', ROOT],
    ['as the store owner uid 34 (the CLI switches its own thread)', { uid: BACKUP_UID, gid: BACKUP_GID }],
  ])('%s', (_, owner) => {
    it.each(INSERT_STEPS)('EIO at %s: exit 1, CHUNK_WRITE_FAILED naming EIO, no chunk, no temp file', async (step) => {
      const store = makeStore(join(fs.mountPoint, `store${++n}`), owner);
      const { code, report } = runJson(['check', store], { env: { CHUNKGUARD_TEST_FAULT: `${step}:eio` } });
      expect(code).toBe(1);
      expect(errors(report)).toMatchObject([{ code: 'CHUNK_WRITE_FAILED', evidence: { errno: 'EIO' } }]);
      expect(errors(report)[0].message).toContain('EIO');
      expect(readdirSync(prefixOf(store))).toEqual([]);
    });

    it('EIO between stat and touch: exit 1, TOUCH_FAILED naming EIO, the inserted chunk valid, no temp file', async () => {
      const store = makeStore(join(fs.mountPoint, `store${++n}`), owner);
      const { code, report } = runJson(['check', store], { env: { CHUNKGUARD_TEST_FAULT: 'between-stat-and-touch:eio' } });
      expect(code).toBe(1);
      expect(errors(report)).toMatchObject([{ code: 'TOUCH_FAILED', evidence: { errno: 'EIO' } }]);
      expect(await expectNoneOrValid(store)).toBe('valid');
      expect(tempsIn(store)).toEqual([]);
    });

    it.each([...INSERT_STEPS, 'between-stat-and-touch'])('SIGKILL at %s: no chunk or a valid one; the next run removes the temp file and passes', async (step) => {
      const store = makeStore(join(fs.mountPoint, `store${++n}`), owner);
      const killed = await runCliAsync(['check', store, '--json'], { env: { CHUNKGUARD_TEST_FAULT: `${step}:kill` } });
      // The CLI measures in its own process (as root, or on its thread switched to uid 34): it dies.
      // A helper's death is the library's case (test/check/library.test.ts).
      expect(killed.signal).toBe('SIGKILL');
      expect(await expectNoneOrValid(store)).toBe(step === 'between-stat-and-touch' ? 'valid' : 'none');
      const left = tempsIn(store);
      expect(left.length).toBe(step === 'between-stat-and-touch' ? 0 : 1);

      const next = runJson(['check', store]);
      expect(next.code).toBe(0);
      if (left.length > 0) {
        expect(next.report.findings).toContainEqual(expect.objectContaining({ code: 'STALE_TEMP_REMOVED', evidence: { count: 1 } }));
      }
      expect(tempsIn(store)).toEqual([]);
      expect(await expectNoneOrValid(store)).toBe('valid');
    });
  });
});

describeIfKernel('ext4', 'SIGKILL at random moments, at least 200 times', () => {
  beforeAll(() => {
    fs = mountFs('ext4');
  });
  afterAll(() => fs.unmount());

  it('the store always holds no zero chunk or a valid one, and the next run cleans up', async () => {
    const LANES = 4;
    const KILLS_PER_LANE = 55;
    const blob = await zeroChunkBlob();
    const stats = { kills: 0, finished: 0, tempsLeft: 0, none: 0, valid: 0 };
    const lane = async (index: number) => {
      // Half the lanes check as root, half through the helper as uid 34.
      const store = makeStore(join(fs.mountPoint, `lane${index}`), index % 2 ? { uid: BACKUP_UID, gid: BACKUP_GID } : ROOT);
      // How long a run takes here, under this load: kills are spread over the second half of it,
      // where the insert and the touches happen (the first half is Node starting).
      const runtimes: number[] = [];
      for (let i = 0; i < 3; i++) {
        if (existsSync(zeroChunkPathIn(store))) unlinkSync(zeroChunkPathIn(store));
        const started = performance.now();
        expect((await runCliAsync(['check', store, '--json'])).code).toBe(0);
        runtimes.push(performance.now() - started);
      }
      // The load changes while the lanes run: a run that finishes before its kill says how long runs take now.
      let typical = runtimes.sort((a, b) => a - b)[1]!;
      let kills = 0;
      for (let round = 0; kills < KILLS_PER_LANE && round < KILLS_PER_LANE * 8; round++) {
        // Most rounds start without the chunk, so the kill can land inside an insert.
        if (Math.random() < 0.7 && existsSync(zeroChunkPathIn(store))) unlinkSync(zeroChunkPathIn(store));
        const delay = typical * (0.3 + Math.random() * 0.6);
        const started = performance.now();
        const result = await runCliAsync(['check', store, '--json'], {
          onSpawn: (child) => {
            setTimeout(() => child.kill('SIGKILL'), delay);
          },
        });
        if (result.signal === 'SIGKILL') {
          kills++;
          stats.kills++;
        } else {
          stats.finished++;
          typical = (typical + (performance.now() - started)) / 2;
        }
        stats.tempsLeft += tempsIn(store).length;
        // A helper the kill orphaned finishes on its own: let it, before looking.
        if (index % 2) await sleep(30);
        stats[await expectNoneOrValid(store)]++;
      }
      const final = runJson(['check', store]);
      expect(final.code).toBe(0);
      expect(tempsIn(store)).toEqual([]);
      expect(readFileSync(zeroChunkPathIn(store)).equals(blob)).toBe(true);
    };
    await Promise.all(Array.from({ length: LANES }, (_, index) => lane(index)));
    console.log(`random SIGKILL loop: ${JSON.stringify(stats)}`);
    expect(stats.kills).toBeGreaterThanOrEqual(200);
  }, 600_000);
});

describeIfKernel('fuse', 'a disk that fails writes (FUSE returning EIO)', () => {
  let fuse: FuseMount;
  beforeAll(() => {
    fuse = mountAtimefs('eio-write');
  });
  afterAll(() => fuse.unmount());

  it('CHUNK_WRITE_FAILED naming EIO, exit 1, nothing partial', () => {
    const store = makeStore(join(fuse.mountPoint, 'store'), ROOT);
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(1);
    expect(errors(report)).toMatchObject([{ code: 'CHUNK_WRITE_FAILED', evidence: { errno: 'EIO' } }]);
    expect(readdirSync(join(fuse.backing, 'store', '.chunks', 'bb9f'))).toEqual([]);
  });
});

describeAsRoot('signals during --probe', () => {
  beforeAll(() => {
    fs = mountFs('tmpfs', 64);
  });
  afterAll(() => fs.unmount());

  const probesIn = (dir: string) => readdirSync(dir).filter((name) => name.startsWith(PROBE_PREFIX));

  async function waitFor(condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  }

  it.each([
    ['SIGINT', ROOT],
    ['SIGTERM', ROOT],
    ['SIGINT', { uid: BACKUP_UID, gid: BACKUP_GID }],
    ['SIGTERM', { uid: BACKUP_UID, gid: BACKUP_GID }],
  ] as const)('%s to a probe by uid %o removes the probe directory', async (signal, owner) => {
    const dir = join(fs.mountPoint, `empty${++n}`);
    mkdirSync(dir);
    chownSync(dir, owner.uid, owner.gid);
    // --fixed-sleep holds the probe open for a second: the signal lands inside it.
    const running = runCliAsync(['check', dir, '--probe', '--fixed-sleep', '--json'], {
      onSpawn: (child) => {
        // Root makes datastore/.chunks inside the probe for the GC user to measure in.
        void waitFor(() => probesIn(dir).length > 0 && existsSync(join(dir, probesIn(dir)[0]!, 'datastore', '.chunks')), 'the probe directory').then(() => child.kill(signal));
      },
    });
    const result = await running;
    expect(result.code === 0).toBe(false);
    // Through the helper, the helper removes it once it gets the parent's SIGTERM.
    await waitFor(() => probesIn(dir).length === 0, 'the probe directory to go');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a probe killed with SIGKILL leaves its directory; the next probe removes it and says so', async () => {
    const dir = join(fs.mountPoint, `empty${++n}`);
    mkdirSync(dir);
    const running = runCliAsync(['check', dir, '--probe', '--fixed-sleep', '--json'], {
      onSpawn: (child) => {
        void waitFor(() => probesIn(dir).length > 0, 'the probe directory').then(() => child.kill('SIGKILL'));
      },
    });
    expect((await running).signal).toBe('SIGKILL');
    expect(probesIn(dir).length).toBe(1);
    const next = runJson(['check', dir, '--probe']);
    expect(next.code).toBe(0);
    expect(next.report.findings).toContainEqual(expect.objectContaining({ code: 'STALE_TEMP_REMOVED', evidence: { count: 1 } }));
    expect(readdirSync(dir)).toEqual([]);
  });
});
