/**
 * The command line's compile cache (src/runtime/compile-cache.ts): a directory of
 * the running user's own, refused whenever someone else could write it; and the
 * CLI, on a Node that has the cache, leaves compiled code there for the next run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compileCacheDir } from '../../src/runtime/compile-cache.js';
import { CLI } from '../helpers/cli.js';
import { describeAsRoot } from '../helpers/privileged.js';

const uid = process.geteuid!();
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temp directory like /tmp: everyone may create in it, sticky. */
function base(mode = 0o1777): string {
  const dir = mkdtempSync(join(tmpdir(), 'chunkguard-cc-'));
  made.push(dir);
  chmodSync(dir, mode);
  return dir;
}
const own = (dir: string) => join(dir, `chunkguard-compile-cache-${uid}`);
const hasCache = Boolean((process.getBuiltinModule('node:module') as { enableCompileCache?: unknown }).enableCompileCache);

describe('the compile cache directory', () => {
  it("is made 0700, the user's own, and found again", () => {
    const parent = base();
    expect(compileCacheDir(parent)).toBe(own(parent));
    expect(lstatSync(own(parent)).mode & 0o7777).toBe(0o700);
    expect(compileCacheDir(parent)).toBe(own(parent));
  });

  it('a symlink in its place is refused, not followed', () => {
    const parent = base();
    const elsewhere = base(0o700);
    symlinkSync(elsewhere, own(parent));
    expect(compileCacheDir(parent)).toBeUndefined();
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('one that others may read or write is refused', () => {
    const parent = base();
    mkdirSync(own(parent));
    chmodSync(own(parent), 0o777);
    expect(compileCacheDir(parent)).toBeUndefined();
  });

  it('in a parent anyone may write without the sticky bit (they could replace it): refused, nothing made', () => {
    const parent = base(0o777);
    expect(compileCacheDir(parent)).toBeUndefined();
    expect(readdirSync(parent)).toEqual([]);
  });
});

describeAsRoot('the compile cache directory, as root', () => {
  it('one made by another user beforehand is refused', () => {
    const parent = base();
    mkdirSync(own(parent), { mode: 0o700 });
    chownSync(own(parent), 34, 34);
    expect(compileCacheDir(parent)).toBeUndefined();
  });

  it('in a parent another user owns: refused', () => {
    const parent = base(0o755);
    chownSync(parent, 34, 34);
    expect(compileCacheDir(parent)).toBeUndefined();
  });
});

describe(`the CLI's compile cache on ${process.version} (${hasCache ? 'has' : 'has no'} module.enableCompileCache)`, () => {
  const run = (parent: string, env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8', env: { ...process.env, TMPDIR: parent, NODE_COMPILE_CACHE: '', ...env } });

  it(hasCache ? 'leaves the compiled CLI in the directory, for the next run' : 'makes no directory', () => {
    const parent = base();
    expect(run(parent).status).toBe(0);
    if (!hasCache) return expect(readdirSync(parent)).toEqual([]);
    const [versionDir] = readdirSync(own(parent));
    expect(versionDir).toContain(process.version);
    expect(readdirSync(join(own(parent), versionDir!)).length).toBeGreaterThan(0);
    expect(run(parent).status).toBe(0);
  });

  it('NODE_DISABLE_COMPILE_CACHE=1: none', () => {
    const parent = base();
    expect(run(parent, { NODE_DISABLE_COMPILE_CACHE: '1' }).status).toBe(0);
    expect(readdirSync(parent)).toEqual([]);
  });
});
