/**
 * Step 1: the directory the check works in, held open. The store root,
 * opened without following a symlink and compared with the identity it was
 * validated with; with --probe, a fresh `.chunkguard-probe-…` directory
 * inside it (0700, flocked while in use, removed afterwards, also on a
 * signal), with an empty `.chunks` of its own.
 */
import { randomBytes } from 'node:crypto';
import { Dir } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { fromWire } from '../fs/identity.js';
import { onExitRemove } from '../store/cleanup.js';
import { CHUNKS_DIR, PREFIX_DIR_MODE } from '../store/layout.js';
import { leftoverTag, lockedAndStillNamed, PROBE_PREFIX, sweepStaleProbes } from '../store/leftovers.js';
import { removeTree } from '../store/remove-tree.js';
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
  // A probe directory a killed run left here goes first.
  const staleProbes = sweepStaleProbes(root);
  if (staleProbes > 0) ctx.notes.push(staleLeftovers(staleProbes, 'probe directory', root.path));
  const name = `${PROBE_PREFIX}${leftoverTag()}-${randomBytes(4).toString('hex')}`;
  const made = root.mkdir(name, 0o700);
  if (!made.ok) return fail(diagnoseWrite(ctx.diagnosis, root.path, new FsError(made.code, 'mkdir', root.pathOf(name))));
  // The probe goes while the root is still open: its removal is relative to it.
  const forget = onExitRemove(() => removeTree(root, name));
  let probe: Dir | undefined;
  const close = (): void => {
    probe?.close();
    removeTree(root, name);
    forget();
    root.close();
  };
  try {
    probe = root.openChild(name).dir;
    // The lock marks the probe live for a sweeping run; released when the descriptor closes.
    if (!lockedAndStillNamed(root, name, probe.fd)) {
      close();
      return fail(diagnoseWrite(ctx.diagnosis, root.path, new FsError('EBUSY', 'flock', probe.path)));
    }
    probe.openChild(CHUNKS_DIR, { mode: PREFIX_DIR_MODE }).dir.close();
    return { ok: true, value: { dir: probe, close } };
  } catch (error) {
    const finding = probe ? diagnoseWrite(ctx.diagnosis, probe.path, error) : undefined;
    close();
    if (finding) return fail(finding);
    throw error;
  }
}
