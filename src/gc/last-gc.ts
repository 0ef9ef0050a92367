/**
 * The last garbage collection that completed: `.gc-status`, which the server
 * writes at the store root only when a GC finishes (its mtime is that moment;
 * its UPID holds the start), and how long its `gc-schedule` lets pass between
 * runs. The file is untrusted input: read without following a symlink, at
 * most 64 KiB, every number checked.
 */
import { readSync } from 'node:fs';
import { closeFd, type Dir } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';

export const GC_STATUS = '.gc-status';
const MAX_STATUS_BYTES = 64 * 1024;

export interface Amount {
  chunks: number;
  bytes: number;
}

export interface LastGc {
  /** When the status was written, the end of that GC (Unix seconds: the file's mtime). */
  completed: number;
  /** Its start, from its UPID. */
  started?: number;
  upid?: string;
  indexFiles?: number;
  removed: Amount;
  pending: Amount;
  /** What was left on disk. */
  disk: Amount;
  removedBad?: number;
  stillBad?: number;
}

export type LastGcRead = { found: false } | { found: true; status: LastGc } | { found: true; problem: string };

const count = (value: unknown): number | undefined => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined);

function amount(json: Record<string, unknown>, chunks: string, bytes: string): Amount {
  return { chunks: count(json[chunks]) ?? 0, bytes: count(json[bytes]) ?? 0 };
}

/** The start in a UPID (`UPID:node:pid:pstart:taskid:STARTTIME:...`, hex). */
function upidStart(upid: string): number | undefined {
  const field = upid.split(':')[5];
  return field && /^[0-9A-Fa-f]{8,}$/.test(field) ? parseInt(field, 16) : undefined;
}

function parseStatus(text: string, mtimeSeconds: number): LastGc | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'is not JSON';
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return 'is not a JSON object';
  const fields = json as Record<string, unknown>;
  const upid = typeof fields.upid === 'string' ? fields.upid : undefined;
  const started = upid === undefined ? undefined : upidStart(upid);
  return {
    completed: mtimeSeconds,
    ...(started === undefined ? {} : { started }),
    ...(upid === undefined ? {} : { upid }),
    ...(count(fields['index-file-count']) === undefined ? {} : { indexFiles: count(fields['index-file-count']) }),
    removed: amount(fields, 'removed-chunks', 'removed-bytes'),
    pending: amount(fields, 'pending-chunks', 'pending-bytes'),
    disk: amount(fields, 'disk-chunks', 'disk-bytes'),
    ...(count(fields['removed-bad']) === undefined ? {} : { removedBad: count(fields['removed-bad']) }),
    ...(count(fields['still-bad']) === undefined ? {} : { stillBad: count(fields['still-bad']) }),
  };
}

/** `.gc-status` in the store root `root`. */
export function readLastGc(root: Dir): LastGcRead {
  const stat = root.stat(GC_STATUS);
  if (!stat) return { found: false };
  if ((stat.mode & 0o170000) !== 0o100000) return { found: true, problem: 'is not a regular file' };
  if (stat.size > BigInt(MAX_STATUS_BYTES)) return { found: true, problem: `is larger than ${MAX_STATUS_BYTES} bytes` };
  let fd: number;
  try {
    fd = root.openFile(GC_STATUS);
  } catch (error) {
    if (error instanceof FsError) return error.code === 'ENOENT' ? { found: false } : { found: true, problem: `cannot be read (${error.code})` };
    throw error;
  }
  try {
    const buffer = Buffer.alloc(MAX_STATUS_BYTES + 1);
    let length = 0;
    for (let read = 1; read > 0 && length < buffer.length; length += read) read = readSync(fd, buffer, length, buffer.length - length, null);
    const parsed = parseStatus(buffer.subarray(0, length).toString('utf8'), Number(stat.mtimeNs / 1_000_000_000n));
    return typeof parsed === 'string' ? { found: true, problem: parsed } : { found: true, status: parsed };
  } catch (error) {
    return { found: true, problem: `cannot be read (${(error as { code?: string }).code ?? 'EIO'})` };
  } finally {
    closeFd(fd);
  }
}

const DAY = 86_400;
const NAMED: Record<string, number> = {
  minutely: 60,
  hourly: 3600,
  daily: DAY,
  weekly: 7 * DAY,
  monthly: 31 * DAY,
  quarterly: 92 * DAY,
  semiannually: 183 * DAY,
  yearly: 366 * DAY,
  annually: 366 * DAY,
};
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** The weekdays a calendar event's weekday list names (`mon..fri`, `sat,sun`), or undefined when it has none. */
function weekdays(field: string): Set<number> | undefined {
  const days = new Set<number>();
  for (const part of field.toLowerCase().split(',')) {
    const [from, to] = part.split('..').map((day) => WEEKDAYS.indexOf(day.slice(0, 3)));
    if (from === undefined || from < 0 || (to !== undefined && to < 0)) return undefined;
    for (let day = from; ; day = (day + 1) % 7) {
      days.add(day);
      if (to === undefined || day === to) break;
    }
  }
  return days;
}

/**
 * The longest time (seconds) a `gc-schedule` calendar event leaves between two runs, for
 * the common forms: a name (`daily`, `weekly`...), weekdays with a time (`sat 18:15`,
 * `mon..fri 02:00`), a time alone (daily), an hour pattern (`*:0/30`: hourly at most).
 * Undefined for anything else: then no run is called overdue.
 */
export function scheduleInterval(schedule: string): number | undefined {
  const text = schedule.trim().toLowerCase();
  if (NAMED[text] !== undefined) return NAMED[text];
  const parts = text.split(/\s+/);
  const days = weekdays(parts[0]!);
  const time = days ? parts.slice(1) : parts;
  if (time.length > 1 || (time.length === 1 && !/^[\d*/,:.]+$/.test(time[0]!))) return undefined;
  if (days) {
    const sorted = [...days].sort((a, b) => a - b);
    const gaps = sorted.map((day, i) => ((sorted[(i + 1) % sorted.length]! - day + 7) % 7 || 7));
    return Math.max(...gaps) * DAY;
  }
  if (time.length === 0) return undefined;
  return /^\d{1,2}(:\d{1,2}){0,2}$/.test(time[0]!) ? DAY : 3600;
}
