/**
 * Kernel features a test needs that a kernel may lack: a filesystem not built
 * (or its module not shipped), io_uring or user namespaces compiled out or
 * switched off by sysctl. Such a test is skipped under CI too, with the reason
 * naming the feature ("skipped: the running kernel has no autofs"): the machine
 * cannot run it, the code is not broken. What a test needs from the machine's
 * packages or privileges is no kernel feature: that still fails under CI=true.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { describe, it, type TestContext } from 'vitest';
import { StatRing } from '../../src/fs/stat-ring.js';
import { describeAsRoot } from './privileged.js';

/** A filesystem type as /proc/filesystems names it, or another kernel facility. */
export type KernelFeature = 'autofs' | 'fuse' | 'ext4' | 'xfs' | 'btrfs' | 'tmpfs' | 'overlay' | 'squashfs' | 'erofs' | 'io_uring' | 'user namespaces';

const FACILITIES: Record<string, () => string | undefined> = {
  io_uring: ioUringMissing,
  'user namespaces': userNamespacesMissing,
};

const known = new Map<KernelFeature, string | undefined>();

/** Why the running kernel cannot give `feature` ("the running kernel has no autofs"), or undefined when it can. */
export function kernelLacks(feature: KernelFeature): string | undefined {
  if (!known.has(feature)) known.set(feature, (FACILITIES[feature] ?? (() => filesystemMissing(feature)))());
  return known.get(feature);
}

export function kernelHas(feature: KernelFeature): boolean {
  return kernelLacks(feature) === undefined;
}

/** A test that needs `feature`: skipped with the reason as its note when the kernel lacks it. */
export function itIfKernel(feature: KernelFeature, name: string, fn: (context: TestContext) => unknown, timeout?: number): void {
  it(
    name,
    (context) => {
      const lacking = kernelLacks(feature);
      if (lacking) context.skip(`skipped: ${lacking}`);
      return fn(context);
    },
    timeout,
  );
}

/**
 * A group of tests that needs `feature` (its setup mounts it, say): declared with
 * `declare` (by default describeAsRoot: using a kernel feature mostly takes root)
 * when the kernel has it, else skipped whole with the reason in its name, as a
 * vitest skip of a group carries no note.
 */
export function describeIfKernel(feature: KernelFeature, name: string, body: () => void, declare: (name: string, body: () => void) => void = describeAsRoot): void {
  const lacking = kernelLacks(feature);
  if (lacking) describe.skip(`${name} (skipped: ${lacking})`, body);
  else declare(name, body);
}

function registered(name: string): boolean {
  return readFileSync('/proc/filesystems', 'utf8')
    .split('\n')
    .some((line) => line.split('\t')[1] === name);
}

/**
 * A filesystem is there when /proc/filesystems lists it after modprobe asked for
 * its module (the alias fs-NAME, as the kernel's own mount(2) does). Without
 * modprobe on a kernel that has modules, a module may be there unloaded: that
 * is a missing package (kmod), not a missing feature, and it fails the test.
 */
function filesystemMissing(name: string): string | undefined {
  if (registered(name)) return undefined;
  const modprobe = spawnSync('modprobe', ['-q', `fs-${name}`], { stdio: 'ignore' });
  if (registered(name)) return undefined;
  const modules = `/lib/modules/${release()}`;
  if (modprobe.error && existsSync(modules)) {
    throw new Error(`the kernel may have ${name} as a module in ${modules}, but modprobe cannot run (${modprobe.error.message}): install kmod`);
  }
  return `the running kernel has no ${name}${existsSync(modules) ? ` (modprobe fs-${name} found no module)` : ' (not built in, and no modules installed)'}`;
}

/** Compiled out (ENOSYS), or switched off for everyone by kernel.io_uring_disabled = 2; a seccomp EPERM is the machine's policy and fails. */
function ioUringMissing(): string | undefined {
  const ring = StatRing.open(1, 1);
  if (ring instanceof StatRing) {
    ring.close();
    return undefined;
  }
  if (ring.reason.endsWith('ENOSYS')) return 'the running kernel has no io_uring (io_uring_setup: ENOSYS)';
  if (readTrimmed('/proc/sys/kernel/io_uring_disabled') === '2') return 'the running kernel has io_uring switched off (kernel.io_uring_disabled = 2)';
  return undefined;
}

/** Compiled out (no /proc/self/ns/user), or switched off by user.max_user_namespaces = 0. */
function userNamespacesMissing(): string | undefined {
  if (!existsSync('/proc/self/ns/user')) return 'the running kernel has no user namespaces (CONFIG_USER_NS is off)';
  if (readTrimmed('/proc/sys/user/max_user_namespaces') === '0') return 'the running kernel has user namespaces switched off (user.max_user_namespaces = 0)';
  return undefined;
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}
