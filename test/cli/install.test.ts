/** The README's install, as written: npm pack, then a global install of the tarball without scripts, into a prefix of its own. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { reachableTempDir } from '../helpers/store.js';

const ROOT = join(import.meta.dirname, '..', '..');
const base = reachableTempDir('chunkguard-install-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

it('npm pack + npm install -g --ignore-scripts puts a working chunkguard on PATH', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
  npm(['pack', '--pack-destination', base], ROOT);
  const tarball = readdirSync(base).find((name) => name.startsWith('chunkguard-') && name.endsWith('.tgz'));
  expect(tarball).toBe(`chunkguard-${version}.tgz`);
  const prefix = join(base, 'prefix');
  npm(['install', '-g', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', prefix, join(base, tarball!)], base);
  const bin = join(prefix, 'bin', 'chunkguard');
  expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
  const probe = join(base, 'probe');
  mkdirSync(probe);
  const check = spawnSync(bin, ['check', '--probe', probe, '--json'], { encoding: 'utf8' });
  expect(check.status, check.stderr).toBe(0);
  expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, command: 'check', probe: true });
  expect(readdirSync(probe)).toEqual([]);
}, 240_000);
