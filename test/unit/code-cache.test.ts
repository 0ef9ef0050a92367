/**
 * The command line's code cache (src/runtime/code-cache.ts): a directory of the
 * running user's own, refused whenever someone else could write it; the CLI leaves
 * its compiled code there and the next runs use it; a damaged or stale cache is
 * replaced, never trusted.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, fstatSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCodeCacheDir } from '../../src/runtime/code-cache.js';
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
const own = (dir: string) => join(dir, `chunkguard-code-cache-${uid}`);
/** The directory under `parent` was judged fit and held open (closed again here). */
function held(parent: string): boolean {
  const fd = openCodeCacheDir(parent);
  if (fd === undefined) return false;
  expect(fstatSync(fd).ino).toBe(lstatSync(own(parent)).ino);
  closeSync(fd);
  return true;
}

describe('the code cache directory', () => {
  it("is made 0700, the user's own, and found again", () => {
    const parent = base();
    expect(held(parent)).toBe(true);
    expect(lstatSync(own(parent)).mode & 0o7777).toBe(0o700);
    expect(held(parent)).toBe(true);
  });

  it('a symlink in its place is refused, not followed', () => {
    const parent = base();
    const elsewhere = base(0o700);
    symlinkSync(elsewhere, own(parent));
    expect(held(parent)).toBe(false);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('one that others may read or write is refused', () => {
    const parent = base();
    mkdirSync(own(parent));
    chmodSync(own(parent), 0o777);
    expect(held(parent)).toBe(false);
  });

  it('in a parent anyone may write without the sticky bit (they could replace it): refused, nothing made', () => {
    const parent = base(0o777);
    expect(held(parent)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });
});

describeAsRoot('the code cache directory, as root', () => {
  it('one made by another user beforehand is refused', () => {
    const parent = base();
    mkdirSync(own(parent), { mode: 0o700 });
    chownSync(own(parent), 34, 34);
    expect(held(parent)).toBe(false);
  });

  it("a cache file another user owns is not read: made again, root's", () => {
    const parent = base();
    spawnSync(process.execPath, [CLI, '--version'], { env: { ...process.env, TMPDIR: parent } });
    const file = join(own(parent), readdirSync(own(parent))[0]!);
    chownSync(file, 34, 34);
    const result = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8', env: { ...process.env, TMPDIR: parent } });
    expect(result.status).toBe(0);
    expect(statSync(file).uid).toBe(0);
  });

  it("prunes only the running user's own cache files: another user's, however old, stays", () => {
    const parent = base();
    const dir = own(parent);
    mkdirSync(dir, { mode: 0o700 });
    const names = Array.from({ length: 10 }, (_, i) => `cli-v0.${i}.0-${process.arch}-0000000${i}`);
    names.forEach((name, i) => {
      writeFileSync(join(dir, name), 'old', { mode: 0o600 });
      const when = new Date(Date.now() - (i + 1) * 3_600_000);
      utimesSync(join(dir, name), when, when);
    });
    chownSync(join(dir, names[9]!), 34, 34); // the oldest
    expect(spawnSync(process.execPath, [CLI, '--version'], { env: { ...process.env, TMPDIR: parent } }).status).toBe(0);
    const left = readdirSync(dir);
    expect(left).toContain(names[9]);
    expect(left.filter((name) => names.slice(0, 9).includes(name)).sort()).toEqual(names.slice(0, 7).sort());
    expect(left).toHaveLength(9); // 7 of root's, root's new one, uid 34's
  });

  it('in a parent another user owns: refused', () => {
    const parent = base(0o755);
    chownSync(parent, 34, 34);
    expect(held(parent)).toBe(false);
  });
});

describe(`the CLI's code cache on ${process.version}`, () => {
  const run = (parent: string, env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8', env: { ...process.env, TMPDIR: parent, ...env } });
  const cacheFile = (parent: string) => join(own(parent), readdirSync(own(parent)).find((name) => name.startsWith(`cli-${process.version}-${process.arch}-`))!);
  const version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

  it('the first run leaves the compiled CLI, headed by the key of the bundle it came from; the next runs use it as it is', () => {
    const parent = base();
    expect(run(parent).stdout.trim()).toBe(version);
    const first = statSync(cacheFile(parent));
    const header = readFileSync(cacheFile(parent)).subarray(0, 200).toString('latin1').split('\n')[0]!;
    const bundle = statSync(join(dirname(CLI), 'cli-main.cjs'), { bigint: true });
    expect(header).toBe(`${process.version} ${process.arch} ${bundle.dev}:${bundle.ino} ${bundle.size} ${bundle.ctimeNs}`);
    // The data twice, the copies equal.
    const data = readFileSync(cacheFile(parent)).subarray(header.length + 1);
    expect(data.subarray(0, data.length / 2).equals(data.subarray(data.length / 2))).toBe(true);
    expect(first.mode & 0o777).toBe(0o600);
    expect(first.size).toBeGreaterThan(100_000);
    for (let i = 0; i < 2; i++) expect(run(parent).stdout.trim()).toBe(version);
    // Accepted by V8: never written again (a rejected or mismatched one is replaced).
    expect(statSync(cacheFile(parent)).ino).toBe(first.ino);
    expect(readdirSync(own(parent))).toEqual([basename(cacheFile(parent))]);
    expect(basename(cacheFile(parent))).toMatch(new RegExp(`^cli-${process.version.replace(/\./g, '\\.')}-${process.arch}-[0-9a-f]{8}$`));
  });

  it('a damaged cache (its two copies differ) or one of another bundle: the CLI runs the same, and the cache is made again', () => {
    for (const damage of ['data', 'key'] as const) {
      const parent = base();
      run(parent);
      const bytes = readFileSync(cacheFile(parent));
      const newline = bytes.indexOf(10);
      const key = bytes.toString('latin1', 0, newline);
      // A few words of the payload's first copy (V8's header intact): V8 would run them or crash on them (exit 133, 139).
      const half = (bytes.length - newline - 1) / 2;
      if (damage === 'data') for (const at of [3_000, 50_000, 120_000, 200_000].filter((offset) => offset < half - 4)) bytes.writeUInt32LE(0xdeadbeef, newline + 1 + at);
      // The bundle's size in the key, one digit changed: a cache of another bundle.
      else bytes[key.lastIndexOf(' ') - 1] = bytes[key.lastIndexOf(' ') - 1] === 0x31 ? 0x32 : 0x31;
      writeFileSync(cacheFile(parent), bytes);
      const damaged = statSync(cacheFile(parent)).ino;
      const result = run(parent);
      expect(result.stdout.trim()).toBe(version);
      expect(result.stderr).toBe('');
      expect(statSync(cacheFile(parent)).ino).not.toBe(damaged);
      expect(readFileSync(cacheFile(parent)).toString('latin1', 0, key.length)).toBe(key);
    }
  });

  it("a cache file that is not this user's alone (group or other bits, a second link) is not read: made again", () => {
    for (const spoil of ['mode', 'link'] as const) {
      const parent = base();
      run(parent);
      const file = cacheFile(parent);
      if (spoil === 'mode') chmodSync(file, 0o640);
      else linkSync(file, `${file}.second`);
      const before = statSync(file).ino;
      expect(run(parent).stdout.trim()).toBe(version);
      expect(statSync(file).ino).not.toBe(before);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
  });

  it('a check gives the same report with the cache as without it', () => {
    const parent = base();
    const store = mkdtempSync(join(tmpdir(), 'chunkguard-cc-store-'));
    made.push(store);
    mkdirSync(join(store, '.chunks'));
    const check = (env: NodeJS.ProcessEnv) => {
      const result = spawnSync(process.execPath, [CLI, 'check', store, '--json', '--as-user', `${uid}:${process.getegid!()}`], { encoding: 'utf8', env: { ...process.env, TMPDIR: parent, ...env } });
      const report = JSON.parse(result.stdout);
      return { status: result.status, ok: report.ok, codes: report.findings.map((finding: { code: string }) => finding.code), action: report.chunkAction };
    };
    check({ NODE_DISABLE_COMPILE_CACHE: '1' }); // inserts the chunk: the runs compared find it in place
    const without = check({ NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(readdirSync(parent)).toEqual([]);
    check({});
    expect(readdirSync(own(parent))).toHaveLength(1);
    expect(check({})).toEqual(without);
  });

  it('bad input (exit 2) writes nothing, not even the cache', () => {
    const parent = base();
    const result = spawnSync(process.execPath, [CLI, 'check', join(parent, 'missing')], { encoding: 'utf8', env: { ...process.env, TMPDIR: parent } });
    expect(result.status).toBe(2);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('keeps at most 8 cache files (the newest, this one among them) and drops writes that never finished; leaves everything else', () => {
    const parent = base();
    const dir = own(parent);
    mkdirSync(dir, { mode: 0o700 });
    const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000);
    // Twelve caches of other installs and Node versions, an hour apart, the newest first.
    const others = Array.from({ length: 12 }, (_, i) => `cli-v0.${i}.0-${process.arch}-0000000${i.toString(16)}`);
    others.forEach((name, i) => {
      writeFileSync(join(dir, name), 'old', { mode: 0o600 });
      utimesSync(join(dir, name), hoursAgo(i + 1), hoursAgo(i + 1));
    });
    writeFileSync(join(dir, 'cli-x.1.partial'), 'half', { mode: 0o600 });
    utimesSync(join(dir, 'cli-x.1.partial'), hoursAgo(2), hoursAgo(2));
    writeFileSync(join(dir, 'cli-x.2.partial'), 'being written', { mode: 0o600 });
    writeFileSync(join(dir, 'notes'), 'not ours', { mode: 0o600 });
    mkdirSync(join(dir, 'cli-a-directory'));
    // A symlink with a cache's name, to a file outside, older than them all: neither goes.
    const outside = join(base(0o700), 'target');
    writeFileSync(outside, 'keep me');
    symlinkSync(outside, join(dir, 'cli-a-link'));
    lutimesSync(join(dir, 'cli-a-link'), hoursAgo(48), hoursAgo(48));
    expect(run(parent).status).toBe(0);
    const left = readdirSync(dir).sort();
    expect(left).toEqual([basename(cacheFile(parent)), ...others.slice(0, 7), 'cli-a-directory', 'cli-a-link', 'cli-x.2.partial', 'notes'].sort());
    expect(readFileSync(outside, 'utf8')).toBe('keep me');
    // The next run finds its own cache and writes nothing (the same file): nothing more goes.
    const written = statSync(cacheFile(parent)).ino;
    expect(run(parent).status).toBe(0);
    expect(statSync(cacheFile(parent)).ino).toBe(written);
    expect(readdirSync(dir).sort()).toEqual(left);
  });

  it('NODE_DISABLE_COMPILE_CACHE=1: none', () => {
    const parent = base();
    expect(run(parent, { NODE_DISABLE_COMPILE_CACHE: '1' }).status).toBe(0);
    expect(readdirSync(parent)).toEqual([]);
  });
});
