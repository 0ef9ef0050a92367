/**
 * The atime measurement, with this process's credentials (the caller
 * arranges that those are the GC user's: in-process, or in the helper).
 * Steps, each returning a value or the finding that ends it:
 *   openWorkDir  (work-dir.ts)  the store root, or a probe directory in it;
 *   openPrefixDir, placeMarker  (marker.ts)  the zero chunk, inserted or kept and verified;
 *   measureTouches  (touches.ts)  reference touch, stat, touch, stat.
 * What no step diagnosed (EIO, an entry vanishing, a symlink met on the
 * way) becomes a finding here, in one place. The report is built by the caller.
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import type { Dir } from '../fs/dir.js';
import { chunkPath } from '../store/layout.js';
import { filesystemFacts, type MeasureContext, measureContext, type MeasurePlan } from './context.js';
import { diagnoseFailure } from './diagnose.js';
import { openPrefixDir, placeMarker } from './marker.js';
import type { Measurement } from './report.js';
import { snapshot } from './snapshot.js';
import { measureTouches, type Outcome } from './touches.js';
import { openWorkDir } from './work-dir.js';

/** Steps 2 and 3 in the open work directory; `opened` collects directories to close. */
async function markAndMeasure(ctx: MeasureContext, work: Dir, blob: Buffer, opened: Dir[]): Promise<Outcome> {
  const prefix = openPrefixDir(ctx, work, opened);
  if (!prefix.ok) return { findings: [prefix.finding] };
  const marker = await placeMarker(ctx, prefix.value, blob);
  if (!marker.ok) return { findings: [marker.finding] };
  return measureTouches(ctx, marker.value);
}

async function runSteps(ctx: MeasureContext, blob: Buffer): Promise<Outcome> {
  const opened: Dir[] = [];
  const work = openWorkDir(ctx);
  if (!work.ok) return { findings: [work.finding] };
  try {
    ctx.chunkPath = chunkPath(work.value.dir.path, zeroChunkDigest());
    return await markAndMeasure(ctx, work.value.dir, blob, opened);
  } finally {
    for (const dir of opened.reverse()) dir.close();
    work.value.close();
  }
}

export async function measureAtime(plan: MeasurePlan, blob: Buffer, signal?: AbortSignal): Promise<Measurement> {
  const ctx = measureContext(plan, signal);
  let outcome: Outcome;
  try {
    outcome = await runSteps(ctx, blob);
  } catch (error) {
    const finding = signal?.aborted ? undefined : diagnoseFailure(ctx.diagnosis, error, plan.store);
    if (!finding) throw error;
    outcome = { findings: [finding] };
  }
  const { diagnosis } = ctx;
  return {
    digest: zeroChunkDigest(),
    chunkPath: ctx.chunkPath,
    chunkAction: ctx.chunkAction,
    touchedAs: { uid: diagnosis.uid, gid: diagnosis.gid, groups: process.getgroups!(), capFowner: diagnosis.capFowner },
    filesystem: filesystemFacts(plan),
    before: outcome.before && snapshot(outcome.before),
    after: outcome.after && snapshot(outcome.after),
    host: outcome.host && [outcome.host[0].toString(), outcome.host[1].toString()],
    waits: ctx.waits,
    touches: ctx.touches,
    findings: [...ctx.notes, ...outcome.findings],
  };
}

