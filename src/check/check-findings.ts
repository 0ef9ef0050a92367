/**
 * The findings of the check that are not a diagnosis of a failed call
 * (those are in diagnose.ts): each is made here, in one place.
 */
import { type Finding, plural, shellQuote } from '../findings.js';
import type { OwnerNotSet } from '../fs/dir.js';
import { atimeRemedy, type FilesystemKnowledge, ownerMountOptions } from '../system/filesystems.js';
import type { MountFacts } from '../system/mounts.js';
import type { GcUserChoice } from '../system/gc-user.js';
import type { Accounts } from '../system/passwd.js';
import type { StatSnapshot } from './snapshot.js';

export function staleLeftovers(count: number, what: 'probe directory' | 'temp file', where: string): Finding {
  const leftovers = what === 'probe directory' ? plural(count, what, 'probe directories') : plural(count, what);
  return {
    code: 'STALE_TEMP_REMOVED',
    severity: 'info',
    message: `removed ${leftovers} a killed chunkguard run left in ${where}`,
    path: where,
    evidence: { count },
  };
}

export function prefixDirCreated(path: string): Finding {
  return { code: 'PREFIX_DIR_CREATED', severity: 'info', message: `the prefix directory ${path} was missing and has been created (mode 0750)`, path };
}

export function chunkReplaced(path: string, existingSize: number, newSize: number): Finding {
  return {
    code: 'CHUNK_REPLACED',
    severity: 'warning',
    message: `the existing zero chunk was ${existingSize === 0 ? 'empty' : 'larger than a valid one'} (${plural(existingSize, 'byte')}) and has been replaced`,
    path,
    evidence: { existingSize, newSize },
  };
}

export function chunkUnverified(path: string, why: string, evidence?: Record<string, unknown>): Finding {
  return { code: 'CHUNK_UNVERIFIED', severity: 'info', message: why, path, ...(evidence ? { evidence } : {}) };
}

export function chunkCorrupt(path: string, size: number, reason: string): Finding {
  return {
    code: 'CHUNK_CORRUPT',
    severity: 'error',
    message: `the existing zero chunk (${plural(size, 'byte')}) is corrupt: ${reason}. The server keeps a chunk of the same or a smaller size, so it stays, and every snapshot with an all-zero 4 MiB block restores wrong data`,
    path,
    remedy: `mv ${shellQuote(path)} ${shellQuote(`${path}.0.bad`)}   # the next backup or chunkguard check writes a valid one; then run a verify job on the datastore`,
    evidence: { size, reason },
  };
}

export function atimeNotUpdated(
  path: string,
  what: string,
  facts: { before: StatSnapshot; after: StatSnapshot; waits: number[]; mount: MountFacts | undefined; known: FilesystemKnowledge | undefined; store: string; storeOwner: { uid: number; gid: number } },
): Finding {
  const waited = facts.waits.reduce((sum, wait) => sum + wait, 0);
  const { mount, known } = facts;
  const which = known ? `${known.name} (${mount?.fsType ?? 'unknown type'})` : 'this filesystem';
  return {
    code: 'ATIME_NOT_UPDATED',
    severity: 'error',
    message: `${what}, even after ${waited} ms: ${which} ignores atime updates, and GC would delete live chunks (do not run GC on it; not supported for atime-based GC)`,
    path,
    remedy:
      atimeRemedy(known, mount, facts.store, facts.storeOwner) ??
      `move the datastore to a filesystem that honours atime-only updates (ext4, xfs, btrfs, ZFS); for ${mount?.fsType ?? 'this filesystem'} at ${mount?.mountPoint ?? facts.store} check its atime and attribute-cache options`,
    evidence: { before: facts.before, after: facts.after, waits: [...facts.waits], fsType: mount?.fsType, mountOptions: mount?.mountOptions, filesystem: known?.name },
  };
}

/** The touch advanced atime (GC's marking works) but also set mtime: the filesystem cannot leave mtime alone. */
export function touchSetsMtime(path: string, before: StatSnapshot, after: StatSnapshot, known: FilesystemKnowledge | undefined): Finding {
  return {
    code: 'TOUCH_SETS_MTIME',
    severity: 'warning',
    message: `the atime-only touch advanced atime (GC marking works) but ${known ? known.name : 'the filesystem'} also set mtime to now: every GC run rewrites every live chunk's mtime, so mtime no longer says when a chunk was written (backup and sync tools that compare mtimes see every chunk as changed)`,
    path,
    evidence: { before: { atimeNs: before.atimeNs, mtimeNs: before.mtimeNs }, after: { atimeNs: after.atimeNs, mtimeNs: after.mtimeNs }, filesystem: known?.name },
  };
}

/**
 * Root asked for an owner and the filesystem refused it (exfat, vfat) or
 * returned 0 and kept its own (ntfs-3g, rclone, smbnetfs): every file has the
 * owner the mount gives it. A finding of its own, not a write failure.
 */
export function noFileOwners(path: string, outcome: OwnerNotSet, wanted: { uid: number; gid: number }, context: { known: FilesystemKnowledge | undefined; mount: MountFacts | undefined }): Finding {
  const { known, mount } = context;
  if (mount?.fsType.startsWith('nfs')) {
    return {
      code: 'NO_FILE_OWNERS',
      severity: 'warning',
      message: `root's chown on ${mount.mountPoint} (${mount.fsType}) ${outcome.ignored ? 'changed nothing' : `failed with ${outcome.code}`}: the NFS server squashes root (root_squash maps it to nobody, 65534), so a chunk root writes cannot be given to uid ${wanted.uid}`,
      path,
      remedy: `run chunkguard and GC as uid ${wanted.uid} on this share, or export it with no_root_squash for this client`,
      evidence: { errno: outcome.ignored ? undefined : outcome.code, shown: outcome.ignored ? outcome.shown : undefined, wanted, fsType: mount.fsType },
    };
  }
  const how = outcome.ignored ? `accepted a chown and kept owner ${outcome.shown?.uid}:${outcome.shown?.gid}` : `refuses chown (${outcome.code})`;
  const options = ownerMountOptions(known, wanted);
  return {
    code: 'NO_FILE_OWNERS',
    severity: 'warning',
    message: `${known?.name ?? mount?.fsType ?? 'the filesystem'} at ${mount?.mountPoint ?? path} has no per-file owners: it ${how}, so a file cannot be given to uid ${wanted.uid}; every file shows the owner the mount options set`,
    path,
    remedy: `mount ${mount?.mountPoint ? shellQuote(mount.mountPoint) : 'it'} again with ${options} so every file shows the GC user as owner (a chown cannot help here)`,
    evidence: { errno: outcome.ignored ? undefined : outcome.code, shown: outcome.ignored ? outcome.shown : undefined, wanted, fsType: mount?.fsType, filesystem: known?.name },
  };
}

export function inodeChanged(path: string, before: StatSnapshot, after: StatSnapshot): Finding {
  return {
    code: 'INODE_CHANGED',
    severity: 'error',
    message: `the chunk was replaced (inode ${before.ino} became ${after.ino}) during the check, twice: something else rewrites chunks while the check runs`,
    path,
    evidence: { before, after },
  };
}

/** A filesystem clock off by more than a minute: a warning, an error when a lag reaches the GC cutoff. */
export function clockSkew(
  skewMs: number,
  after: StatSnapshot,
  host: [string, string],
  context: { cutoffMinutes: number; chunkPath: string },
  mount: MountFacts | undefined,
): Finding[] {
  const absMs = Math.abs(skewMs);
  if (absMs <= 60_000) return [];
  const lagging = skewMs < 0;
  const { cutoffMinutes } = context;
  const fatal = lagging && absMs >= cutoffMinutes * 60_000;
  const minutes = (absMs / 60_000).toFixed(1);
  const consequence = fatal
    ? `, beyond the GC cutoff of ${cutoffMinutes} minutes: GC would delete chunks it just marked`
    : lagging
      ? `, which eats into the GC cutoff margin of ${cutoffMinutes} minutes`
      : ', so unused chunks are kept longer';
  return [
    {
      code: 'CLOCK_SKEW',
      severity: fatal ? 'error' : 'warning',
      message: `the filesystem clock is ${minutes} minutes ${lagging ? 'behind' : 'ahead of'} this host: a chunk touched now gets an atime ${minutes} minutes ${lagging ? 'in the past' : 'in the future'}${consequence}`,
      path: context.chunkPath,
      remedy: `synchronise the clocks of this host and of the server behind ${mount?.source ?? 'the filesystem'} (chronyc tracking; timedatectl set-ntp true)`,
      evidence: { skewMs, atimeNs: after.atimeNs, hostNs: host[0], cutoffMinutes },
    },
  ];
}

/** Who touched, when that matters for trusting the verdict: CAP_FOWNER hides what GC may not do. */
export function ranAs(
  touchedAs: { uid: number; gid: number; capFowner: boolean },
  context: { reason: string; gcUser: GcUserChoice; accounts: Accounts; store: string; probe: boolean; asRoot?: { touchedAs: { uid: number; capFowner: boolean } } },
): Finding[] {
  const { accounts, gcUser } = context;
  const who = (uid: number) => `uid ${accounts.describeUid(uid)}`;
  const findings: Finding[] = [];
  if (touchedAs.capFowner) {
    const backup = accounts.userByName('backup');
    findings.push({
      code: 'RAN_WITH_CAP_FOWNER',
      severity: 'warning',
      message: `touched as ${who(touchedAs.uid)} with CAP_FOWNER, which may change the times of any file whatever its owner: an owner or permission problem the GC user would hit (a chunk root owns stops GC with EPERM, seed 002) cannot show in this verdict`,
      ...(backup && gcUser.uid !== backup.uid ? { remedy: `chunkguard check ${context.probe ? '--probe ' : ''}${shellQuote(context.store)} --as-user backup   # as the user GC runs as` } : {}),
      evidence: { uid: touchedAs.uid, gid: touchedAs.gid, gcUser: { uid: gcUser.uid, from: gcUser.from } },
    });
  } else if (!context.asRoot && (context.reason === 'store owner' || context.reason === 'datastore.cfg' || context.reason === 'new datastore')) {
    // (When the GC user never got to the touch, the warning below says whose verdict it is.)
    findings.push({
      code: 'RAN_AS_STORE_OWNER',
      severity: 'info',
      message: `touched as ${who(touchedAs.uid)}, the user GC runs as (${gcUser.reason}), without CAP_FOWNER: what GC may not do shows here as it would in GC (--as-user chooses another user)`,
      evidence: { uid: touchedAs.uid, gid: touchedAs.gid, from: gcUser.from },
    });
  }
  if (context.asRoot) {
    findings.push({
      code: 'RAN_WITH_CAP_FOWNER',
      severity: 'warning',
      message: `${who(touchedAs.uid)} could not get as far as the touch (see above), so the filesystem was also measured as ${who(context.asRoot.touchedAs.uid)}: that atime verdict is the filesystem's, once the GC user can get there; root's CAP_FOWNER hides any other owner or permission problem`,
      evidence: { uid: context.asRoot.touchedAs.uid, capFowner: context.asRoot.touchedAs.capFowner },
    });
  }
  return findings;
}

/** A user other than root cannot switch to the GC user: its verdict is its own, not GC's. */
export function notAsGcUser(gcUser: GcUserChoice, accounts: Accounts, store: string, probe: boolean): Finding {
  const euid = process.geteuid!();
  return {
    code: 'NOT_GC_USER',
    severity: 'warning',
    message: `checked as uid ${accounts.describeUid(euid)}, but GC runs as uid ${accounts.describeUid(gcUser.uid)} (${gcUser.reason}); only root can switch users, so this verdict is for uid ${euid}, not for GC, and it was measured in a probe directory removed afterwards (nothing of uid ${euid}'s is left in the store)`,
    remedy: `sudo chunkguard check ${probe ? '--probe ' : ''}${shellQuote(store)}   # as root it touches as uid ${gcUser.uid}`,
    evidence: { euid, gcUser: { uid: gcUser.uid, gid: gcUser.gid, from: gcUser.from } },
  };
}

export function storeRootSymlink(link: string, target: string): Finding {
  return {
    code: 'STORE_ROOT_SYMLINK',
    severity: 'info',
    message: `the store path ${link} is a symlink; checked its target ${target} (resolved once, nothing inside the store is followed)`,
    path: link,
  };
}
