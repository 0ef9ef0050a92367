/** Build and mount the misbehaving FUSE fixture (test/fixtures/atimefs.c). */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = join(import.meta.dirname, '..', 'fixtures', 'atimefs.c');
// Named by the source's hash, so an edited fixture is rebuilt.
const BINARY = join(tmpdir(), `chunkguard-atimefs-${createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12)}`);

export function buildAtimefs(): string {
  if (!existsSync(BINARY)) {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' }).trim().split(/\s+/);
    execFileSync('cc', ['-Wall', '-O1', '-o', BINARY, SOURCE, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return BINARY;
}

export interface FuseMount {
  mountPoint: string;
  backing: string;
  unmount(): void;
}

export function mountAtimefs(mode: 'ignore-atime' | 'unstable-ino' | 'eio-write'): FuseMount {
  const binary = buildAtimefs();
  const base = mkdtempSync(join(tmpdir(), `chunkguard-fuse-${mode}-`));
  const backing = join(base, 'backing');
  const mountPoint = join(base, 'mnt');
  mkdirSync(backing);
  mkdirSync(mountPoint);
  // Returns once mounted (the daemon forks).
  execFileSync(binary, [backing, mountPoint, mode], { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    mountPoint,
    backing,
    unmount: () => {
      try {
        execFileSync('umount', [mountPoint], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}
