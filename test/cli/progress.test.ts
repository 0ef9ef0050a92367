import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
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
