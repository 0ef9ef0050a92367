/** Real filesystems on loop devices (and tmpfs), mounted for a test file and removed after it. */
import { execFileSync } from 'node:child_process';
import { rmSync, unlinkSync } from 'node:fs';
import { reachableTempDir } from './store.js';
import { join } from 'node:path';

export type FsKind = 'ext4' | 'ext4-128' | 'xfs' | 'btrfs' | 'tmpfs';
export const ALL_FS: FsKind[] = ['ext4', 'ext4-128', 'xfs', 'btrfs', 'tmpfs'];

export interface Mounted {
  kind: FsKind;
  mountPoint: string;
  /** The fsType /proc/self/mountinfo reports. */
  fsType: string;
  remountReadOnly(): void;
  remountReadWrite(): void;
  unmount(): void;
}

const MKFS: Record<Exclude<FsKind, 'tmpfs'>, string[]> = {
  ext4: ['mkfs.ext4', '-q', '-F'],
  // 128-byte inodes: no room for nanosecond timestamps, whole seconds only.
  'ext4-128': ['mkfs.ext4', '-q', '-F', '-I', '128'],
  xfs: ['mkfs.xfs', '-q', '-f'],
  btrfs: ['mkfs.btrfs', '-q', '-f'],
};

/** The filesystem a kind mounts, as /proc/filesystems and mountinfo name it. */
export const fsTypeOf = (kind: FsKind): Exclude<FsKind, 'ext4-128'> => (kind === 'ext4-128' ? 'ext4' : kind);

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `options`: more mount options (`noatime`, `strictatime`, …). */
export function mountFs(kind: FsKind, sizeMiB = 320, options: string[] = []): Mounted {
  const base = reachableTempDir(`chunkguard-${kind}-`);
  const mountPoint = join(base, 'mnt');
  const image = join(base, 'fs.img');
  run('mkdir', [mountPoint]);
  if (kind === 'tmpfs') {
    run('mount', ['-t', 'tmpfs', '-o', [`size=${sizeMiB}m`, ...options].join(','), 'chunkguard-test', mountPoint]);
  } else {
    run('truncate', ['-s', `${sizeMiB}M`, image]);
    const [command, ...args] = MKFS[kind];
    run(command!, [...args, image]);
    run('mount', ['-o', ['loop', ...options].join(','), image, mountPoint]);
  }
  return {
    kind,
    mountPoint,
    fsType: fsTypeOf(kind),
    remountReadOnly: () => run('mount', ['-o', 'remount,ro', mountPoint]),
    remountReadWrite: () => run('mount', ['-o', 'remount,rw', mountPoint]),
    unmount: () => {
      try {
        run('umount', [mountPoint]);
      } catch {
        run('umount', ['-l', mountPoint]);
      }
      try {
        unlinkSync(image);
      } catch {
        // tmpfs has no image.
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}
