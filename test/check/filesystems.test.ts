/** The check passes on every real filesystem a datastore lives on, run as the GC user. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runJson } from '../helpers/cli.js';
import { ALL_FS, fsTypeOf, mountFs, type Mounted } from '../helpers/mounts.js';
import { describeIfKernel } from '../helpers/kernel.js';
import { BACKUP_UID, makeStore, zeroChunkPathIn } from '../helpers/store.js';

for (const kind of ALL_FS) {
  describeIfKernel(fsTypeOf(kind), `check on ${kind}`, () => {
    let fs: Mounted;
    let store: string;
    beforeAll(() => {
      fs = mountFs(kind);
      store = makeStore(join(fs.mountPoint, 'datastore'));
    });
    afterAll(() => fs?.unmount());

    it('passes for a new store, touching as the store owner (uid 34), and reports the filesystem', () => {
      const { code, report } = runJson(['check', store]);
      expect(code).toBe(0);
      expect(report.ok).toBe(true);
      expect(report.summary).toMatch(/^SAFE: /);
      expect(report.touchedAs).toMatchObject({ uid: BACKUP_UID, reason: 'store owner' });
      expect(report.touchedAs.capFowner).toBe(false);
      expect(report.filesystem.fsType).toBe(fs.fsType);
      expect(report.filesystem.mountPoint).toBe(fs.mountPoint);
      expect(report.chunkAction).toBe('inserted');
      expect(BigInt(report.after.atimeNs)).toBeGreaterThan(BigInt(report.before.atimeNs));
      expect(report.after.ino).toBe(report.before.ino);
      expect(report.after.uid).toBe(BACKUP_UID);
      expect(report.findings.map((f: { code: string }) => f.code)).toContain('RAN_AS_STORE_OWNER');
    });

    it('passes again on the existing chunk (the GC-time path) and keeps it', () => {
      const { code, report } = runJson(['check', store]);
      expect(code).toBe(0);
      expect(report.chunkAction).toBe('touched');
      expect(readdirSync(join(store, '.chunks', 'bb9f'))).toEqual([zeroChunkPathIn(store).split('/').pop()]);
    });

    if (kind === 'ext4-128') {
      it('sees whole-second timestamps and waits for the next second instead of failing', () => {
        const { code, report } = runJson(['check', store]);
        expect(code).toBe(0);
        expect(BigInt(report.before.atimeNs) % 1_000_000_000n).toBe(0n);
        expect(report.waits.length).toBeGreaterThan(0);
        expect(report.waits.reduce((a: number, b: number) => a + b, 0)).toBeLessThanOrEqual(1100);
      });
    }

    it('passes with --fixed-sleep (the server variant, one 1000 ms sleep)', () => {
      const { code, report } = runJson(['check', store, '--fixed-sleep']);
      expect(code).toBe(0);
      expect(report.mode).toBe('fixed-sleep');
      expect(report.waits).toEqual([1000]);
    });

    it('--probe passes and leaves nothing behind', () => {
      const target = join(fs.mountPoint, 'empty');
      makeStore(target);
      const before = readdirSync(fs.mountPoint).sort();
      const { code, report } = runJson(['check', target, '--probe', '--as-user', 'root']);
      expect(code).toBe(0);
      expect(report.probe).toBe(true);
      expect(report.chunkPath).toContain('.chunkguard-probe-');
      expect(readdirSync(target).sort()).toEqual(['.chunks']);
      expect(readdirSync(fs.mountPoint).sort()).toEqual(before);
    });
  });
}
