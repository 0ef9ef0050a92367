/**
 * The findings of the check that are not a diagnosis of a failed call
 * (those are in diagnose.ts): each is made here, in one place.
 */
import { type Finding, plural, shellQuote } from '../findings.js';
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
    message: `the existing zero chunk was ${existingSize === 0 ? 'empty' : 'larger than a valid one'} (${existingSize} bytes) and has been replaced`,
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
    message: `the existing zero chunk (${size} bytes) is corrupt: ${reason}. The server keeps a chunk of the same or a smaller size, so it stays, and every snapshot with an all-zero 4 MiB block restores wrong data`,
    path,
    remedy: `mv ${shellQuote(path)} ${shellQuote(`${path}.0.bad`)}   # the next backup or chunkguard check writes a valid one; then run a verify job on the datastore`,
    evidence: { size, reason },
  };
}

export function atimeNotUpdated(
  path: string,
  what: string,
  facts: { before: StatSnapshot; after: StatSnapshot; waits: number[]; mount: MountFacts | undefined; store: string },
): Finding {
  const waited = facts.waits.reduce((sum, wait) => sum + wait, 0);
  const { mount } = facts;
  return {
    code: 'ATIME_NOT_UPDATED',
    severity: 'error',
    message: `${what}, even after ${waited} ms: this filesystem ignores atime updates, and GC would delete live chunks (do not run GC on it)`,
    path,
    remedy: `move the datastore to a filesystem that honours utimensat (ext4, xfs, btrfs, zfs); for ${mount?.fsType ?? 'this filesystem'} at ${mount?.mountPoint ?? facts.store} check its atime/cache options`,
    evidence: { before: facts.before, after: facts.after, waits: [...facts.waits], fsType: mount?.fsType, mountOptions: mount?.mountOptions },
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

/** Why the check ran as who it ran as, when that matters for trusting the verdict. */
export function ranAs(
  touchedAs: { uid: number; gid: number; capFowner: boolean },
  context: { reason: string; gcUser: GcUserChoice; accounts: Accounts },
): Finding[] {
  if (context.reason === 'store owner' || context.reason === 'datastore.cfg') {
    return [
      {
        code: 'RAN_AS_STORE_OWNER',
        severity: 'info',
        message: `ran as uid ${context.accounts.describeUid(touchedAs.uid)}, the GC user: ${context.gcUser.reason}; root would pass through CAP_FOWNER where GC fails (pass --as-user to choose)`,
        evidence: { uid: touchedAs.uid, gid: touchedAs.gid, from: context.gcUser.from },
      },
    ];
  }
  if (touchedAs.uid === 0 && touchedAs.capFowner) {
    return [
      {
        code: 'RAN_WITH_CAP_FOWNER',
        severity: 'info',
        message: 'ran as root with CAP_FOWNER, which may touch any file: a GC running as another user can still fail; pass --as-user with the GC user',
      },
    ];
  }
  return [];
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
