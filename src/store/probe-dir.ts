/**
 * A probe directory: `.chunkguard-probe-<pid>-n<pidns>-<hex>` made inside an
 * open directory (mode 0700), flocked while in use so a sweeping run leaves it
 * alone, and removed (relative to the open parent, never through a path looked
 * up again) when closed, on a signal or on exit. Probe directories a killed run
 * left are swept first.
 */
import { crypto } from '../runtime/builtins.js';
import { Dir } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { onExitRemove } from './cleanup.js';
import { leftoverTag, lockedAndStillNamed, PROBE_PREFIX, sweepStaleProbes } from './leftovers.js';
import { removeProbe } from './remove-tree.js';

export interface ProbeDir {
  /** The probe directory, held open and locked. */
  dir: Dir;
  /** How many probe directories of killed runs were removed first. */
  staleRemoved: number;
  /** Removes the probe directory, once; the parent stays open (its owner closes it). */
  remove(): void;
}

/**
 * Make and open a probe directory in `parent`. Throws an FsError (syscall
 * `mkdir`, `open` or `flock`) when it cannot: the caller diagnoses it.
 * `beforeRemove` runs first on every removal (a thread switched to another
 * user switches back, so the probe goes with the rights that made it);
 * `ownersKept` says the filesystem keeps per-file owners (then the new
 * directory must be this process's).
 */
export function makeProbeDir(parent: Dir, options: { beforeRemove?: () => void; ownersKept?: boolean } = {}): ProbeDir {
  const { beforeRemove = () => undefined, ownersKept = false } = options;
  const staleRemoved = sweepStaleProbes(parent);
  const name = `${PROBE_PREFIX}${leftoverTag()}-${crypto().randomBytes(4).toString('hex')}`;
  let probe: Dir | undefined;
  let ours = false;
  let removed = false;
  // Through the held descriptor, and only what this process made and verified: a name swapped
  // for someone else's directory is theirs, and stays.
  const removeOnExit = (): void => {
    beforeRemove();
    if (ours && probe) removeProbe(parent, name, probe);
  };
  // Registered before the directory exists: until then a signal kills the process outright
  // (no handler yet); from then on it is handled only where this thread yields, after this
  // synchronous sequence has made the directory ours or removed it.
  const forget = onExitRemove(removeOnExit);
  const made = parent.mkdir(name, 0o700);
  if (!made.ok) {
    forget();
    throw new FsError(made.code, 'mkdir', parent.pathOf(name));
  }
  const remove = (): void => {
    if (removed) return;
    removed = true;
    removeOnExit();
    probe?.close();
    forget();
  };
  try {
    probe = parent.openChild(name).dir;
    // What was opened is what this process made: a name swapped meanwhile (a parent others can
    // write) is refused. Where files do not keep the owner that made them (exfat, ntfs-3g, an NFS
    // server squashing root) the owner says nothing, and only emptiness is checked.
    const stat = probe.statSelf();
    if ((ownersKept && stat.uid !== process.geteuid!()) || probe.names().length > 0) throw FsError.unsafe(probe.path, 'other', 'directory', 'was replaced by another directory while chunkguard made it');
    ours = true;
    // The lock marks the probe live for a sweeping run; released when the descriptor closes.
    if (!lockedAndStillNamed(parent, name, probe.fd)) throw new FsError('EBUSY', 'flock', probe.path);
    return { dir: probe, staleRemoved, remove };
  } catch (error) {
    remove();
    throw error;
  }
}
