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
 * (not writable by others, or sticky like /tmp). One file per Node version,
 * architecture and install (the newest MAX_FILES kept), read and written through the directory's descriptor
 * (a name swapped anywhere on the path redirects nothing), read only when it is
 * this user's own regular file with one link, written whole (a temp file,
 * flushed, renamed), headed by the key of the bundle it was made from (its
 * device, inode, size and ctime: a rewrite changes ctime; V8 itself checks only
 * the length), the data written twice: a file whose copies differ (damaged on
 * disk) is never handed to V8, which does not check its payload (release builds)
 * and runs or crashes on what it is given. A checksum would cost ~2.5 ms a start
 * (a loop over 340 KB, or node:v8 for V8's own); comparing the copies is one
 * memcmp. Only a run that answered writes it. Anything amiss: no cache, nothing
 * said, as it only saves time. NODE_DISABLE_COMPILE_CACHE=1 turns it off, as
 * Node's own.
 */
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

const S_ISVTX = 0o1000;
/**
 * Cache files kept at most: one is made per Node version, architecture and install,
 * and an upgrade or another install would otherwise leave its old ones for good.
 */
const MAX_FILES = 8;
/** A temp file this old is a write that never finished (its process died): removed. */
const PARTIAL_MAX_AGE_MS = 60 * 60 * 1000;
const CACHE_FILE = /^cli-[^/]+$/;
// libuv opens every file close-on-exec.
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;

/**
 * This user's cache directory under `base` (made when missing, if `create`), held open: its
 * descriptor once it is judged (a real directory, this user's, no group or other bits, in a
 * parent others cannot replace it in), else undefined. Everything after goes through the
 * descriptor: a name swapped since, anywhere on the path, cannot redirect a read or a write.
 */
export function openCodeCacheDir(base = tmpdir(), { create = true } = {}): number | undefined {
  const uid = process.geteuid?.();
  if (uid === undefined) return undefined;
  const path = join(base, `chunkguard-code-cache-${uid}`);
  let fd: number | undefined;
  try {
    const parent = statSync(base);
    // Others may make entries here only where they cannot remove or rename this user's (sticky).
    if (!parent.isDirectory() || (parent.uid !== 0 && parent.uid !== uid) || ((parent.mode & 0o022) !== 0 && (parent.mode & S_ISVTX) === 0)) return undefined;
    if (create) {
      try {
        mkdirSync(path, { mode: 0o700 });
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST') return undefined;
      }
    }
    fd = openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    const own = fstatSync(fd);
    if (own.isDirectory() && own.uid === uid && (own.mode & 0o077) === 0) return fd;
  } catch {
    // Missing, or not to be trusted: no cache.
  }
  if (fd !== undefined) closeSync(fd);
  return undefined;
}

/** `name` in the directory held open as `dirFd` (the kernel's link to that very directory). */
const inDir = (dirFd: number, name: string): string => `/proc/self/fd/${dirFd}/${name}`;

/** The bundle's text and the key of this very file (read and stat'ed through one descriptor). */
function readSource(file: string): { text: string; key: string } {
  const fd = openSync(file, 'r');
  try {
    const stat = fstatSync(fd, { bigint: true });
    // V8 checks its own version and flags against the cache (and rejects a mismatch), but of the source only its length.
    return { text: readFileSync(fd, 'utf8'), key: `${process.version} ${process.arch} ${stat.dev}:${stat.ino} ${stat.size} ${stat.ctimeNs}` };
  } finally {
    closeSync(fd);
  }
}

/** The cached data `name` holds when it was made from the bundle `key` names, by this user, whole; else undefined. */
function readCache(dirFd: number, name: string, key: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(inDir(dirFd, name), O_RDONLY | O_NOFOLLOW);
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== process.geteuid!() || (stat.mode & 0o077) !== 0 || stat.nlink !== 1) return undefined;
    const bytes = readFileSync(fd);
    const header = Buffer.from(`${key}\n`);
    if (bytes.length <= header.length || (bytes.length - header.length) % 2 !== 0 || !bytes.subarray(0, header.length).equals(header)) return undefined;
    // The data twice: a copy damaged anywhere (a bad sector, a bit flipped) no longer equals the other.
    const half = (bytes.length - header.length) / 2;
    const data = bytes.subarray(header.length, header.length + half);
    return data.equals(bytes.subarray(header.length + half)) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** `data` as `name` under `key`, whole or not at all: written under a name of its own, flushed, renamed. */
function writeCache(dirFd: number, name: string, key: string, data: Buffer): void {
  const partial = inDir(dirFd, `${name}.${process.pid}.partial`);
  let fd: number | undefined;
  try {
    fd = openSync(partial, 'wx', 0o600);
    const bytes = Buffer.concat([Buffer.from(`${key}\n`), data, data]);
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(partial, inDir(dirFd, name));
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(partial);
    } catch {
      // Never made, or already renamed.
    }
  }
}

/**
 * The directory bounded, after a write: the oldest cache files past MAX_FILES (by
 * mtime, when each was last written: a read does not change it, so the least recently
 * written go, which an install still in use writes again on its next run), and temp
 * files of writes that never finished, go. Only this user's regular files with these names; nothing else
 * in the directory is touched, and anything amiss leaves things as they are.
 */
function prune(dirFd: number, keep: string): void {
  let names: string[];
  try {
    names = readdirSync(inDir(dirFd, ''));
  } catch {
    return; // pruning only saves space: the cache works without it
  }
  const now = Date.now();
  const files: { name: string; mtimeMs: number }[] = [];
  for (const name of names) {
    // One name at a time: another run pruning beside this one, or a name that does not
    // survive decoding (not UTF-8), costs that name, not the pass.
    attempt(() => {
      if (!CACHE_FILE.test(name)) return;
      const stat = lstatSync(inDir(dirFd, name));
      if (!stat.isFile() || stat.uid !== process.geteuid!()) return;
      if (name.endsWith('.partial')) {
        if (now - stat.mtimeMs > PARTIAL_MAX_AGE_MS) unlinkSync(inDir(dirFd, name));
      } else if (name !== keep) files.push({ name, mtimeMs: stat.mtimeMs });
    });
  }
  files.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { name } of files.slice(MAX_FILES - 1)) attempt(() => unlinkSync(inDir(dirFd, name)));
}

function attempt(step: () => void): void {
  try {
    step();
  } catch {
    // Gone already, or not ours to judge: left as it is.
  }
}

/** A short tag of the bundle's path (FNV-1a): two installs run by one user keep a cache each, not one they would keep replacing. */
function pathTag(file: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < file.length; i++) hash = Math.imul(hash ^ file.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/** `file` (a CommonJS bundle) compiled with the cached code when there is a valid one; the cache renewed when the run ends if there was not. */
function compile(file: string): Script {
  const { text, key } = readSource(file);
  const enabled = process.env.NODE_DISABLE_COMPILE_CACHE !== '1';
  const name = `cli-${process.version}-${process.arch}-${pathTag(file)}`;
  const dirFd = enabled ? openCodeCacheDir(tmpdir(), { create: false }) : undefined;
  const cached = dirFd !== undefined ? readCache(dirFd, name, key) : undefined;
  // The wrapper Node's CommonJS loader puts around a module, on the first line: line numbers stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${text}\n});`, { filename: file, cachedData: cached });
  if (!enabled || (cached !== undefined && !script.cachedDataRejected)) {
    if (dirFd !== undefined) closeSync(dirFd);
    return script;
  }
  // Only a run that answered (exit 0 or 1): bad input writes nothing at all, not even this.
  process.once('exit', (code) => {
    const answered = code === 0 || code === 1;
    const target = answered ? (dirFd ?? openCodeCacheDir()) : dirFd;
    if (target === undefined) return;
    if (answered) {
      writeCache(target, name, key, script.createCachedData());
      prune(target, name);
    }
    closeSync(target);
  });
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
