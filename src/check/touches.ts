/**
 * Step 3: the measurement itself. A reference touch first, so the compared
 * atime was set moments ago and is newer than mtime (a filesystem that only
 * updates old or relatime-stale atimes is caught), then stat, touch, stat:
 * atime advanced on the same inode is a pass. An atime that did not move may
 * be the same timestamp tick: wait (waits.ts) and touch again. A filesystem
 * that sets mtime with atime (sshfs: SFTP cannot leave mtime alone) never
 * shows atime past mtime: there an atime that moved is the reference, and the
 * pass carries a warning that marking rewrites every chunk's mtime.
 * `--fixed-sleep` is the server's variant: one 1 s sleep, stat, touch, stat.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Finding } from '../findings.js';
import type { CallResult } from '../fs/dir.js';
import { type Stat, STATX } from '../fs/stat.js';
import { errnoCode } from '../errors.js';
import { atimeNotUpdated, inodeChanged, touchSetsMtime } from './check-findings.js';
import type { ChunkAt, MeasureContext } from './context.js';
import { touchFailure } from './marker.js';
import { snapshot } from './snapshot.js';
import { FIXED_SLEEP_MS, nextWait } from './waits.js';
import { FsError } from '../fs/errors.js';

/** How the deciding touch went: the finding that fails it, and the stats and host times around it. */
export interface Outcome {
  findings: Finding[];
  before?: Stat;
  after?: Stat;
  /** Host clock just before and after the deciding touch. */
  host?: [bigint, bigint];
}

export function measureTouches(ctx: MeasureContext, chunk: ChunkAt): Promise<Outcome> {
  return ctx.plan.mode === 'fixed-sleep' ? fixedSleep(ctx, chunk) : adaptive(ctx, chunk);
}

async function wait(ctx: MeasureContext, ms: number): Promise<void> {
  ctx.waits.push(ms);
  await sleep(ms, undefined, { signal: ctx.signal });
}

function statChunk(ctx: MeasureContext, chunk: ChunkAt): Stat {
  const stat = chunk.dir.stat(chunk.name);
  // Gone between two steps: something removes chunks while the check runs.
  if (!stat) throw new FsError('ENOENT', 'statx', chunk.path);
  return stat;
}

function notUpdated(ctx: MeasureContext, chunk: ChunkAt, before: Stat, after: Stat, what: string): Outcome {
  const facts = { before: snapshot(before), after: snapshot(after), waits: ctx.waits, mount: ctx.mount, known: ctx.plan.filesystem, store: ctx.plan.store, storeOwner: ctx.plan.storeOwner };
  return { findings: [atimeNotUpdated(chunk.path, what, facts)], before, after };
}

async function fixedSleep(ctx: MeasureContext, chunk: ChunkAt): Promise<Outcome> {
  await wait(ctx, FIXED_SLEEP_MS);
  return compare(ctx, chunk, { retryOnInodeChange: true, adaptiveWaits: false });
}

async function adaptive(ctx: MeasureContext, chunk: ChunkAt): Promise<Outcome> {
  const referenceWaits: number[] = [];
  for (let previous = statChunk(ctx, chunk); ; ) {
    const touched = ctx.touch(chunk);
    if (!touched.ok) return { findings: [touchFailure(ctx, chunk, touched)] };
    const stat = statChunk(ctx, chunk);
    if (stat.atimeNs > stat.mtimeNs || movedWithMtime(previous, stat)) break;
    previous = stat;
    const next = nextWait(referenceWaits, stat, Date.now());
    if (next === undefined) return notUpdated(ctx, chunk, stat, stat, 'atime never moved past mtime although the chunk was touched');
    referenceWaits.push(next);
    await wait(ctx, next);
  }
  return compare(ctx, chunk, { retryOnInodeChange: true, adaptiveWaits: true });
}

/** atime advanced and mtime changed with it: the filesystem rewrites mtime on an atime-only touch. */
function movedWithMtime(previous: Stat, now: Stat): boolean {
  return now.ino === previous.ino && now.atimeNs > previous.atimeNs && now.mtimeNs !== previous.mtimeNs;
}

/** The touch, after the fault point that tests use to fail or kill it exactly there. */
function faultThenTouch(ctx: MeasureContext, chunk: ChunkAt): CallResult {
  try {
    ctx.faults('between-stat-and-touch');
  } catch (error) {
    return { ok: false, code: errnoCode(error) ?? 'EIO' };
  }
  return ctx.touch(chunk);
}

async function compare(ctx: MeasureContext, chunk: ChunkAt, how: { retryOnInodeChange: boolean; adaptiveWaits: boolean }): Promise<Outcome> {
  const before = statChunk(ctx, chunk);
  const measureWaits: number[] = [];
  for (;;) {
    const hostBefore = ctx.clock();
    const touched = faultThenTouch(ctx, chunk);
    const hostAfter = ctx.clock();
    if (!touched.ok) return { findings: [touchFailure(ctx, chunk, touched)], before };
    const after = statChunk(ctx, chunk);
    if (after.ino !== before.ino) {
      if (how.retryOnInodeChange) return compare(ctx, chunk, { ...how, retryOnInodeChange: false });
      return { findings: [inodeChanged(chunk.path, snapshot(before), snapshot(after))], before, after };
    }
    // A filesystem that does not report atime at all cannot show a touch working.
    if (!(after.mask & STATX.ATIME)) return notUpdated(ctx, chunk, before, after, 'the filesystem does not report atime at all (statx gives no STATX_ATIME)');
    if (after.atimeNs > before.atimeNs) {
      const findings = after.mtimeNs !== before.mtimeNs ? [touchSetsMtime(chunk.path, snapshot(before), snapshot(after), ctx.plan.filesystem)] : [];
      return { findings, before, after, host: [hostBefore, hostAfter] };
    }
    const next = how.adaptiveWaits ? nextWait(measureWaits, after, Date.now()) : undefined;
    if (next === undefined) return notUpdated(ctx, chunk, before, after, 'utimensat(UTIME_NOW, UTIME_OMIT) succeeded but atime did not advance');
    measureWaits.push(next);
    await wait(ctx, next);
  }
}
