/**
 * Step 1: the directory the check works in, held open. The store root,
 * opened without following a symlink and compared with the identity it was
 * validated with; with --probe, a fresh `.chunkguard-probe-…` directory
 * inside it (0700, flocked while in use, removed afterwards, also on a
 * signal), with an empty `.chunks` of its own.
 */
import { Dir } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { fromWire } from '../fs/identity.js';
import { CHUNKS_DIR, PREFIX_DIR_MODE } from '../store/layout.js';
import { makeProbeDir, type ProbeDir } from '../store/probe-dir.js';
import { ownersShowCreator } from '../system/filesystems.js';
import { staleLeftovers } from './check-findings.js';
import { fail, type MeasureContext, type Step } from './context.js';
import { diagnoseWrite } from './diagnose.js';

export interface WorkDir {
  /** The store root, or the probe directory. */
  dir: Dir;
  /** Removes the probe directory (if any) and closes everything, once. */
  close(): void;
}

export function openWorkDir(ctx: MeasureContext): Step<WorkDir> {
  const { plan } = ctx;
  const root = Dir.open(plan.store, fromWire(plan.rootIdentity));
  if (!plan.probe) return { ok: true, value: { dir: root, close: () => root.close() } };
  try {
    const probe = openProbe(ctx, root);
    if (!probe.ok) root.close();
    return probe;
  } catch (error) {
    root.close();
    throw error;
  }
}

function openProbe(ctx: MeasureContext, root: Dir): Step<WorkDir> {
  let probe: ProbeDir;
  try {
    probe = makeProbeDir(root, { ownersKept: ownersShowCreator(ctx.plan.filesystem, ctx.plan.mount?.fsType) });
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    return fail(diagnoseWrite(ctx.diagnosis, root.path, error));
  }
  if (probe.staleRemoved > 0) ctx.notes.push(staleLeftovers(probe.staleRemoved, 'probe directory', root.path));
  const close = (): void => {
    probe.remove();
    root.close();
  };
  try {
    probe.dir.openChild(CHUNKS_DIR, { mode: PREFIX_DIR_MODE }).dir.close();
    return { ok: true, value: { dir: probe.dir, close } };
  } catch (error) {
    const finding = diagnoseWrite(ctx.diagnosis, probe.dir.path, error);
    close();
    return fail(finding);
  }
}
