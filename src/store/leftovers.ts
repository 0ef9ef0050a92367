/**
 * What a killed run leaves behind: temp files beside a chunk
 * (`<digest>.chunkguard-tmp-<pid>-<hex>`) and probe directories
 * (`.chunkguard-probe-<pid>-<hex>`). One is stale when no process holds its
 * lock (a live run flocks it; the lock dies with the process, in any PID
 * namespace) and either its PID is not running here or it is older than any
 * run takes. Removal is by name relative to the open directory, never
 * through a symlink.
 */
import { closeFd, openDirectoryAt, openFileAt, tryLockExclusive, unlinkAt } from '../native/libc.js';
import type { NsStat, OpenDir } from './open-dir.js';
import { removeTree } from './remove-tree.js';

export const TEMP_MARKER = '.chunkguard-tmp-';
export const PROBE_PREFIX = '.chunkguard-probe-';

/** An insert writes 159 bytes and a probe lasts seconds: older than this, nothing live owns it. */
const STALE_AFTER_NS = 10n * 60n * 1_000_000_000n;

const PID_TAIL = /^(\d+)-[0-9a-f]+$/;

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function abandoned(fd: number, stat: NsStat, pid: number): boolean {
  if (!tryLockExclusive(fd)) return false; // a live run holds it
  const ageNs = BigInt(Date.now()) * 1_000_000n - stat.ctimeNs;
  return ageNs >= STALE_AFTER_NS || (pid !== process.pid && !running(pid));
}

/** The names in `dir` that start with `prefix` and end in `<pid>-<hex>`, with that PID. */
function candidates(dir: OpenDir, prefix: string): Array<{ name: string; pid: number }> {
  const found = [];
  for (const name of dir.namesStartingWith(prefix)) {
    const tail = PID_TAIL.exec(name.slice(prefix.length));
    if (tail) found.push({ name, pid: Number(tail[1]) });
  }
  return found;
}

/** Removes the stale temp files of chunk `name` in `dir`; returns how many. */
export function sweepStaleTemps(dir: OpenDir, name: string): number {
  let removed = 0;
  for (const { name: temp, pid } of candidates(dir, `${name}${TEMP_MARKER}`)) {
    const opened = openFileAt(dir.fd, temp);
    if (!opened.ok) continue; // a symlink (ELOOP), gone, or not readable by us
    try {
      const stat = dir.stat(temp);
      if (!stat || dir.kindOf(temp) !== 'file' || !abandoned(opened.fd, stat, pid)) continue;
      if (unlinkAt(dir.fd, temp).ok) removed++;
    } finally {
      closeFd(opened.fd);
    }
  }
  return removed;
}

/** Removes the probe directories killed runs left in `dir`; returns how many. */
export function sweepStaleProbes(dir: OpenDir): number {
  let removed = 0;
  for (const { name, pid } of candidates(dir, PROBE_PREFIX)) {
    const opened = openDirectoryAt(dir.fd, name);
    if (!opened.ok) continue;
    try {
      const stat = dir.stat(name);
      if (!stat || !abandoned(opened.fd, stat, pid)) continue;
      if (removeTree(dir, name)) removed++;
    } finally {
      closeFd(opened.fd);
    }
  }
  return removed;
}
