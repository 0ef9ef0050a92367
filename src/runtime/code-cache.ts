/**
 * The command line's code, compiled once and kept: V8's code cache of the CLI's
 * bundle, taken when a run ends (so it holds every function that run compiled;
 * Node's own compile cache, taken before the code runs, holds only the top level),
 * and handed to V8 by the next run instead of parsing and compiling ~500 KB again.
 * On every Node line: ~14 ms of a ~50 ms check (docs/design.md, "Start-up").
 *
 * Code read from a cache runs with this process's rights, so the cache must be no
 * easier to write than the program itself: a directory of this user's own, made
 * 0700 in the temp directory, used only when it is a real directory owned by this
 * user that no one else may write, in a parent where no one else can replace it
 * (not writable by others, or sticky like /tmp). One file per Node version and
 * architecture, written whole (a temp file renamed), headed by the key of the
 * bundle it was made from (its device, inode, size and ctime: a rewrite changes
 * ctime; V8 itself checks only the length) and V8's cached-data tag. Only a run
 * that answered writes it. Anything amiss: no cache, nothing said, as it only
 * saves time. NODE_DISABLE_COMPILE_CACHE=1 turns it off, as Node's own.
 */
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { Script } from 'node:vm';

const S_ISVTX = 0o1000;

/** This user's cache directory under `base` (made when missing, if `create`), or undefined when it is missing or cannot be trusted. */
export function codeCacheDir(base = tmpdir(), { create = true } = {}): string | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined) return undefined;
  const dir = join(base, `chunkguard-code-cache-${uid}`);
  try {
    const parent = statSync(base);
    // Others may make entries here only where they cannot remove or rename this user's (sticky).
    if (!parent.isDirectory() || (parent.uid !== 0 && parent.uid !== uid) || ((parent.mode & 0o022) !== 0 && (parent.mode & S_ISVTX) === 0)) return undefined;
    if (create) {
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST') return undefined;
      }
    }
    const own = lstatSync(dir);
    return own.isDirectory() && own.uid === uid && (own.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** The bundle's text and the key of this very file (read and stat'ed through one descriptor). */
function readSource(file: string): { text: string; key: string } {
  const fd = openSync(file, 'r');
  try {
    const stat = fstatSync(fd, { bigint: true });
    // V8's own tag (its version and the flags that shape its code) too: two builds of one Node version may differ there.
    return { text: readFileSync(fd, 'utf8'), key: `${process.version} ${process.arch} v8:${cachedDataVersionTag()} ${stat.dev}:${stat.ino} ${stat.size} ${stat.ctimeNs}` };
  } finally {
    closeSync(fd);
  }
}

/** The cached data at `path` when it was made from the bundle `key` names, else undefined. */
function readCache(path: string, key: string): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  const header = Buffer.from(`${key}\n`);
  return bytes.length > header.length && bytes.subarray(0, header.length).equals(header) ? bytes.subarray(header.length) : undefined;
}

/** `data` at `path` under `key`, whole or not at all. */
function writeCache(path: string, key: string, data: Buffer): void {
  const partial = `${path}.${process.pid}.partial`;
  try {
    writeFileSync(partial, Buffer.concat([Buffer.from(`${key}\n`), data]), { mode: 0o600, flag: 'wx' });
    renameSync(partial, path);
  } catch {
    try {
      unlinkSync(partial);
    } catch {
      // Never made, or already renamed.
    }
  }
}

/** `file` (a CommonJS bundle) compiled with the cached code when there is a valid one; the cache renewed when the run ends if there was not. */
function compile(file: string): Script {
  const { text, key } = readSource(file);
  const enabled = process.env.NODE_DISABLE_COMPILE_CACHE !== '1';
  const name = `cli-${process.version}-${process.arch}`;
  const dir = enabled ? codeCacheDir(tmpdir(), { create: false }) : undefined;
  const cached = dir ? readCache(join(dir, name), key) : undefined;
  // The wrapper Node's CommonJS loader puts around a module, on the first line: line numbers stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${text}\n});`, { filename: file, cachedData: cached });
  if (enabled && (cached === undefined || script.cachedDataRejected)) {
    // Only a run that answered (exit 0 or 1): bad input writes nothing at all, not even this. The directory is judged again.
    process.once('exit', (code) => {
      const made = code === 0 || code === 1 ? codeCacheDir() : undefined;
      if (made) writeCache(join(made, name), key, script.createCachedData());
    });
  }
  return script;
}

/** Runs the CommonJS bundle `file` as `require(file)` would, from V8's code cache where there is one. */
export function runCached(file: string): void {
  let script: Script;
  try {
    script = compile(file);
  } catch {
    createRequire(file)(file);
    return;
  }
  const module = new Module(file);
  module.filename = file;
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: Module, filename: string, dirname: string) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
}
