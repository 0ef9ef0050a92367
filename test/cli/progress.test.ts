import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { type Mounted, mountFs } from '../helpers/mounts.js';
import { describeAsRoot } from '../helpers/privileged.js';
import { makeKopiaRepo } from '../helpers/repo.js';
import { reachableTempDir } from '../helpers/store.js';

describeAsRoot('audit progress', () => {
  let base: string;
  let dir: string;
  beforeAll(() => {
    base = reachableTempDir('chunkguard-progress-');
    dir = makeKopiaRepo(join(base, 'repo')).root;
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('is drawn on stderr when it is a terminal (a pty from script(1))', () => {
    const command = `${process.execPath} ${CLI} audit ${dir} > /dev/null`;
    const result = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
    expect(result.stdout).toMatch(/audit \d+ entries \| \d+ dirs \| \d+ entries\/s/);
  });

  it('is absent when stderr is not a terminal, and with --json', () => {
    const plain = runCli(['audit', dir]);
    expect(plain.stderr).toBe('');
    const command = `${process.execPath} ${CLI} audit ${dir} --json > /dev/null`;
    const json = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm' } });
    expect(json.stdout).not.toMatch(/entries\/s/);
  });
});

describeAsRoot('Ctrl-C during the progress bar', () => {
  let fs: Mounted;
  beforeAll(() => {
    // 300,000 empty directories: a few seconds of audit (each one is opened and listed), made in one.
    fs = mountFs('tmpfs', 256);
    for (let d = 0; d < 600; d++) {
      const parent = join(fs.mountPoint, `d${d}`);
      mkdirSync(parent);
      for (let e = 0; e < 500; e++) mkdirSync(join(parent, String(e)));
    }
  });
  afterAll(() => fs?.unmount());

  it('leaves the line cleared and the cursor shown, and exits 130', async () => {
    // script(1) gives the audit a pty; a 0x03 written to it is Ctrl-C: the terminal sends SIGINT to the audit.
    const command = `${process.execPath} ${CLI} audit ${fs.mountPoint} --owner 0:0 > /dev/null`;
    const script = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    script.stdout.setEncoding('utf8').on('data', (data: string) => (output += data));
    const exited = new Promise<number | null>((resolve) => script.on('exit', resolve));
    await expect.poll(() => output, { timeout: 20_000, interval: 5 }).toMatch(/audit \d+ entries \| \d+ dirs/);
    script.stdin.write('\x03');
    expect(await exited).toBe(130);
    const lastBar = output.lastIndexOf('audit ');
    expect(lastBar).toBeGreaterThan(0);
    // After the last bar drawn: the cursor shown again, and the line erased (ESC [2K) as the last thing written.
    const after = output.slice(lastBar);
    expect(after).toContain('\x1b[?25h');
    expect(output.replace(/\^C/g, '')).toMatch(/\x1b\[2K$/);
  });
});

describeAsRoot('check --format prometheus', () => {
  it('writes the verdict as gauges node_exporter can collect', () => {
    const dir = reachableTempDir('chunkguard-prom-');
    try {
      const { code, stdout } = runCli(['check', dir, '--probe', '--format', 'prometheus']);
      expect(code).toBe(0);
      expect(stdout).toContain('# TYPE chunkguard_check_ok gauge');
      expect(stdout).toContain(`chunkguard_check_ok{store="${dir}"} 1`);
      expect(stdout).toMatch(/chunkguard_check_duration_seconds\{store="[^"]+"\} [0-9.]+/);
      expect(runCli(['check', dir, '--probe', '--format', 'prometheus', '--json']).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
