/**
 * What the server's GC takes from outside the store: the cutoff (an option,
 * else the datastore's `tuning gc-atime-cutoff=` in datastore.cfg, else 1445
 * minutes), whether its atime safety check runs (`gc-atime-safety-check`,
 * default on), its schedule (`gc-schedule`), and the rule that turns the
 * cutoff and the oldest running backup into `min_atime` (datastore.rs
 * garbage_collection_impl, 4.2.3). datastore.cfg is read as text and trusted
 * for nothing but these values; a value the server would refuse is reported.
 */
import { DEFAULT_CUTOFF_MINUTES } from '../check/index.js';
import type { Datastore } from '../system/datastores.js';

/** The server's range for gc-atime-cutoff (minutes). */
export const CUTOFF_RANGE = { min: 1, max: 2880 } as const;

/** The safety gap the server leaves before the oldest writer's start (seconds). */
export const WRITER_GAP_SECONDS = 300;

export interface GcTuning {
  /** `gc-atime-cutoff` when set and in range. */
  cutoffMinutes?: number;
  /** `gc-atime-safety-check`: the zero-chunk test before marking (default on). */
  safetyCheck: boolean;
  /** `gc-schedule` as written (a systemd calendar event). */
  schedule?: string;
  /** A `backend` of type s3: the local cache is what GC marks. */
  s3: boolean;
  /** Values the server would refuse, in words. */
  problems: string[];
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** `key=value,key=value` (a property string), keys lower-cased. */
function propertyString(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const part of text.split(',')) {
    const equals = part.indexOf('=');
    if (equals > 0) values.set(part.slice(0, equals).trim().toLowerCase(), part.slice(equals + 1).trim());
  }
  return values;
}

export function gcTuning(store: Datastore | undefined): GcTuning {
  const tuning: GcTuning = { safetyCheck: true, s3: false, problems: [] };
  if (!store) return tuning;
  const { properties } = store;
  if (properties['gc-schedule']) tuning.schedule = properties['gc-schedule'];
  if (properties.backend && propertyString(properties.backend).get('type') === 's3') tuning.s3 = true;
  const values = propertyString(properties.tuning ?? '');
  const cutoff = values.get('gc-atime-cutoff');
  if (cutoff !== undefined) {
    const minutes = /^\d+$/.test(cutoff) ? Number(cutoff) : NaN;
    if (minutes >= CUTOFF_RANGE.min && minutes <= CUTOFF_RANGE.max) tuning.cutoffMinutes = minutes;
    else tuning.problems.push(`gc-atime-cutoff=${cutoff} is not a whole number of minutes from ${CUTOFF_RANGE.min} to ${CUTOFF_RANGE.max}`);
  }
  const check = values.get('gc-atime-safety-check')?.toLowerCase();
  if (check !== undefined) {
    if (FALSE.has(check)) tuning.safetyCheck = false;
    else if (!TRUE.has(check)) tuning.problems.push(`gc-atime-safety-check=${check} is not a boolean`);
  }
  return tuning;
}

export type CutoffSource = 'option' | 'datastore.cfg' | 'default';

/** The cutoff the server would use, and where it comes from. */
export function cutoffMinutes(option: number | undefined, tuning: GcTuning): { minutes: number; from: CutoffSource } {
  if (option !== undefined) return { minutes: option, from: 'option' };
  if (tuning.cutoffMinutes !== undefined) return { minutes: tuning.cutoffMinutes, from: 'datastore.cfg' };
  return { minutes: DEFAULT_CUTOFF_MINUTES, from: 'default' };
}

/**
 * The server's rule: `min_atime = now - cutoff`; a backup writer that started
 * before that moves it to 300 s before the writer's start. `oldestWriter` is
 * the writer's start, or `now` when none runs.
 */
export function minAtimeFor(now: number, minutes: number, oldestWriter: number): number {
  const minAtime = now - minutes * 60;
  return oldestWriter < minAtime ? oldestWriter - WRITER_GAP_SECONDS : minAtime;
}

export type SweepClass = 'removed' | 'pending' | 'inUse';

/** cond_sweep_chunk on whole-second atimes: below min_atime removed, below the oldest writer pending, else in use (a future atime too). */
export function sweepClass(atime: number, minAtime: number, oldestWriter: number): SweepClass {
  if (atime < minAtime) return 'removed';
  if (atime < oldestWriter) return 'pending';
  return 'inUse';
}
