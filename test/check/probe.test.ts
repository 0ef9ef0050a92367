/**
 * `check --probe` run by root answers for the GC user, as the server creates a datastore:
 * root makes it and hands it over, the GC user touches inside, root removes it all.
 * Through the CLI on tmpfs, as an operator runs it before creating a datastore.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAtime } from '../../src/index.js';
import { runCli, runJson } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { BACKUP_UID, reachableTempDir, storeIn, treeState } from '../helpers/store.js';

const codes = (report: { findings: { code: string }[] }) => report.findings.map((finding) => finding.code);
const severityOf = (report: { findings: { code: string; severity: string }[] }, code: string) => report.findings.find((f) => f.code === code)?.severity;
/** Owner, mode and every entry below: the probe must leave all of it as it was. */
const snapshot = (dir: string) => ({ owner: `${statSync(dir).uid}:${statSync(dir).gid}`, mode: (statSync(dir).mode & 0o7777).toString(8), tree: treeState(dir) });

describeAsRoot('check --probe as root: the GC user, on a datastore made as the server makes one', () => {
  let tmpfs: Mounted;
  let n = 0;
  const fresh = (mode = 0o755): string => {
    const dir = join(tmpfs.mountPoint, `d${++n}`);
    mkdirSync(dir);
    chmodSync(dir, mode);
    return dir;
  };
  beforeAll(() => {
    tmpfs = mountFs('tmpfs', 64);
  });
  afterAll(() => tmpfs?.unmount());

  it('an empty root-owned directory probes as uid 34 (backup) and is SAFE; nothing is left and its owner and mode are unchanged', () => {
    const dir = fresh();
    const before = snapshot(dir);
    const { code, report } = runJson(['check', '--probe', dir]);
    expect(code).toBe(0);
    expect(report.summary).toMatch(/^SAFE: tmpfs .* for uid 34 \(backup\)/);
    expect(report.touchedAs).toMatchObject({ uid: BACKUP_UID, capFowner: false, reason: 'new datastore' });
    expect(report.gcUser).toMatchObject({ uid: BACKUP_UID, from: 'backup user' });
    expect(report.chunkAction).toBe('inserted');
    expect(report.chunkPath).toMatch(new RegExp(`^${dir}/\\.chunkguard-probe-\\d+-n\\d+-[0-9a-f]{8}/datastore/\\.chunks/bb9f/bb9f8df6`));
    expect(severityOf(report, 'RAN_AS_STORE_OWNER')).toBe('info');
    expect(codes(report)).not.toContain('RAN_WITH_CAP_FOWNER');
    expect(codes(report)).not.toContain('CHUNK_DIR_NOT_WRITABLE');
    expect(snapshot(dir)).toEqual(before);
  });

  it('the same with --as-user root is SAFE with the CAP_FOWNER warning, and leaves nothing', () => {
    const dir = fresh();
    const before = snapshot(dir);
    const { code, report } = runJson(['check', '--probe', dir, '--as-user', 'root']);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.touchedAs).toMatchObject({ uid: 0, capFowner: true });
    const warning = report.findings.find((f: { code: string }) => f.code === 'RAN_WITH_CAP_FOWNER');
    expect(warning.severity).toBe('warning');
    expect(warning.message).toMatch(/CAP_FOWNER, which may change the times of any file whatever its owner/);
    expect(snapshot(dir)).toEqual(before);
    // Its remedy is a promise: checked as the user GC runs as, the warning is gone.
    const rerun = execFileSync('sh', ['-c', `${warning.remedy.replace(/^chunkguard /, `"${process.execPath}" "${join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs')}" `).replace(/#.*$/, '')} --json`], { encoding: 'utf8' });
    const again = JSON.parse(rerun);
    expect(again.ok).toBe(true);
    expect(codes(again)).not.toContain('RAN_WITH_CAP_FOWNER');
    expect(again.touchedAs.uid).toBe(BACKUP_UID);
  });

  it('human output: SAFE for uid 34, the info line says who touched and why, no warning', () => {
    const dir = fresh();
    const { code, stdout } = runCli(['check', '--probe', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^SAFE: tmpfs at .* honours atime updates for uid 34 \(backup\)/);
    expect(stdout).toContain('info RAN_AS_STORE_OWNER: touched as uid 34 (backup), the user GC runs as');
    expect(stdout).not.toMatch(/warning|error/);
  });

  it('a root-owned mount point holding a store of uid 34 probes as uid 34: SAFE, no chown of the mount point asked for', () => {
    const dir = fresh();
    storeIn(dir);
    const before = snapshot(dir);
    const { code, report } = runJson(['check', '--probe', dir]);
    expect({ code, codes: codes(report) }).toEqual({ code: 0, codes: ['RAN_AS_STORE_OWNER'] });
    expect(report.gcUser.uid).toBe(BACKUP_UID);
    expect(snapshot(dir)).toEqual(before);
  });

  it('a 0700 directory: the GC user cannot reach it (UNREADABLE) and root measured the filesystem too; the printed chmod makes it SAFE', () => {
    const dir = fresh(0o700);
    const { code, report } = runJson(['check', '--probe', dir]);
    expect(code).toBe(1);
    const unreadable = report.findings.find((f: { code: string }) => f.code === 'UNREADABLE');
    expect(unreadable).toMatchObject({ severity: 'error', path: dir, remedy: `chmod o+x ${dir}` });
    expect(report.summary).toMatch(/^UNSAFE: .* for uid 34 \(backup\): UNREADABLE/);
    // Both: who cannot get there, and what the filesystem does with atime once they can.
    expect(report.measuredAsRoot.touchedAs).toMatchObject({ uid: 0, capFowner: true });
    expect(report.after).toBeDefined();
    expect(codes(report)).not.toContain('ATIME_NOT_UPDATED');
    expect(severityOf(report, 'RAN_WITH_CAP_FOWNER')).toBe('warning');
    expect(readdirSync(dir)).toEqual([]);
    execFileSync('sh', ['-c', unreadable.remedy]);
    const again = runJson(['check', '--probe', dir]);
    expect(again.code).toBe(0);
    expect(codes(again.report)).not.toContain('UNREADABLE');
    expect(again.report.measuredAsRoot).toBeUndefined();
  });

  it('a 0700 parent above the directory is named, with its chmod', () => {
    const parent = fresh(0o700);
    const dir = join(parent, 'pool');
    mkdirSync(dir, { mode: 0o755 });
    const { code, report } = runJson(['check', '--probe', dir]);
    expect(code).toBe(1);
    expect(report.findings.find((f: { code: string }) => f.code === 'UNREADABLE')).toMatchObject({ path: parent, remedy: `chmod o+x ${parent}` });
  });

  it('a read-only filesystem: root cannot make the datastore either, and says why (READ_ONLY_FS)', () => {
    const dir = fresh();
    tmpfs.remountReadOnly();
    try {
      const { code, report } = runJson(['check', '--probe', dir]);
      expect(code).toBe(1);
      expect(report.findings.find((f: { severity: string }) => f.severity === 'error').code).toBe('READ_ONLY_FS');
    } finally {
      tmpfs.remountReadWrite();
    }
  });

  it('the library does the same through its helper process', async () => {
    const dir = fresh();
    const report = await checkAtime(dir, { probe: true });
    expect(report.ok).toBe(true);
    expect(report.touchedAs).toMatchObject({ uid: BACKUP_UID, via: 'setpriv' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGTERM while the GC user measures: root still removes the probe directory (exit 143)', async () => {
    const dir = fresh();
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs'), 'check', '--probe', dir, '--fixed-sleep']);
    // The fixed sleep (1 s) runs as the GC user on the switched thread: signal it then.
    await new Promise((resolve) => setTimeout(resolve, 600));
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('close', (exit, signal) => resolve(exit ?? signal)));
    expect([143, 'SIGTERM']).toContain(code);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a store whose root is root:root 0700 over a uid-34 .chunks: UNREADABLE and INCONSISTENT_OWNER agree that GC stops there; each printed remedy makes it SAFE', () => {
    for (const which of ['UNREADABLE', 'INCONSISTENT_OWNER']) {
      const store = storeIn(fresh());
      chownSync(store, 0, 0);
      chmodSync(store, 0o700);
      const { code, report, stdout } = runJson(['check', store]);
      expect(code).toBe(1);
      const inconsistent = report.findings.find((f: { code: string }) => f.code === 'INCONSISTENT_OWNER');
      expect(inconsistent.severity).toBe('error');
      expect(inconsistent.message).toContain(`uid 34 (backup) cannot enter ${store} (GC walks the whole store): GC stops there`);
      expect(inconsistent.message).not.toContain('GC can run');
      expect(stdout).not.toContain('GC can run');
      expect(report.findings.find((f: { code: string }) => f.code === 'UNREADABLE').path).toBe(store);
      execFileSync('sh', ['-c', report.findings.find((f: { code: string }) => f.code === which).remedy]);
      const again = runJson(['check', store]);
      expect({ which, code: again.code, errors: again.report.findings.filter((f: { severity: string }) => f.severity === 'error').map((f: { code: string }) => f.code) }).toEqual({ which, code: 0, errors: [] });
    }
  });

  it('a store whose only problem is a root-owned store root: check and audit exit 0 with the warning, 1 with --fail-on warning', () => {
    const store = storeIn(fresh());
    chownSync(store, 0, 0);
    chmodSync(store, 0o755); // root's, as a mount point often is, and open to pass through
    for (const command of ['check', 'audit']) {
      const { code, report } = runJson([command, store]);
      expect({ command, code, ok: report.ok, errors: report.findings.filter((f: { severity: string }) => f.severity === 'error').length }).toEqual({ command, code: 0, ok: true, errors: 0 });
      expect(report.findings.find((f: { code: string }) => f.code === 'INCONSISTENT_OWNER').severity).toBe('warning');
      const strict = runJson([command, store, '--fail-on', 'warning']);
      expect({ command, code: strict.code, ok: strict.report.ok }).toEqual({ command, code: 1, ok: false });
    }
  });

  it("a directory of root's renamed to a stale probe's name by another user is not swept: only a probe's own layout is ever removed", () => {
    const parent = fresh(0o777);
    const rootdata = join(parent, 'rootdata');
    mkdirSync(join(rootdata, '.chunks', 'bb9f'), { recursive: true });
    writeFileSync(join(rootdata, 'a'), 'root');
    writeFileSync(join(rootdata, '.chunks', 'bb9f', 'keep'), 'root');
    const before = snapshot(rootdata);
    const ns = readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
    // A PID that is not running, in our PID namespace: what a killed run's probe is named.
    const stale = join(parent, `.chunkguard-probe-999999-n${ns}-abcd1234`);
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'mv', rootdata, stale]);
    const { code } = runJson(['check', '--probe', parent]);
    expect(code).toBe(0);
    expect(snapshot(stale)).toEqual(before);
  });

  it('check --as-user and fix --owner with a uid that has no account here warn first (NO_PASSWD_ENTRY), before any chown is offered', () => {
    const store = storeIn(fresh());
    const check = runJson(['check', store, '--as-user', '99999']);
    expect(check.report.findings.find((f: { code: string }) => f.code === 'NO_PASSWD_ENTRY')).toMatchObject({ severity: 'warning', message: expect.stringContaining('--as-user 99999: uid 99999 has no account on this host') });
    const fix = runJson(['fix', store, '--owner', '99999:99999']);
    expect(fix.code).toBe(1); // a dry run with something to change
    expect(fix.report.findings[0]).toMatchObject({ code: 'NO_PASSWD_ENTRY', severity: 'warning', message: expect.stringContaining('--owner 99999: uid 99999 has no account on this host') });
    // A uid that has one says nothing of the kind.
    expect(codes(runJson(['fix', store, '--owner', '34:34']).report)).not.toContain('NO_PASSWD_ENTRY');
  });

  describe('in a parent others can write, a name swapped for a symlink or a directory of theirs changes nothing outside the probe', () => {
    for (const sticky of [false, true]) {
      it(`${sticky ? 'sticky (/tmp-like, 1777)' : 'world-writable, not sticky (0777)'}: 30 probes against a swap loop run as nobody`, async () => {
        const parent = fresh(sticky ? 0o1777 : 0o777);
        const outside = fresh();
        mkdirSync(join(outside, 'datastore', '.chunks'), { recursive: true });
        writeFileSync(join(outside, 'keep'), 'outside');
        const decoys = fresh(0o777);
        chownSync(decoys, 65534, 65534);
        // Root's own data beside the probes, which the attacker may rename but not read.
        const rootdata = join(parent, 'rootdata');
        mkdirSync(join(rootdata, 'sub'), { recursive: true, mode: 0o700 });
        writeFileSync(join(rootdata, 'a'), 'root');
        writeFileSync(join(rootdata, 'sub', 'b'), 'root');
        chmodSync(rootdata, 0o700);
        const rootdataBefore = snapshot(rootdata);
        const outsideBefore = snapshot(outside);
        const stop = join(tmpfs.mountPoint, `stop-${n}`);
        const swapper = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(import.meta.dirname, '..', 'helpers', 'probe-swapper.mjs'), parent, outside, decoys, 'rootdata', stop], { stdio: ['ignore', 'pipe', 'inherit'] });
        let swaps = '';
        swapper.stdout.setEncoding('utf8').on('data', (data: string) => (swaps += data));
        const exited = new Promise((resolve) => swapper.on('close', resolve));
        const exits: number[] = [];
        try {
          for (let i = 0; i < 30; i++) exits.push(runCli(['check', '--probe', parent, '--json']).code!);
        } finally {
          writeFileSync(stop, '');
          await exited;
        }
        // Verdicts, never a crash: 0 or 1 (a swap met is UNSAFE_PATH), never 2.
        for (const exit of exits) expect([0, 1]).toContain(exit);
        const [swapped, seen] = swaps.split(' ').map(Number);
        expect(seen).toBeGreaterThan(0);
        // The sticky bit keeps another user from renaming root's entries at all.
        if (sticky) expect(swapped).toBe(0);
        else expect(swapped).toBeGreaterThan(0);
        expect(snapshot(outside)).toEqual(outsideBefore);
        // Root's data is where it was, as it was: never emptied, chmod'ed or handed over as a probe.
        expect(snapshot(rootdata)).toEqual(rootdataBefore);
        // A probe the attacker held elsewhere while its run ended is left; the next run sweeps it (its run is gone).
        expect(runCli(['check', '--probe', parent]).code).toBe(0);
        expect(readdirSync(parent).filter((name) => name.startsWith('.chunkguard-probe-'))).toEqual([]);
        // A decoy directory that stood at a probe's name is the attacker's still, with nothing of ours in it.
        for (const decoy of readdirSync(decoys)) {
          const path = join(decoys, decoy);
          expect(statSync(path).uid).toBe(65534);
          expect(readdirSync(path)).toEqual([]);
        }
      });
    }
  });
});

describeAsRoot('check --probe as a user other than root', () => {
  it('keeps touching as itself, in its own probe directory', () => {
    const base = reachableTempDir('chunkguard-own-probe-');
    try {
      const dir = join(base, 'own');
      mkdirSync(dir);
      chownSync(dir, BACKUP_UID, BACKUP_UID);
      const { code, report } = runJson(['check', '--probe', dir], { uid: BACKUP_UID, gid: BACKUP_UID });
      expect(code).toBe(0);
      expect(report.touchedAs).toMatchObject({ uid: BACKUP_UID, via: 'self', capFowner: false });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
