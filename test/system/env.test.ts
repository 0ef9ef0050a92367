import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectEnvironment, inspectEnvironmentWith } from '../../src/system/environment.js';
import { CLI, runCli, runJson } from '../helpers/cli.js';
import { mountAtimefs } from '../helpers/fuse.js';
import { mountFs, type Mounted } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { itIfKernel } from '../helpers/kernel.js';
import { reachableTempDir } from '../helpers/store.js';

const NO_PASSWD_UID = 4242;

describeAsRoot('env', () => {
  it('as a uid with no passwd entry and no $USER/$HOME: NO_PASSWD_ENTRY, promptly (no NSS lookup to hang in); a warning fails only with --fail-on warning', () => {
    const started = Date.now();
    const result = spawnSync(process.execPath, [CLI, 'env', '--json', '--fail-on', 'warning'], {
      uid: NO_PASSWD_UID,
      gid: NO_PASSWD_UID,
      env: { PATH: '/usr/bin:/bin' },
      encoding: 'utf8',
      timeout: 15_000,
    });
    const elapsed = Date.now() - started;
    expect(result.status, result.stderr).toBe(1);
    expect(elapsed).toBeLessThan(10_000);
    const report = JSON.parse(result.stdout);
    expect(report.identity).toMatchObject({ euid: NO_PASSWD_UID, egid: NO_PASSWD_UID });
    expect(report.passwd).toBeUndefined();
    expect(report.variables).toEqual({});
    const finding = report.findings.find((f: any) => f.code === 'NO_PASSWD_ENTRY');
    expect(finding.severity).toBe('warning');
    expect(finding.message).toContain('uid 4242 has no entry in /etc/passwd, and $USER and $HOME are not set');
    expect(finding.message).toContain('user.Current()');
    expect(finding.remedy).toContain(`:${NO_PASSWD_UID}:${NO_PASSWD_UID}:`);
    expect(report.capabilities).toMatchObject({ CAP_CHOWN: false, CAP_DAC_OVERRIDE: false, CAP_FOWNER: false });
    expect(report).toMatchObject({ ok: false, summary: expect.stringMatching(/^RISKS: .*; 1 warning$/) });
    // Without --fail-on warning the same warning is reported and does not fail: exit 0, ok true.
    const plain = spawnSync(process.execPath, [CLI, 'env', '--json'], { uid: NO_PASSWD_UID, gid: NO_PASSWD_UID, env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8', timeout: 15_000 });
    expect(plain.status, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout)).toMatchObject({ ok: true, summary: expect.stringMatching(/^OK: .*; 1 warning$/), findings: [expect.objectContaining({ code: 'NO_PASSWD_ENTRY', severity: 'warning' })] });
  });

  it('as root on this machine: identity, capabilities, the path mount; exit 0', () => {
    const { code, report } = runJson(['env', '/proc']);
    expect(code).toBe(0);
    expect(report.passwd).toMatchObject({ name: 'root', uid: 0 });
    expect(report.namespace.identity).toBe(true);
    expect(report.capabilities).toMatchObject({ CAP_CHOWN: true, CAP_DAC_OVERRIDE: true, CAP_FOWNER: true });
    expect(report.path.mount).toMatchObject({ mountPoint: '/proc', fsType: 'proc', network: false, fuse: false });
  });

  it('inside a user namespace: the map, not the identity', () => {
    const { report } = runJson(['env'], { prefix: ['unshare', '-U', '--map-user=1000', '--map-group=1000'] });
    expect(report.namespace.identity).toBe(false);
    expect(report.namespace.uidMap).toEqual([{ inside: 1000, outside: 0, count: 1 }]);
    expect(report.identity.euid).toBe(1000);
  });

  describe('mount facts', () => {
    let mounted: Mounted;
    beforeAll(() => {
      mounted = mountFs('tmpfs', 8);
    });
    afterAll(() => mounted.unmount());

    it('a read-only mount is a risk (exit 1) and the human report names it', () => {
      mounted.remountReadOnly();
      try {
        const { code, stdout } = runCli(['env', mounted.mountPoint]);
        expect(code).toBe(1);
        expect(stdout).toContain('error READ_ONLY_FS');
        expect(stdout).toMatch(/^RISKS: running as .*; 1 error$/m);
        expect(stdout).toContain(`mount -o remount,rw ${mounted.mountPoint}`);
        expect(stdout).toMatch(/mount .* tmpfs .*read-only/);
      } finally {
        mounted.remountReadWrite();
      }
    });
  });

  itIfKernel('fuse', 'a FUSE mount is named as such', async () => {
    const fuse = await mountAtimefs('ignore-atime');
    try {
      const { report } = runJson(['env', fuse.mountPoint]);
      expect(report.path.mount.fuse).toBe(true);
      expect(report.findings.map((f: any) => f.code)).toContain('FUSE_FILESYSTEM');
    } finally {
      fuse.unmount();
    }
  });
});

describe('env library and bad input', () => {
  it('reads names from the files it is given', () => {
    const base = reachableTempDir('chunkguard-env-');
    try {
      const passwd = join(base, 'passwd');
      execFileSync('sh', ['-c', `echo 'someone:x:${process.geteuid!()}:${process.getegid!()}::/nowhere:/bin/false' > ${passwd}`]);
      const report = inspectEnvironmentWith(undefined, {}, { accountFiles: { passwd, group: join(base, 'none') } });
      expect(report.passwd).toMatchObject({ name: 'someone', home: '/nowhere' });
      expect(report.findings.map((f) => f.code)).not.toContain('NO_PASSWD_ENTRY');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a missing path exits 2 with one line', () => {
    const { code, stdout, stderr } = runCli(['env', '/nonexistent/chunkguard']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe('chunkguard: /nonexistent/chunkguard: no such file or directory');
  });
});

describeAsRoot('env <symlink>', () => {
  let fs: Mounted;
  let base: string;
  beforeAll(() => {
    fs = mountFs('tmpfs', 16);
    base = reachableTempDir('chunkguard-env-link-');
  });
  afterAll(() => {
    fs.unmount();
    rmSync(base, { recursive: true, force: true });
  });

  it('describes the target (its owner, mode and mount), not the link, and says it was a link', () => {
    const target = join(fs.mountPoint, 'store');
    execFileSync('mkdir', ['-m', '0750', target]);
    execFileSync('chown', ['34:34', target]);
    const link = join(base, 'link');
    symlinkSync(target, link);
    const { code, report } = runJson(['env', link]);
    expect(code).toBe(0);
    expect(report.path).toMatchObject({ path: target, owner: { uid: 34, gid: 34 }, mode: '0750', mount: { mountPoint: fs.mountPoint, fsType: 'tmpfs' } });
    expect(report.findings).toContainEqual(expect.objectContaining({ code: 'STORE_ROOT_SYMLINK', severity: 'info', path: link }));
  });

  it('a dangling symlink is bad input, as for check, audit and fix: one line, exit 2', () => {
    const dangling = join(base, 'dangling');
    symlinkSync(join(base, 'nowhere'), dangling);
    const { code, stdout, stderr } = runCli(['env', dangling]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe(`chunkguard: ${dangling}: is a dangling symlink`);
  });
});
