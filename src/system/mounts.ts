/** The mount a path lives on, from /proc/self/mountinfo. */
import { readFileSync, realpathSync } from 'node:fs';
import { isWithin } from '../fs/safe-path.js';

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options (ro, noatime, relatime, ...). */
  mountOptions: string[];
  /** Superblock options (lazytime shows up here). */
  superOptions: string[];
  device: string;
  readOnly: boolean;
  /**
   * Which atime policy the mount has (an explicit utimensat ignores all of them). The
   * kernel lists noatime and relatime; strictatime is what neither means.
   */
  atimePolicy: 'noatime' | 'relatime' | 'strictatime';
  lazytime: boolean;
}

/** How reports write a mount's atime handling: `atime relatime, lazytime, read-only`. */
export function atimeText(mount: Pick<MountInfo, 'atimePolicy' | 'lazytime' | 'readOnly'>): string {
  return `atime ${mount.atimePolicy}${mount.lazytime ? ', lazytime' : ''}${mount.readOnly ? ', read-only' : ''}`;
}

/** What reports show of a mount (everything but the device number). */
export type MountFacts = Pick<MountInfo, 'mountPoint' | 'fsType' | 'source' | 'mountOptions' | 'superOptions' | 'readOnly' | 'atimePolicy' | 'lazytime'>;

export function mountFacts(mount: MountInfo): MountFacts {
  const { mountPoint, fsType, source, mountOptions, superOptions, readOnly, atimePolicy, lazytime } = mount;
  return { mountPoint, fsType, source, mountOptions, superOptions, readOnly, atimePolicy, lazytime };
}

// Octal escapes for space, tab, newline and backslash in mountinfo fields.
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const head = line.slice(0, separator).split(' ');
    const tail = line.slice(separator + 3).split(' ');
    const [device, , mountPoint, mountOptions] = [head[2], head[3], head[4], head[5]];
    const [fsType, source, superOptions] = tail;
    if (!device || !mountPoint || !mountOptions || !fsType) continue;
    const options = mountOptions.split(',');
    const superList = (superOptions ?? '').split(',').filter(Boolean);
    mounts.push({
      mountPoint: unescape(mountPoint),
      fsType,
      source: unescape(source ?? ''),
      mountOptions: options,
      superOptions: superList,
      device,
      readOnly: options.includes('ro'),
      atimePolicy: options.includes('noatime') ? 'noatime' : options.includes('relatime') ? 'relatime' : 'strictatime',
      lazytime: options.includes('lazytime') || superList.includes('lazytime'),
    });
  }
  return mounts;
}

/** The mount table and `path`'s real path, or undefined when either cannot be read. */
function mountsAround(path: string, mountinfo: string): { real: string; mounts: MountInfo[] } | undefined {
  try {
    return { mounts: parseMountInfo(readFileSync(mountinfo, 'utf8')), real: realpathSync(path) };
  } catch {
    return undefined;
  }
}

/**
 * Whether anything is mounted strictly below `path` (its real path): another
 * filesystem, an autofs trigger. When mountinfo or the real path cannot be
 * read, the answer is yes (the careful one for the caller).
 */
export function hasMountsBelow(path: string, mountinfo = '/proc/self/mountinfo'): boolean {
  const found = mountsAround(path, mountinfo);
  return !found || found.mounts.some((mount) => mount.mountPoint !== found.real && isWithin(mount.mountPoint, found.real));
}

/**
 * The mount holding `path`: the last-mounted entry whose mount point is the
 * longest prefix of its real path (what the kernel's path walk ends on).
 */
export function findMount(path: string, mountinfo = '/proc/self/mountinfo'): MountInfo | undefined {
  const found = mountsAround(path, mountinfo);
  if (!found) return undefined;
  const { real, mounts } = found;
  const candidates = mounts.filter((mount) => isWithin(real, mount.mountPoint));
  return candidates.reduce<MountInfo | undefined>(
    (found, mount) => (!found || mount.mountPoint.length >= found.mountPoint.length ? mount : found),
    undefined,
  );
}
