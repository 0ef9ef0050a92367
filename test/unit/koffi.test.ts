/**
 * koffi the short way (src/native/koffi.ts): the platform package's native module
 * found beside the bundle and loaded directly, only when it is the version koffi
 * pins; otherwise nothing, and koffi's own loader is used.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { koffiNativeModule, loadKoffi } from '../../src/native/koffi.js';

const REPO = join(import.meta.dirname, '..', '..');
const pinned = (JSON.parse(readFileSync(join(REPO, 'node_modules', 'koffi', 'package.json'), 'utf8')) as { version: string }).version;
const platform = `@koromix/koffi-${process.platform}-${process.arch}`;
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A project whose node_modules holds this checkout's koffi and a platform package with the
 * real native module, its package.json saying `version`: only the version can refuse it.
 */
function project(version: string): string {
  const base = mkdtempSync(join(tmpdir(), 'chunkguard-koffi-'));
  made.push(base);
  const native = `${process.platform}_${process.arch}`;
  mkdirSync(join(base, 'node_modules', platform, native), { recursive: true });
  symlinkSync(join(REPO, 'node_modules', 'koffi'), join(base, 'node_modules', 'koffi'));
  copyFileSync(join(REPO, 'node_modules', platform, native, 'koffi.node'), join(base, 'node_modules', platform, native, 'koffi.node'));
  writeFileSync(join(base, 'node_modules', platform, 'package.json'), JSON.stringify({ name: platform, version }));
  mkdirSync(join(base, 'dist'));
  return pathToFileURL(join(base, 'dist', 'cli.cjs')).href;
}

describe('koffi, loaded from its platform package', () => {
  it(`finds it up the tree from the bundle, as the version koffi pins (${pinned}), and it calls libc`, () => {
    const koffi = koffiNativeModule(pathToFileURL(join(REPO, 'dist', 'cli.cjs')).href);
    expect(koffi).toBeDefined();
    expect((koffi as unknown as { version: string }).version).toBe(pinned);
    const getpid = koffi!.load('libc.so.6').func('int getpid()') as () => number;
    expect(getpid()).toBe(process.pid);
  });

  it('the same module in a platform package of the version koffi pins: loaded directly', () => {
    const koffi = koffiNativeModule(project(pinned));
    expect((koffi as unknown as { version: string } | undefined)?.version).toBe(pinned);
  });

  it('a platform package of another version than koffi pins: not loaded directly (its module is never opened); koffi\'s own loader gives the real one', () => {
    const from = project('0.0.1');
    const dlopen = vi.spyOn(process, 'dlopen');
    try {
      expect(koffiNativeModule(from)).toBeUndefined();
      expect(dlopen).not.toHaveBeenCalled();
    } finally {
      dlopen.mockRestore();
    }
    const koffi = loadKoffi(from);
    expect((koffi.load('libc.so.6').func('int getpid()') as () => number)()).toBe(process.pid);
  });

  it('no koffi anywhere up the tree: nothing', () => {
    const base = mkdtempSync(join(tmpdir(), 'chunkguard-koffi-'));
    made.push(base);
    expect(koffiNativeModule(pathToFileURL(join(base, 'cli.cjs')).href)).toBeUndefined();
  });
});
