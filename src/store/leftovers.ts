/**
 * What a killed run leaves behind: temp files beside a chunk
 * (`<digest>.chunkguard-tmp-<pid>-n<pidns>-<hex>`) and probe directories
 * (`.chunkguard-probe-<pid>-n<pidns>-<hex>`). One is stale when no process
 * holds its lock (a live run flocks it before anyone can sweep it, see
 * lockedAndStillNamed; the lock dies with the process) and either its PID is
 * not running in our PID namespace (the name says which one it was made in)
 * or it is older than any run takes. Removal is by name relative to the open
 * directory, never through a symlink.
 */
import { readlinkSync } from 'node:fs';
import { closeFd, openDirectoryAt, openFileAt, statxAt, STATX_SIZE, tryLockExclusive, unlinkAt } from '../native/libc.js';
import { kindOfStat, type NsStat, type OpenDir } from './open-dir.js';
import { removeTree } from './remove-tree.js';

export const TEMP_MARKER = '.chunkguard-tmp-';
export const PROBE_PREFIX = '.chunkguard-probe-';

/** An insert writes 159 bytes and a probe lasts seconds: older than this, nothing live owns it. */
const STALE_AFTER_NS = 10n * 60n * 1_000_000_000n;

const PID_TAIL = /^(\d+)-n(\d+)-[0-9a-f]+$/;

let namespace: string | undefined;

/** The inode of our PID namespace ('0' when /proc does not say): PIDs only mean something within one. */
export function pidNamespace(): string {
  if (namespace === undefined) {
    try {
      namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
    } catch {
      namespace = '0';
    }
  }
  return namespace;
}

/** `<pid>-n<pidns>`: the part of a leftover's name that says who made it. */
export function leftoverTag(): string {
  return `${process.pid}-n${pidNamespace()}`;
}

/**
 * Take the lock of a just-created leftover and confirm the name still refers
 * to it: a sweeping run may hold the lock for a moment while it decides, and
 * may have removed the name before our lock. False means start again.
 */
export function lockedAndStillNamed(dir: OpenDir, name: string, fd: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let locked = false;
  for (let attempt = 0; attempt < 50 && !(locked = tryLockExclusive(fd)); attempt++) Atomics.wait(pause, 0, 0, 1);
  // Names are unique to this run, so one still there is ours (inode numbers are not
  // compared: some FUSE filesystems report a new one on every stat).
  return locked && dir.stat(name) !== undefined;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function abandoned(fd: number, stat: NsStat, pid: number, ns: string): boolean {
  if (!tryLockExclusive(fd)) return false; // a live run holds it
  const ageNs = BigInt(Date.now()) * 1_000_000n - stat.ctimeNs;
  if (ageNs >= STALE_AFTER_NS) return true;
  // A PID from another namespace (a container beside the host) says nothing here.
  const ours = ns === pidNamespace() && ns !== '0';
  return ours && pid !== process.pid && !running(pid);
}

/** The names in `dir` that start with `prefix` and end in `<pid>-n<pidns>-<hex>`. Best effort: a directory that cannot be listed has none. */
function candidates(dir: OpenDir, prefix: string): Array<{ name: string; pid: number; ns: string }> {
  const found = [];
  let names: string[];
  try {
    names = dir.namesStartingWith(prefix);
  } catch {
    return [];
  }
  for (const name of names) {
    const tail = PID_TAIL.exec(name.slice(prefix.length));
    if (tail) found.push({ name, pid: Number(tail[1]), ns: tail[2]! });
  }
  return found;
}

/** The open leftover `fd` is still what `name` refers to (not renamed in meanwhile). */
function sameEntry(dir: OpenDir, name: string, fd: number, stat: NsStat): boolean {
  const buf = Buffer.alloc(STATX_SIZE);
  return statxAt(fd, '', buf) === 0 && buf.readBigUInt64LE(32) === stat.ino;
}

/** Removes the stale temp files of chunk `name` in `dir`; returns how many. */
export function sweepStaleTemps(dir: OpenDir, name: string): number {
  let removed = 0;
  for (const { name: temp, pid, ns } of candidates(dir, `${name}${TEMP_MARKER}`)) {
    const opened = openFileAt(dir.fd, temp);
    if (!opened.ok) continue; // a symlink (ELOOP), gone, or not readable by us
    try {
      let stat;
      try {
        stat = dir.stat(temp);
      } catch {
        continue;
      }
      if (!stat || kindOfStat(stat) !== 'file' || !sameEntry(dir, temp, opened.fd, stat) || !abandoned(opened.fd, stat, pid, ns)) continue;
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
  for (const { name, pid, ns } of candidates(dir, PROBE_PREFIX)) {
    const opened = openDirectoryAt(dir.fd, name);
    if (!opened.ok) continue;
    try {
      let stat;
      try {
        stat = dir.stat(name);
      } catch {
        continue;
      }
      // A probe directory is never chowned: one not ours is someone's renamed directory, not a leftover.
      if (!stat || Number(stat.uid) !== process.geteuid!() || !sameEntry(dir, name, opened.fd, stat)) continue;
      if (!abandoned(opened.fd, stat, pid, ns)) continue;
      if (removeTree(dir, name)) removed++;
    } finally {
      closeFd(opened.fd);
    }
  }
  return removed;
}
