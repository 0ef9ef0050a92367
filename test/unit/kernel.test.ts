/** test/helpers/kernel.ts and the summary reporter: a test the kernel cannot run is skipped, and CI's log says why. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelHas, kernelLacks } from '../helpers/kernel.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('kernelLacks', () => {
  it('agrees with /proc/filesystems (read after it, as it may load a module), and names the feature it lacks', () => {
    const has = kernelHas('autofs');
    expect(readFileSync('/proc/filesystems', 'utf8').split('\n').some((line) => line.endsWith('\tautofs'))).toBe(has);
    if (!has) expect(kernelLacks('autofs')).toMatch(/^the running kernel has no autofs/);
    expect(kernelLacks('tmpfs')).toBeUndefined();
  });
});

describe('the summary reporter', () => {
  it('prints every skipped test under the summary line, with its reason', () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', join(ROOT, 'test', 'fixtures', 'skips', 'vitest.config.ts')], {
      encoding: 'utf8',
      env: { ...process.env, CHUNKGUARD_SUMMARY_FILE: '', NO_COLOR: '1' },
    });
    expect(run.stdout.trimEnd().split('\n').slice(-3)).toEqual([
      'tests: 1 passed, 0 failed, 2 skipped',
      '  skipped: needs a feature: the running kernel has no chunkguard-fs',
      '  skipped: a group (skipped: the running kernel has no chunkguard-fs) > inside it',
    ]);
  });
});
