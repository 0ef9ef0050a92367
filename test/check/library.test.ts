import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditStore, BlobError, checkAtime, ChunkguardError, decodeBlob, fixOwnership, inspectEnvironment, parseBlob, undoJournal, zeroChunkBlob } from '../../src/index.js';
import { checkAtimeWith } from '../../src/check/index.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeStore, reachableTempDir } from '../helpers/store.js';

const base = reachableTempDir('chunkguard-lib-');
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
/** A store owned by this process's user, so the check runs in-process. */
function ownStore(): string {
  const store = join(base, `s${++n}`);
  mkdirSync(join(store, '.chunks'), { recursive: true });
  return store;
}
const MINUTE_NS = 60_000_000_000n;

describe('checkAtime (library)', () => {
  it('resolves to a report and prints nothing', async () => {
    const report = await checkAtime(ownStore());
    expect(report.ok).toBe(true);
    expect(report.command).toBe('check');
    expect(report.digest).toBe('bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8');
    expect(report.touchedAs.via).toBe('self');
    expect(report.clock?.skewMs).toBe(0);
  });

  it('a filesystem clock 40 minutes behind the host is a CLOCK_SKEW warning, still safe', async () => {
    const report = await checkAtimeWith(ownStore(), {}, { clockOffsetNs: 40n * MINUTE_NS });
    expect(report.ok).toBe(true);
    const skew = report.findings.find((f) => f.code === 'CLOCK_SKEW');
    expect(skew?.severity).toBe('warning');
    expect(skew?.message).toContain('40.0 minutes behind');
    expect(report.clock!.skewMs).toBeLessThan(-39 * 60_000);
  });

  it('failOn warning: the same CLOCK_SKEW warning fails the check, and the verdict line names it instead of saying SAFE', async () => {
    const report = await checkAtimeWith(ownStore(), { failOn: 'warning' }, { clockOffsetNs: 40n * MINUTE_NS });
    expect(report.ok).toBe(false);
    const skew = report.findings.find((f) => f.code === 'CLOCK_SKEW')!;
    expect(skew.severity).toBe('warning');
    expect(report.summary).toMatch(/^WARNING: /);
    // The verdict line names the first warning: as root over its own store that is RAN_WITH_CAP_FOWNER, else CLOCK_SKEW.
    const first = report.findings.find((f) => f.severity === 'warning')!;
    expect(first.code).toBe(process.geteuid?.() === 0 ? 'RAN_WITH_CAP_FOWNER' : 'CLOCK_SKEW');
    expect(report.summary).toContain(`${first.code}: ${first.message}`);
    // failOn error (the default, also when given): a warning does not fail.
    expect(await checkAtimeWith(ownStore(), { failOn: 'error' }, { clockOffsetNs: 40n * MINUTE_NS })).toMatchObject({ ok: true, summary: expect.stringMatching(/^SAFE: /) });
  });

  it('a lag beyond the GC cutoff is a CLOCK_SKEW error: GC would delete what it just marked', async () => {
    const report = await checkAtimeWith(ownStore(), {}, { clockOffsetNs: 25n * 60n * MINUTE_NS });
    expect(report.ok).toBe(false);
    expect(report.findings.find((f) => f.code === 'CLOCK_SKEW')).toMatchObject({ severity: 'error' });
    expect(report.summary).toMatch(/^UNSAFE: .*CLOCK_SKEW/);
  });

  it('honours cutoffMinutes: a 10 minute lag against a 5 minute cutoff is an error', async () => {
    const report = await checkAtimeWith(ownStore(), { cutoffMinutes: 5 }, { clockOffsetNs: 10n * MINUTE_NS });
    expect(report.findings.find((f) => f.code === 'CLOCK_SKEW')?.severity).toBe('error');
  });

  it('a filesystem clock ahead of the host is a warning only', async () => {
    const report = await checkAtimeWith(ownStore(), {}, { clockOffsetNs: -120n * MINUTE_NS });
    expect(report.ok).toBe(true);
    expect(report.findings.find((f) => f.code === 'CLOCK_SKEW')?.message).toContain('ahead of this host');
  });

  it('skew within 60 s is no finding', async () => {
    const report = await checkAtimeWith(ownStore(), {}, { clockOffsetNs: 30_000_000_000n });
    expect(report.findings.some((f) => f.code === 'CLOCK_SKEW')).toBe(false);
  });

  it('rejects bad input with a ChunkguardError EBADINPUT and writes nothing', async () => {
    const empty = join(base, 'not-a-store');
    mkdirSync(empty);
    await expect(checkAtime(empty)).rejects.toMatchObject({ code: 'EBADINPUT', path: empty });
    await expect(checkAtime(join(base, 'missing'))).rejects.toBeInstanceOf(ChunkguardError);
    await expect(checkAtime(ownStore(), { cutoffMinutes: 0 })).rejects.toMatchObject({ code: 'EBADINPUT' });
    expect(readdirSync(empty)).toEqual([]);
  });

  it('honours an AbortSignal: rejects with EABORT and removes the probe directory', async () => {
    const dir = join(base, 'probe-abort');
    mkdirSync(dir);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await expect(checkAtime(dir, { probe: true, fixedSleep: true, signal: controller.signal })).rejects.toMatchObject({ code: 'EABORT' });
    expect(readdirSync(dir)).toEqual([]);
  });

  describe('every rejection is a ChunkguardError with a documented code', () => {
    it('a signal aborted before the call: EABORT with the reason as cause, nothing written', async () => {
      const store = ownStore();
      const signal = AbortSignal.abort('stop now');
      await expect(checkAtime(store, { signal })).rejects.toMatchObject({ name: 'ChunkguardError', code: 'EABORT', cause: 'stop now' });
      await expect(auditStore(store, { signal })).rejects.toMatchObject({ code: 'EABORT', cause: 'stop now' });
      await expect(fixOwnership(store, { owner: '0:0', signal })).rejects.toMatchObject({ code: 'EABORT' });
      expect(readdirSync(join(store, '.chunks'))).toEqual([]);
    });

    it.each([
      ['a negative uid', { uid: -1 }, /runAs .*uid must be a whole number/],
      ['a fractional uid', { uid: 34.5 }, /runAs .*uid must be a whole number/],
      ['a uid beyond uid_t', { uid: 2 ** 32 }, /uid must be a whole number/],
      ['a fractional gid', { uid: 34, gid: 1.5 }, /gid must be a whole number/],
      ['an object without uid', {}, /uid must be a whole number/],
      ['a negative number', -5, /uid must be a whole number/],
    ])('runAs with %s: EBADINPUT naming runAs, nothing written', async (_, runAs, message) => {
      const store = ownStore();
      const error = await checkAtime(store, { runAs: runAs as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ChunkguardError);
      expect(error).toMatchObject({ code: 'EBADINPUT', option: 'runAs' });
      expect((error as Error).message).toMatch(message);
      expect(readdirSync(join(store, '.chunks'))).toEqual([]);
    });

    it('options are named as the library names them, not as CLI flags', async () => {
      await expect(checkAtime(ownStore(), { cutoffMinutes: 1.5 })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'cutoffMinutes', message: expect.stringMatching(/^cutoffMinutes 1\.5: /) });
      await expect(checkAtime(ownStore(), { runAs: 'no-such-user-x' })).rejects.toMatchObject({ message: expect.stringMatching(/^runAs no-such-user-x: no user named/) });
      await expect(auditStore(ownStore(), { owner: '1:2:3' })).rejects.toMatchObject({ option: 'owner', message: expect.stringMatching(/^owner 1:2:3: /) });
      await expect(auditStore(ownStore(), { workers: -1 })).rejects.toMatchObject({ code: 'EBADINPUT', option: 'workers' });
    });

    it('failOn is checked by every function that takes it: EBADINPUT naming failOn, nothing written', async () => {
      const store = ownStore();
      const failOn = 'info' as never;
      const refusal = { code: 'EBADINPUT', option: 'failOn', value: 'info', message: "failOn info: expected 'error' or 'warning'" };
      await expect(checkAtime(store, { failOn })).rejects.toMatchObject(refusal);
      await expect(auditStore(store, { failOn })).rejects.toMatchObject(refusal);
      await expect(fixOwnership(store, { owner: `${process.geteuid!()}:${process.getegid!()}`, failOn })).rejects.toMatchObject(refusal);
      const journal = join(base, `undo-${n}.jsonl`);
      writeFileSync(journal, `${JSON.stringify({ op: 'begin', root: store, time: new Date().toISOString(), version: 1 })}\n`);
      await expect(undoJournal(store, journal, { failOn })).rejects.toMatchObject(refusal);
      expect(() => inspectEnvironment(store, { failOn })).toThrow(expect.objectContaining(refusal));
      expect(readdirSync(join(store, '.chunks'))).toEqual([]);
    });

    it('decodeBlob and parseBlob reject with a BlobError, which is a ChunkguardError with code EBADBLOB', async () => {
      const error = await decodeBlob(Buffer.from('not a blob at all')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BlobError);
      expect(error).toBeInstanceOf(ChunkguardError);
      expect(error).toMatchObject({ code: 'EBADBLOB' });
      expect(() => parseBlob(new Uint8Array(3))).toThrow(BlobError);
    });

    it('zeroChunkBlob hands each caller its own copy', async () => {
      const first = await zeroChunkBlob();
      first.fill(0);
      const second = await zeroChunkBlob();
      expect(second.subarray(0, 8).equals(Buffer.from([49, 185, 88, 66, 111, 182, 163, 127]))).toBe(true);
    });
  });

  it('is importable from both built entry points (ESM and CJS)', async () => {
    const esm = await import('../../dist/index.js');
    const cjs = createRequire(import.meta.url)('../../dist/index.cjs');
    expect(typeof esm.checkAtime).toBe('function');
    expect(typeof cjs.checkAtime).toBe('function');
    expect(cjs.zeroChunkDigest()).toBe(esm.zeroChunkDigest());
  });
});

describeAsRoot('checkAtime as another user (library)', () => {
  it('runAs: touches in a helper process with that uid, no CAP_FOWNER', async () => {
    const store = makeStore(join(base, 'owned-by-34'));
    const report = await checkAtime(store, { runAs: 'backup' });
    expect(report.ok).toBe(true);
    expect(report.touchedAs).toMatchObject({ uid: 34, gid: 34, name: 'backup', capFowner: false, reason: 'requested', via: 'setpriv' });
  });

  it('a helper killed mid-insert: EHELPER naming the uid, nothing but its temp file left, which the next run removes', async () => {
    const store = makeStore(join(base, 'helper-killed-34'));
    process.env.CHUNKGUARD_TEST_FAULT = 'written:kill';
    try {
      await expect(checkAtime(store, { runAs: 'backup' })).rejects.toMatchObject({ code: 'EHELPER', message: expect.stringMatching(/cannot run the check as uid 34/) });
    } finally {
      delete process.env.CHUNKGUARD_TEST_FAULT;
    }
    const prefix = join(store, '.chunks', 'bb9f');
    expect(readdirSync(prefix).filter((name) => !name.includes('chunkguard-tmp'))).toEqual([]);
    const next = await checkAtime(store, { runAs: 'backup' });
    expect(next.ok).toBe(true);
    expect(next.findings).toContainEqual(expect.objectContaining({ code: 'STALE_TEMP_REMOVED' }));
    expect(readdirSync(prefix)).toHaveLength(1);
  });

  it('an abort kills the helper, which removes its probe directory', async () => {
    const dir = makeStore(join(base, 'probe-abort-34'));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 400);
    await expect(checkAtime(dir, { probe: true, fixedSleep: true, signal: controller.signal })).rejects.toMatchObject({ code: 'EABORT' });
    expect(readdirSync(dir)).toEqual(['.chunks']);
  });
});
