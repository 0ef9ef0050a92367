/**
 * The bad-input table (docs/security.md): each row is refused with one line
 * naming the path and the reason, exit 2, nothing written; or, where the
 * input is legitimate but odd (a symlinked root, a path beyond PATH_MAX, a
 * huge directory, a damaged zero chunk), handled and reported.
 * Names with newlines and non-UTF-8 bytes: test/audit/audit.test.ts
 * ("--list -0 prints the raw bytes find prints, and fix/undo round-trip them").
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, rmSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBlob, UNCOMPRESSED_BLOB_MAGIC } from '../../src/chunk/blob.js';
import { ZERO_CHUNK_SIZE, zeroChunkBlob } from '../../src/chunk/zero-chunk.js';
import { CLI, runCli, runJson } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_GID, BACKUP_UID, makeStore, treeState, zeroChunkPathIn } from '../helpers/store.js';

const ROOT = { uid: 0, gid: 0 };
const BACKUP = { uid: BACKUP_UID, gid: BACKUP_GID };
const REPO = join(import.meta.dirname, '..', '..');
let fs: Mounted;
let n = 0;
const fresh = (name = 'case') => join(fs.mountPoint, `${name}${++n}`);

/** Exit 2, one line on stderr naming `named` and matching `reason`, nothing on stdout, nothing written under the mount. */
function expectRefused(args: string[], named: string, reason: RegExp, options?: Parameters<typeof runCli>[1]): void {
  const before = treeState(fs.mountPoint);
  const { code, stdout, stderr } = runCli(args, options);
  expect(code, stderr).toBe(2);
  expect(stdout).toBe('');
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toContain(named);
  expect(stderr).toMatch(reason);
  expect(treeState(fs.mountPoint)).toEqual(before);
}

describeAsRoot('bad input', () => {
  beforeAll(() => {
    fs = mountFs('tmpfs', 256);
  });
  afterAll(() => fs.unmount());

  describe.each(['check', 'audit', 'fix', 'env'])('%s', (command) => {
    const extra = command === 'fix' ? ['--owner', '34:34'] : [];
    it('a missing path', () => {
      const path = fresh('missing');
      expectRefused([command, path, ...extra], path, command === 'env' ? /no such file or directory/ : /no such directory/);
    });
    // env describes any path, a file included; the others need a directory.
    if (command !== 'env') {
      it('a regular file', () => {
        const path = fresh('file');
        writeFileSync(path, 'x');
        expectRefused([command, path, ...extra], path, /not a directory \(it is a regular file\)/);
      });
      it('a dangling symlink as the root', () => {
        const path = fresh('dangling');
        symlinkSync(join(fs.mountPoint, 'nowhere'), path);
        expectRefused([command, path, ...extra], path, /is a dangling symlink/);
      });
    }
    it('a directory behind one the caller cannot search (as uid 1000)', () => {
      const locked = fresh('locked');
      mkdirSync(join(locked, 'store', '.chunks'), { recursive: true });
      chmodSync(locked, 0o700);
      const path = join(locked, 'store');
      expectRefused([command, path, ...extra], path, /cannot reach it \(permission denied on a parent directory\)/, { uid: 1000, gid: 1000 });
    });
    if (command !== 'env') {
      it('a store the caller cannot read itself (root-owned, 0700, as uid 1000): one line, exit 2, never 1', () => {
        const store = fresh('unreadable');
        mkdirSync(join(store, '.chunks'), { recursive: true });
        chmodSync(store, 0o700);
        expectRefused([command, store, ...extra], store, command === 'check' ? /cannot look inside it as uid 1000 \(permission denied\)/ : /cannot open \(permission denied\)|permission denied/, { uid: 1000, gid: 1000 });
      });
    }
  });

  it('a store root that is itself a symlink: resolved once and reported (STORE_ROOT_SYMLINK), never followed inside', () => {
    const store = makeStore(fresh('target'), ROOT);
    const link = fresh('link');
    symlinkSync(store, link);
    const { code, report } = runJson(['check', link]);
    expect(code).toBe(0);
    expect(report.store).toBe(store);
    expect(report.findings).toContainEqual(expect.objectContaining({ code: 'STORE_ROOT_SYMLINK', severity: 'info', path: link }));
  });

  it.each([
    ['audit', ['--owner', 'nosuchuser'], '--owner nosuchuser', /no user named "nosuchuser"/],
    ['audit', ['--owner', '34:'], '--owner 34:', /expected NAME, UID, NAME:GROUP or UID:GID/],
    ['audit', ['--owner', '1:2:3'], '--owner 1:2:3', /expected NAME, UID, NAME:GROUP or UID:GID/],
    ['fix', ['--owner', ':34'], '--owner :34', /expected NAME, UID, NAME:GROUP or UID:GID/],
    ['check', ['--as-user', 'nosuchuser'], '--as-user nosuchuser', /no user named "nosuchuser"/],
    ['audit', ['--as-user', 'nosuchuser'], '--as-user nosuchuser', /no user named "nosuchuser"/],
    ['check', ['--cutoff-minutes', '0'], '0', /expected a whole number of minutes, at least 1/],
  ])('%s %j is refused', (command, args, named, reason) => {
    const store = makeStore(fresh('store'), ROOT);
    expectRefused([command, store, ...args], named, reason);
  });

  describe('paths near and beyond PATH_MAX (4096)', () => {
    // Outside the mount the other rows snapshot: a tree deeper than PATH_MAX cannot be walked by path.
    let deepBase: string;
    beforeAll(() => {
      deepBase = mkdtempSync(join(tmpdir(), 'chunkguard-deep-'));
      // The probe as root checks as the GC user, who must be able to get there.
      chmodSync(deepBase, 0o755);
    });
    afterAll(() => execFileSync('rm', ['-rf', deepBase]));

    /** A directory whose absolute path is exactly `length` characters. */
    function deepDirectory(length: number): string {
      let path = join(deepBase, `deep${++n}`);
      while (path.length + 201 < length) path = join(path, 'd'.repeat(200));
      path = join(path, 'e'.repeat(length - path.length - 1));
      mkdirSync(path, { recursive: true });
      expect(path.length).toBe(length);
      return path;
    }

    it('a store at 4050 characters, whose chunk path is longer than PATH_MAX: check, probe and audit work', () => {
      const store = makeStore(deepDirectory(4050), ROOT);
      const check = runJson(['check', store]);
      expect(check.code).toBe(0);
      expect(check.report.chunkPath.length).toBeGreaterThan(4096);
      expect(runJson(['check', store, '--probe']).code).toBe(0);
      const audit = runJson(['audit', store]);
      expect(audit.code).toBe(0);
      // The root, .chunks, the prefix directory and the chunk.
      expect(audit.report.scanned.entries).toBe(4);
    });

    it('a path longer than PATH_MAX is refused with ENAMETOOLONG, nothing written', () => {
      const deep = deepDirectory(4000);
      const path = join(deep, 'x'.repeat(200));
      const { code, stdout, stderr } = runCli(['check', path, '--probe']);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(/: cannot stat it \(ENAMETOOLONG\)$/m);
      expect(readdirSync(deep)).toEqual([]);
    });
  });

  it('a directory with 200,000 entries: audit counts them all, check passes beside them', () => {
    const store = makeStore(fresh('wide'), ROOT);
    const prefix = join(store, '.chunks', 'bb9f');
    for (let i = 0; i < 200_000; i++) closeSync(openSync(join(prefix, `bb9f${i.toString(16).padStart(60, '0')}`), 'w'));
    const audit = runJson(['audit', store, '--owner', '0:0']);
    expect(audit.code).toBe(0);
    expect(audit.report.scanned.entries).toBe(200_000 + 3);
    const check = runJson(['check', store]);
    expect(check.code).toBe(0);
    expect(check.report.chunkAction).toBe('inserted');
  }, 120_000);
});

describeAsRoot('a pre-existing zero chunk, handled with the server insert semantics and verified', () => {
  beforeAll(() => {
    fs = mountFs('tmpfs', 64);
  });
  afterAll(() => fs.unmount());

  async function storeWith(content: Buffer | 'directory'): Promise<{ store: string; chunk: string }> {
    const store = makeStore(fresh('store'), ROOT);
    const chunk = zeroChunkPathIn(store);
    if (content === 'directory') mkdirSync(chunk);
    else writeFileSync(chunk, content);
    return { store, chunk };
  }
  const codes = (report: { findings: Array<{ code: string; severity: string }> }) =>
    // As root over a root-owned store the touch has CAP_FOWNER: that warning is said everywhere else.
    report.findings.filter((finding) => finding.severity !== 'info' && finding.code !== 'RAN_WITH_CAP_FOWNER').map((finding) => `${finding.severity} ${finding.code}`);

  it('truncated: kept and touched (the server keeps a smaller chunk), reported as CHUNK_CORRUPT, exit 1', async () => {
    const blob = await zeroChunkBlob();
    const { store, chunk } = await storeWith(blob.subarray(0, blob.length - 20));
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(1);
    expect(report.chunkAction).toBe('kept-smaller');
    expect(codes(report)).toEqual(['error CHUNK_CORRUPT']);
    expect(report.findings.find((finding: { code: string }) => finding.code === 'CHUNK_CORRUPT').remedy).toContain('.0.bad');
    expect(statSync(chunk).size).toBe(blob.length - 20);
  });

  it('the right size, wrong bytes: kept and touched, CHUNK_CORRUPT naming the CRC mismatch', async () => {
    const blob = Buffer.from(await zeroChunkBlob());
    blob[blob.length - 5]! ^= 0xff;
    const { store, chunk } = await storeWith(blob);
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(1);
    expect(report.chunkAction).toBe('touched');
    expect(codes(report)).toEqual(['error CHUNK_CORRUPT']);
    expect(report.findings.find((finding: { code: string }) => finding.code === 'CHUNK_CORRUPT').message).toContain('CRC32 mismatch');
    expect(readFileSync(chunk).equals(blob)).toBe(true);
  });

  it('empty: replaced by a valid one, CHUNK_REPLACED warning, exit 0', async () => {
    const { store, chunk } = await storeWith(Buffer.alloc(0));
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(report.chunkAction).toBe('replaced');
    expect(codes(report)).toEqual(['warning CHUNK_REPLACED']);
    expect(readFileSync(chunk).equals(await zeroChunkBlob())).toBe(true);
  });

  it('bigger (an uncompressed encoding): replaced, CHUNK_REPLACED, exit 0', async () => {
    const { store, chunk } = await storeWith(encodeBlob(UNCOMPRESSED_BLOB_MAGIC, new Uint8Array(ZERO_CHUNK_SIZE)));
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(report.chunkAction).toBe('replaced');
    expect(readFileSync(chunk).equals(await zeroChunkBlob())).toBe(true);
  });

  it('a smaller valid encoding from another encoder (zstd -19): kept, verified, no finding, exit 0', async () => {
    const payload = execFileSync('sh', ['-c', `head -c ${ZERO_CHUNK_SIZE} /dev/zero | zstd -19 -q -c`]);
    const { COMPRESSED_BLOB_MAGIC } = await import('../../src/chunk/blob.js');
    const blob = encodeBlob(COMPRESSED_BLOB_MAGIC, payload);
    expect(blob.length).toBeLessThan((await zeroChunkBlob()).length);
    const { store, chunk } = await storeWith(blob);
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(report.chunkAction).toBe('kept-smaller');
    expect(codes(report)).toEqual([]);
    expect(readFileSync(chunk).equals(blob)).toBe(true);
  });

  // On a Node with zstd in zlib (22.15+) no decoder is loaded from disk at all: these pass there without the preload.
  it.each([
    ['smaller (zstd -19, 158 bytes)', '-19'],
    ["the server's size, other bytes (zstd -3 from a pipe: no content size, a checksum; 159 bytes)", '-3'],
  ])('another encoder\'s chunk, %s, root over a uid-34 store from an install the GC user cannot read (a root-only home): the decoder is loaded before the thread switches; verified, exit 0', async (_, level) => {
    const payload = execFileSync('sh', ['-c', `head -c ${ZERO_CHUNK_SIZE} /dev/zero | zstd ${level} -q -c`]);
    const { COMPRESSED_BLOB_MAGIC } = await import('../../src/chunk/blob.js');
    const blob = encodeBlob(COMPRESSED_BLOB_MAGIC, payload);
    const server = await zeroChunkBlob();
    expect(blob.length).toBe(level === '-3' ? server.length : server.length - 1);
    expect(blob.equals(server)).toBe(false);
    const store = makeStore(fresh('store'), BACKUP);
    const chunk = zeroChunkPathIn(store);
    writeFileSync(chunk, blob);
    chownSync(chunk, BACKUP.uid, BACKUP.gid);
    // This checkout, seen through a directory only root may enter: uid 34 cannot read a file of it.
    const home = mkdtempSync(join(tmpdir(), 'chunkguard-root-only-'));
    const install = join(home, 'chunkguard');
    chmodSync(home, 0o700);
    mkdirSync(install);
    execFileSync('mount', ['--bind', REPO, install]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', install]);
      const cli = join(install, relative(REPO, CLI));
      const asGcUser = spawnSync(process.execPath, [cli, '--version'], { cwd: '/', uid: BACKUP.uid, gid: BACKUP.gid, encoding: 'utf8' });
      expect(asGcUser.stderr).toContain('Cannot find module'); // node cannot stat it (EACCES on the way)
      const result = spawnSync(process.execPath, [cli, 'check', store, '--json'], { cwd: '/', encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      const report = JSON.parse(result.stdout);
      expect(result.status).toBe(0);
      expect(report.touchedAs).toMatchObject({ uid: BACKUP.uid, via: 'thread' });
      expect(report.chunkAction).toBe(level === '-3' ? 'touched' : 'kept-smaller');
      // Verified: no finding about the chunk at all, not even that it could not be checked.
      expect(report.findings.map((finding: { code: string }) => finding.code).filter((code: string) => code.startsWith('CHUNK_'))).toEqual([]);
      expect(codes(report)).toEqual([]);
      expect(readFileSync(chunk).equals(blob)).toBe(true);
    } finally {
      execFileSync('umount', [install]);
      rmSync(home, { recursive: true });
    }
  });

  it('a directory: refused as the server does, UNSAFE_PATH, exit 1, left as it is', async () => {
    const { store, chunk } = await storeWith('directory');
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(1);
    expect(codes(report)).toEqual(['error UNSAFE_PATH']);
    expect(statSync(chunk).isDirectory()).toBe(true);
  });
});
