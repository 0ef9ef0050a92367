import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMPRESSED_BLOB_MAGIC, encodeBlob } from '../../src/chunk/blob.js';
import { zeroChunkBlob } from '../../src/chunk/zero-chunk.js';
import { insertChunk, TEMP_MARKER, type InsertOptions } from '../../src/store/insert.js';
import { leftoverTag, pidNamespace } from '../../src/store/leftovers.js';
import { Dir } from '../../src/fs/dir.js';
import { isWithin } from '../../src/fs/safe-path.js';
import { describeAsRoot } from '../helpers/privileged.js';

const NAME = 'bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8';
let dir: string;
let chunk: string;
let blob: Buffer;
let opened: Dir[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chunkguard-insert-'));
  chunk = join(dir, NAME);
  blob = await zeroChunkBlob();
});
afterEach(() => {
  for (const open of opened) open.close();
  opened = [];
  delete process.env.CHUNKGUARD_TEST_FAULT;
  rmSync(dir, { recursive: true, force: true });
});

/** insertChunk into the test directory, held open as the check holds a prefix directory. */
async function insert(_path: string, data: Uint8Array, options?: InsertOptions) {
  const open = Dir.open(dir);
  opened.push(open);
  return insertChunk(open, NAME, data, options);
}

const temps = () => readdirSync(dir).filter((name) => name.includes(TEMP_MARKER));
const old = new Date('2020-01-01T00:00:00Z');

describe('insertChunk with the server semantics', () => {
  it('writes a new chunk through a temp file and leaves no temp file', async () => {
    expect(await insert(chunk, blob)).toEqual({ action: 'inserted', preExisting: false, staleTempsRemoved: 0 });
    expect(readFileSync(chunk).equals(blob)).toBe(true);
    expect(temps()).toEqual([]);
  });

  it('touches an existing chunk of the same size, keeping its inode and mtime', async () => {
    writeFileSync(chunk, blob);
    utimesSync(chunk, old, old);
    const before = statSync(chunk);
    const result = await insert(chunk, blob);
    expect(result).toMatchObject({ action: 'touched', preExisting: true, touch: { ok: true } });
    const after = statSync(chunk);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(old.getTime());
    expect(after.atimeMs).toBeGreaterThan(old.getTime());
  });

  it('keeps and touches a smaller existing chunk (another encoder)', async () => {
    // Another encoder's zero chunk, a valid one smaller than the server's 159 bytes: zstd -19 from a pipe (no content size).
    const other = encodeBlob(COMPRESSED_BLOB_MAGIC, execFileSync('sh', ['-c', `head -c ${4 * 1024 * 1024} /dev/zero | zstd -19 -q -c`]));
    expect(other.length).toBeLessThan(blob.length);
    writeFileSync(chunk, other);
    utimesSync(chunk, old, old);
    const result = await insert(chunk, blob);
    expect(result).toMatchObject({ action: 'kept-smaller', preExisting: true, existingSize: other.length, touch: { ok: true } });
    expect(readFileSync(chunk).equals(other)).toBe(true);
    expect(statSync(chunk).atimeMs).toBeGreaterThan(old.getTime());
  });

  it.each([
    ['empty', 0],
    ['bigger', 1],
  ])('replaces an %s existing chunk', async (_, extra) => {
    writeFileSync(chunk, extra ? Buffer.concat([blob, Buffer.alloc(100)]) : Buffer.alloc(0));
    expect(await insert(chunk, blob)).toMatchObject({ action: 'replaced', preExisting: true });
    expect(readFileSync(chunk).equals(blob)).toBe(true);
    expect(temps()).toEqual([]);
  });

  it('refuses a directory at the chunk path', async () => {
    mkdirSync(chunk);
    await expect(insert(chunk, blob)).rejects.toMatchObject({ code: 'EUNSAFEPATH', found: 'directory', expected: 'file' });
    expect(lstatSync(chunk).isDirectory()).toBe(true);
  });

  it('refuses a symlink at the chunk path and never writes through it', async () => {
    const outside = join(dir, 'outside');
    writeFileSync(outside, 'precious');
    utimesSync(outside, old, old);
    symlinkSync(outside, chunk);
    await expect(insert(chunk, blob)).rejects.toThrow(/is a symlink where the store layout needs a regular file/);
    // atime first: reading the file ourselves would update it.
    expect(statSync(outside).atimeMs).toBe(old.getTime());
    expect(readFileSync(outside, 'utf8')).toBe('precious');
  });

  it('backdates a new chunk so a first touch makes atime newer than mtime', async () => {
    await insert(chunk, blob, { backdateSeconds: 2 });
    expect(statSync(chunk).mtimeMs).toBeLessThan(Date.now() - 1500);
  });

  it('leaves neither chunk nor temp file when aborted before the rename', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(insert(chunk, blob, { signal: controller.signal })).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('stale temp files of killed runs', () => {
  const stale = (pid: number, ns = pidNamespace()) => join(dir, `${NAME}${TEMP_MARKER}${pid}-n${ns}-a1b2c3d4`);
  // Above the kernel's pid_max (4194304): no process has it.
  const DEAD_PID = 4_194_305;

  it('removes one whose process is gone, and counts it', async () => {
    writeFileSync(stale(DEAD_PID), blob.subarray(0, 40));
    expect(await insert(chunk, blob)).toMatchObject({ action: 'inserted', staleTempsRemoved: 1 });
    expect(temps()).toEqual([]);
  });

  it('keeps a fresh one whose process is alive (a concurrent insert)', async () => {
    writeFileSync(stale(process.pid), 'x');
    expect(await insert(chunk, blob)).toMatchObject({ staleTempsRemoved: 0 });
    expect(temps()).toEqual([stale(process.pid).split('/').pop()]);
  });

  it('keeps a fresh one from another PID namespace: a PID there says nothing here', async () => {
    writeFileSync(stale(DEAD_PID, '1'), 'x');
    expect(await insert(chunk, blob)).toMatchObject({ staleTempsRemoved: 0 });
    expect(temps()).toHaveLength(1);
  });

  it('keeps one another process holds the lock of, even with a dead PID in its name', async () => {
    writeFileSync(stale(DEAD_PID), 'x');
    const holder = spawn('flock', ['--exclusive', stale(DEAD_PID), 'sleep', '30'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 200 && !readFileSync(`/proc/${holder.pid}/cmdline`, 'utf8').startsWith('sleep'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await insert(chunk, blob)).toMatchObject({ staleTempsRemoved: 0 });
      expect(temps()).toHaveLength(1);
    } finally {
      holder.kill();
    }
  });

  it('leaves a symlink that matches the pattern alone, and never follows it', async () => {
    const outside = join(dir, 'outside');
    writeFileSync(outside, 'precious');
    symlinkSync(outside, stale(DEAD_PID));
    expect(await insert(chunk, blob)).toMatchObject({ staleTempsRemoved: 0 });
    expect(lstatSync(stale(DEAD_PID)).isSymbolicLink()).toBe(true);
    expect(readFileSync(outside, 'utf8')).toBe('precious');
  });
});

describe('a symlink planted at the temp name', () => {
  it('is UNSAFE_PATH (EEXIST from O_CREAT|O_EXCL), and its target is neither written nor touched', async () => {
    const outside = join(dir, 'outside');
    writeFileSync(outside, 'precious');
    utimesSync(outside, old, old);
    symlinkSync(outside, join(dir, `${NAME}${TEMP_MARKER}${leftoverTag()}-deadbeef`));
    await expect(insert(chunk, blob, { tempSuffix: () => 'deadbeef' })).rejects.toThrow(/is a symlink planted at chunkguard's temp name \(not followed\)/);
    expect(statSync(outside).atimeMs).toBe(old.getTime());
    expect(readFileSync(outside, 'utf8')).toBe('precious');
    expect(lstatSync(chunk, { throwIfNoEntry: false })).toBeUndefined();
  });
});

describe.each(['temp-created', 'written', 'chowned', 'before-rename'])('an EIO injected at %s', (step) => {
  it('fails with EIO and leaves neither chunk nor temp file', async () => {
    process.env.CHUNKGUARD_TEST_FAULT = `${step}:eio`;
    await expect(insert(chunk, blob)).rejects.toMatchObject({ code: 'EIO' });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describeAsRoot('insertChunk as root', () => {
  it('gives the new chunk the store owner before it becomes visible', async () => {
    await insert(chunk, blob, { owner: { uid: 34, gid: 34 } });
    expect(statSync(chunk)).toMatchObject({ uid: 34, gid: 34 });
  });

  it('a symlink at the temp name pointing at a root-owned file: refused, the file keeps its owner', async () => {
    const outside = join(dir, 'outside');
    writeFileSync(outside, 'precious');
    symlinkSync(outside, join(dir, `${NAME}${TEMP_MARKER}${leftoverTag()}-deadbeef`));
    await expect(insert(chunk, blob, { owner: { uid: 34, gid: 34 }, tempSuffix: () => 'deadbeef' })).rejects.toThrow(/planted at chunkguard's temp name/);
    expect(statSync(outside)).toMatchObject({ uid: 0, gid: 0, size: 8 });
  });
});

describe('isWithin', () => {
  it('is true for the directory itself and what is below it, including below /', () => {
    expect(isWithin('/srv/store', '/srv/store')).toBe(true);
    expect(isWithin('/srv/store/.chunks/bb9f', '/srv/store')).toBe(true);
    expect(isWithin('/srv/store', '/')).toBe(true);
  });

  it('is false for a sibling that only shares a name prefix, and for a parent', () => {
    expect(isWithin('/srv/store2', '/srv/store')).toBe(false);
    expect(isWithin('/srv', '/srv/store')).toBe(false);
  });
});
