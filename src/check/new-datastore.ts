/**
 * Step 0 of a probe run by root: a datastore made the way the backup server
 * makes one, for the GC user to measure in. Root makes a probe directory in
 * the directory to probe (through its open descriptor), and in it `datastore/`
 * with `.chunks/` and the zero chunk's prefix directory, deepest first, each
 * given the server's mode (0755, 0750, 0750) and handed to the GC user
 * through its own new descriptor; nothing is looked up by path again. The
 * probe directory itself stays root's (0755, flocked), so the next run's sweep
 * knows it, and root removes it afterwards, also on a signal.
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import { Dir, type OwnerNotSet, setMode, setOwner } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { type Identity, toWire, type WireIdentity } from '../fs/identity.js';
import { CHUNKS_DIR, PREFIX_DIR_MODE } from '../store/layout.js';
import { makeProbeDir } from '../store/probe-dir.js';
import { DATASTORE_DIR } from '../store/remove-tree.js';
import type { Owner } from '../store/owners.js';
import { switchBackIfSwitched } from '../system/thread-credentials.js';

/** What the server gives a new datastore's base directory. */
const DATASTORE_MODE = 0o755;

export interface NewDatastore {
  /** The probe directory holding it (root's): a path under it is gone once the check ends. */
  probePath: string;
  /** The datastore's path, for the GC user's measurement, and its identity: a directory replaced since is refused. */
  path: string;
  identity: WireIdentity;
  /** How many probe directories of killed runs were removed first. */
  staleRemoved: number;
  /** Set when the filesystem kept its own owner (no per-file owners: exfat, vfat, ntfs-3g). */
  ownerNotSet?: OwnerNotSet;
  /** Removes everything made here, as root, once. */
  remove(): void;
}

/** A new directory in `parent` (0700 until handed over); one that was there already is not ours to hand over. */
function madeIn(parent: Dir, name: string): Dir {
  const { dir, created } = parent.openChild(name, { mode: 0o700 });
  if (created) return dir;
  dir.close();
  throw FsError.unsafe(parent.pathOf(name), 'other', 'directory', 'was there before chunkguard made it');
}

/** Give `dir` its mode and `owner`; the first refused chown is kept in `notSet`. */
function handOver(dir: Dir, mode: number, owner: Owner, notSet: OwnerNotSet[]): void {
  setMode(dir.fd, mode, dir.path);
  const refused = setOwner(dir.fd, owner, dir.path);
  if (refused) notSet.push(refused);
}

/**
 * Make the datastore in `target` (validated as `identity`) for `owner`. Throws an FsError
 * when root cannot (a read-only or full filesystem): the caller measures as root then, and
 * root's own probe says why.
 */
export function makeNewDatastore(target: string, identity: Identity, owner: Owner, options: { ownersKept: boolean }): NewDatastore {
  const root = Dir.open(target, identity);
  const opened: Dir[] = [];
  let probe;
  try {
    // An exit handler may run while this thread is switched to the GC user: root removes what root made.
    probe = makeProbeDir(root, { beforeRemove: switchBackIfSwitched, ownersKept: options.ownersKept });
    setMode(probe.dir.fd, DATASTORE_MODE, probe.dir.path);
    const notSet: OwnerNotSet[] = [];
    const base = madeIn(probe.dir, DATASTORE_DIR);
    opened.push(base);
    const chunks = madeIn(base, CHUNKS_DIR);
    opened.push(chunks);
    const prefix = madeIn(chunks, zeroChunkDigest().slice(0, 4));
    opened.push(prefix);
    // Deepest first, the base directory last: until then the GC user cannot enter it.
    handOver(prefix, PREFIX_DIR_MODE, owner, notSet);
    handOver(chunks, PREFIX_DIR_MODE, owner, notSet);
    handOver(base, DATASTORE_MODE, owner, notSet);
    const made = probe;
    return {
      probePath: probe.dir.path,
      path: base.path,
      identity: toWire(base.statSelf()),
      staleRemoved: probe.staleRemoved,
      ...(notSet.length ? { ownerNotSet: notSet[0] } : {}),
      remove: () => {
        made.remove();
        root.close();
      },
    };
  } catch (error) {
    probe?.remove();
    root.close();
    throw error;
  } finally {
    for (const dir of opened.reverse()) dir.close();
  }
}
