/**
 * Backups running on the store now. The server's backup writers hold a shared
 * POSIX lock on `<store>/.lock` while they run, and its GC keeps every chunk
 * newer than the oldest one's start: that start lives in the server process,
 * so it is read from the server's list of active tasks (a `backup` task of
 * this datastore, its UPID holding the start in hex). /proc/locks says that a
 * shared lock is held; the task list says since when. Both files are read as
 * untrusted text: a line that does not parse is skipped.
 */
import { readFileSync } from 'node:fs';
import type { Stat } from '../fs/stat.js';
import { formatDev } from '../fs/stat.js';

export const PROC_LOCKS = '/proc/locks';
export const ACTIVE_TASKS = '/var/log/proxmox-backup/tasks/active';

export interface BackupWriters {
  /** A shared lock on `.lock` is held: a backup is writing to the store. */
  running: boolean;
  /** The holders' pids as /proc/locks shows them. */
  pids: number[];
  /** The oldest running backup task of this datastore: its start (Unix seconds) and UPID. */
  oldest?: { start: number; upid: string };
  /**
   * Running, with no start known: the server keeps what is newer than that start,
   * so the predicted removal is an upper bound.
   */
  startUnknown: boolean;
}

export interface WriterSources {
  procLocks?: string;
  activeTasks?: string;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Pids holding a read (shared) POSIX or OFD lock on the inode `lock`, from /proc/locks lines ("1: POSIX  ADVISORY  READ 1234 08:01:131090 0 EOF"). */
export function sharedLockHolders(text: string, lock: Pick<Stat, 'dev' | 'ino'>): number[] {
  const [major, minor] = formatDev(lock.dev).split(':').map(Number);
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    // A waiter's line carries "->": it holds nothing yet.
    const match = /^\d+:\s+(POSIX|OFDLCK)\s+\S+\s+READ\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!match) continue;
    if (parseInt(match[3]!, 16) !== major || parseInt(match[4]!, 16) !== minor || BigInt(match[5]!) !== lock.ino) continue;
    pids.push(Number(match[2]));
  }
  return pids;
}

/** systemd's unit escaping as the server writes a worker id into its UPID: `\xNN` for a byte. */
function unescape(text: string): string {
  return text.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Running backup tasks of datastore `store` in the task list: a line holding a UPID alone
 * (a finished task's line carries its end time and status after it). UPID:
 * `UPID:node:pid:pstart:taskid:starttime:type:id:authid:`, numbers in hex.
 */
export function runningBackups(text: string, store: string): { start: number; upid: string }[] {
  const tasks: { start: number; upid: string }[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 1) continue;
    const parts = fields[0]!.split(':');
    if (parts.length < 9 || parts[0] !== 'UPID' || parts[6] !== 'backup') continue;
    if (!/^[0-9A-Fa-f]{8,}$/.test(parts[5]!)) continue;
    if (!unescape(parts[7]!).startsWith(`${store}:`)) continue;
    tasks.push({ start: parseInt(parts[5]!, 16), upid: fields[0]! });
  }
  return tasks;
}

/** What runs on the store: `lock` is `.lock`'s stat (undefined when there is none: nothing can hold it). */
export function backupWriters(lock: Pick<Stat, 'dev' | 'ino'> | undefined, store: string | undefined, sources: WriterSources = {}): BackupWriters {
  const pids = lock ? sharedLockHolders(readText(sources.procLocks ?? PROC_LOCKS), lock) : [];
  if (pids.length === 0) return { running: false, pids, startUnknown: false };
  const tasks = store === undefined ? [] : runningBackups(readText(sources.activeTasks ?? ACTIVE_TASKS), store);
  const oldest = tasks.reduce<{ start: number; upid: string } | undefined>((first, task) => (!first || task.start < first.start ? task : first), undefined);
  return { running: true, pids, ...(oldest ? { oldest } : {}), startUnknown: !oldest };
}
