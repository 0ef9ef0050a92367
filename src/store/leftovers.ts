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
import { type Dir, openedEntry, type OpenedEntry, tryLock } from '../fs/dir.js';
import { entryKind, type Stat } from '../fs/stat.js';
import { sameIdentity } from '../fs/identity.js';
import { removeProbe } from './remove-tree.js';

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
export function lockedAndStillNamed(dir: Dir, name: string, fd: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let locked = false;
  for (let attempt = 0; attempt < 50 && !(locked = tryLock(fd)); attempt++) Atomics.wait(pause, 0, 0, 1);
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

function abandoned(fd: number, stat: Stat, pid: number, ns: string): boolean {
  if (!tryLock(fd)) return false; // a live run holds it
  const ageNs = BigInt(Date.now()) * 1_000_000n - stat.ctimeNs;
  if (ageNs >= STALE_AFTER_NS) return true;
  // A PID from another namespace (a container beside the host) says nothing here.
  const ours = ns === pidNamespace() && ns !== '0';
  return ours && pid !== process.pid && !running(pid);
}

/** The names in `dir` that start with `prefix` and end in `<pid>-n<pidns>-<hex>`. Best effort: a directory that cannot be listed has none. */
function candidates(dir: Dir, prefix: string): Array<{ name: string; pid: number; ns: string }> {
  const found = [];
  let names: string[];
  try {
    names = dir.names(prefix);
  } catch {
    return [];
  }
  for (const name of names) {
    const tail = PID_TAIL.exec(name.slice(prefix.length));
    if (tail) found.push({ name, pid: Number(tail[1]), ns: tail[2]! });
  }
  return found;
}

function openedFile(dir: Dir, name: string): OpenedEntry {
  return openedEntry(dir.openFile(name), dir.pathOf(name));
}

/**
 * Look at one candidate through a descriptor opened without following it,
 * and let `remove` decide when the name still refers to what was opened.
 * Never throws: a symlink (ELOOP), a vanished or unreadable entry is left alone.
 */
function examine(dir: Dir, name: string, open: () => OpenedEntry, remove: (fd: number, stat: Stat) => boolean): boolean {
  let opened: OpenedEntry;
  try {
    opened = open();
  } catch {
    return false;
  }
  try {
    const stat = dir.stat(name);
    return stat !== undefined && sameIdentity(stat, opened.stat) && remove(opened.fd, stat);
  } catch {
    return false;
  } finally {
    opened.close();
  }
}

/** Removes the stale temp files of chunk `name` in `dir`; returns how many. */
export function sweepStaleTemps(dir: Dir, name: string): number {
  let removed = 0;
  for (const { name: temp, pid, ns } of candidates(dir, `${name}${TEMP_MARKER}`)) {
    const gone = examine(dir, temp, () => openedFile(dir, temp), (fd, stat) => entryKind(stat) === 'file' && abandoned(fd, stat, pid, ns) && dir.unlink(temp).ok);
    if (gone) removed++;
  }
  return removed;
}

/**
 * Removes the probe directories killed runs left in `dir`; returns how many. Only this
 * user's, unlocked, of a run that is gone, and only their probe layout (removeProbe): a
 * directory someone renamed to a probe's name keeps whatever else it holds.
 */
export function sweepStaleProbes(dir: Dir): number {
  let removed = 0;
  for (const { name, pid, ns } of candidates(dir, PROBE_PREFIX)) {
    let probe: Dir;
    try {
      probe = dir.openChild(name).dir;
    } catch {
      continue; // a symlink, a file, gone: left alone
    }
    try {
      const stat = probe.statSelf();
      const now = dir.stat(name);
      if (now && sameIdentity(now, stat) && stat.uid === process.geteuid!() && abandoned(probe.fd, stat, pid, ns) && removeProbe(dir, name, probe)) removed++;
    } catch {
      // Left alone.
    } finally {
      probe.close();
    }
  }
  return removed;
}
