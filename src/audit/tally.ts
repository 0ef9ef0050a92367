/**
 * Per-owner counts, bytes and time windows. Workers tally every entry and
 * send the (small) tallies; the main thread merges them. Bursts are kept as
 * one bucket per minute (count, earliest, latest), so memory grows with the
 * number of distinct minutes, not with the number of files.
 */
export interface OwnerTally {
  uid: number;
  gid: number;
  count: number;
  directories: number;
  bytes: number;
  mtimeMin: number;
  mtimeMax: number;
  ctimeMin: number;
  ctimeMax: number;
}

export class OwnerTallies {
  readonly byOwner = new Map<string, OwnerTally>();
  // Almost every entry has the owner of the one before: skip the map lookup then.
  private last: OwnerTally | undefined;

  add(uid: number, gid: number, bytes: number, isDirectory: boolean, mtimeMs: number, ctimeMs: number): void {
    let tally = this.last;
    if (!tally || tally.uid !== uid || tally.gid !== gid) tally = this.byOwner.get(`${uid}:${gid}`);
    if (!tally) {
      const key = `${uid}:${gid}`;
      tally = { uid, gid, count: 0, directories: 0, bytes: 0, mtimeMin: Infinity, mtimeMax: -Infinity, ctimeMin: Infinity, ctimeMax: -Infinity };
      this.byOwner.set(key, tally);
    }
    this.last = tally;
    tally.count++;
    if (isDirectory) tally.directories++;
    tally.bytes += bytes;
    if (mtimeMs < tally.mtimeMin) tally.mtimeMin = mtimeMs;
    if (mtimeMs > tally.mtimeMax) tally.mtimeMax = mtimeMs;
    if (ctimeMs < tally.ctimeMin) tally.ctimeMin = ctimeMs;
    if (ctimeMs > tally.ctimeMax) tally.ctimeMax = ctimeMs;
  }

  merge(tallies: Iterable<OwnerTally>): void {
    for (const other of tallies) {
      const key = `${other.uid}:${other.gid}`;
      const tally = this.byOwner.get(key);
      if (!tally) {
        this.byOwner.set(key, { ...other });
        continue;
      }
      tally.count += other.count;
      tally.directories += other.directories;
      tally.bytes += other.bytes;
      tally.mtimeMin = Math.min(tally.mtimeMin, other.mtimeMin);
      tally.mtimeMax = Math.max(tally.mtimeMax, other.mtimeMax);
      tally.ctimeMin = Math.min(tally.ctimeMin, other.ctimeMin);
      tally.ctimeMax = Math.max(tally.ctimeMax, other.ctimeMax);
    }
  }

  /** Hand the tallies over and start afresh (a worker's flush). */
  drain(): OwnerTally[] {
    const all = [...this.byOwner.values()];
    this.byOwner.clear();
    this.last = undefined;
    return all;
  }
}

/** Entries written within this long of each other belong to one burst. */
export const BURST_GAP_MS = 60_000;
/** Beyond this many distinct minutes per owner, bursts are reported as incomplete. */
const MAX_BUCKETS = 100_000;

export interface Burst {
  from: string;
  to: string;
  count: number;
}

interface Bucket {
  count: number;
  min: number;
  max: number;
}

export class BurstTracker {
  private readonly buckets = new Map<number, Bucket>();
  /** True when some entries fell outside the bucket limit. */
  overflowed = false;

  add(timeMs: number): void {
    const minute = Math.floor(timeMs / 60_000);
    const bucket = this.buckets.get(minute);
    if (bucket) {
      bucket.count++;
      if (timeMs < bucket.min) bucket.min = timeMs;
      if (timeMs > bucket.max) bucket.max = timeMs;
    } else if (this.buckets.size < MAX_BUCKETS) {
      this.buckets.set(minute, { count: 1, min: timeMs, max: timeMs });
    } else {
      this.overflowed = true;
    }
  }

  /**
   * Consecutive buckets join while the gap between one's latest and the next
   * one's earliest entry is at most a minute. Entries inside one minute
   * bucket are always within a minute of each other, so this is exact.
   */
  bursts(): Burst[] {
    const ordered = [...this.buckets.entries()].sort((a, b) => a[0] - b[0]).map(([, bucket]) => bucket);
    const joined: Bucket[] = [];
    for (const bucket of ordered) {
      const last = joined.at(-1);
      if (last && bucket.min - last.max <= BURST_GAP_MS) {
        last.count += bucket.count;
        last.max = Math.max(last.max, bucket.max);
      } else {
        joined.push({ ...bucket });
      }
    }
    return joined.map((burst) => ({ from: isoSeconds(burst.min), to: isoSeconds(burst.max), count: burst.count }));
  }
}

/** ISO 8601 UTC to the second: 2026-01-31T18:00:31Z. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** "2026-01-31T18:00:31Z .. 18:00:33Z" (the date only repeated when it differs). */
export function formatWindow(from: string, to: string): string {
  if (from === to) return from;
  const sameDay = from.slice(0, 10) === to.slice(0, 10);
  return `${from} .. ${sameDay ? to.slice(11) : to}`;
}
