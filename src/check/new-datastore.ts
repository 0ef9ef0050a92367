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
import { fchmodSync } from 'node:fs';
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import { errnoCode } from '../errors.js';
import { Dir, type OwnerNotSet, setOwner } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { type Identity, toWire, type WireIdentity } from '../fs/identity.js';
import { CHUNKS_DIR, PREFIX_DIR_MODE } from '../store/layout.js';
import { makeProbeDir } from '../store/probe-dir.js';
import type { Owner } from '../store/owners.js';
import { switchBackIfSwitched } from '../system/thread-credentials.js';

/** What the server gives a new datastore's base directory. */
const DATASTORE_MODE = 0o755;
export const DATASTORE_DIR = 'datastore';

export interface NewDatastore {
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

/** errnos of a chmod on a filesystem that keeps no modes of its own (fusefat: ENOSYS). */
const NO_MODES = new Set(['ENOSYS', 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EINVAL']);

/** The mode whatever the umask; where the filesystem keeps none, what it shows stays (the GC user's measurement says what that allows). */
function setMode(dir: Dir, mode: number): void {
  try {
    fchmodSync(dir.fd, mode);
  } catch (error) {
    if (!NO_MODES.has(errnoCode(error) ?? '')) throw new FsError(errnoCode(error) ?? 'EIO', 'fchmod', dir.path);
  }
}

/** A directory made in `parent` with `mode` (whatever the umask) and given to `owner`; the first refused chown is kept in `notSet`. */
function handedOver(parent: Dir, name: string, mode: number, owner: Owner, notSet: OwnerNotSet[]): Dir {
  const { dir } = parent.openChild(name, { mode });
  try {
    setMode(dir, mode);
    const refused = setOwner(dir.fd, owner, dir.path);
    if (refused) notSet.push(refused);
    return dir;
  } catch (error) {
    dir.close();
    throw error;
  }
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
    setMode(probe.dir, DATASTORE_MODE);
    const notSet: OwnerNotSet[] = [];
    // The base directory is handed over last: until then the GC user cannot enter it.
    const base = probe.dir.openChild(DATASTORE_DIR, { mode: 0o700 }).dir;
    opened.push(base);
    const chunks = handedOver(base, CHUNKS_DIR, PREFIX_DIR_MODE, owner, notSet);
    opened.push(chunks);
    opened.push(handedOver(chunks, zeroChunkDigest().slice(0, 4), PREFIX_DIR_MODE, owner, notSet));
    setMode(base, DATASTORE_MODE);
    const refused = setOwner(base.fd, owner, base.path);
    if (refused) notSet.push(refused);
    const made = probe;
    return {
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
