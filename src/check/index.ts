/**
 * checkAtime(path, options): does the filesystem under this chunk store honour
 * atime updates for the user GC runs as? Resolves to a report; never prints.
 * Validates everything before anything is written, measures in this process
 * or, as another user, in a helper process, and builds the report once here.
 */
import { zeroChunkBlobShared } from '../chunk/zero-chunk.js';
import { badInput, badOption, publicCall } from '../errors.js';
import { toWire } from '../fs/identity.js';
import { inspectOrBadInput, resolveDirectory } from '../fs/safe-path.js';
import { libc } from '../native/libc.js';
import { chunksDir } from '../store/layout.js';
import { Accounts } from '../system/passwd.js';
import { namesGid, resolveUser, type UserInput, type UserSpec } from '../system/user-spec.js';
import { measureAs } from './as-user.js';
import type { MeasurePlan } from './context.js';
import { measureAtime } from './measure.js';
import { buildReport, type CheckReport, type TouchIdentity } from './report.js';

export const DEFAULT_CUTOFF_MINUTES = 24 * 60 + 5;

export interface CheckOptions {
  /** Check a directory that is not a store yet, in a temporary directory removed afterwards. */
  probe?: boolean;
  /**
   * The user GC runs as: a name, a uid, `uid:gid`, or `{ uid, gid }`.
   * Default: this process's user; as root, the owner of `.chunks` (of the
   * directory, with `probe`) when that is not root.
   */
  runAs?: UserInput;
  /** The backup server's variant: sleep 1 s once instead of adaptive waits. */
  fixedSleep?: boolean;
  /** GC deletes chunks whose atime is older than this; a lagging clock beyond it is an error. Default 1445. */
  cutoffMinutes?: number;
  signal?: AbortSignal;
}

/** Test seams, not part of the public API: added to the host clock (also in the helper) to test skew. */
export interface CheckHooks {
  clockOffsetNs?: bigint;
}

interface Target {
  store: string;
  stat: { dev: bigint; ino: bigint; uid: number; gid: number };
  /** The owner GC is expected to be: of .chunks, else (probe) of the directory. */
  owner: { uid: number; gid: number };
  ownerOf: string;
  resolvedFrom?: string;
}

/** Validate the path before anything is written; every problem here is bad input. */
function resolveTarget(path: string, probe: boolean): Target {
  if (typeof path !== 'string' || path === '') throw badInput(String(path), 'no store path given');
  const { absolute: store, entry, resolvedFrom } = resolveDirectory(path);
  const root = entry.stat!;
  const stat = { dev: root.dev, ino: root.ino, uid: Number(root.uid), gid: Number(root.gid) };
  let owner = { uid: stat.uid, gid: stat.gid };
  let ownerOf = store;
  if (!probe) {
    const chunks = inspectOrBadInput(path, chunksDir(store));
    if (chunks.kind === 'missing') {
      throw badInput(path, 'no .chunks directory: not a chunk store (use --probe to check a directory before creating a store there)');
    }
    // A .chunks that is a symlink or a file is reported as UNSAFE_PATH by the check.
    if (chunks.kind === 'directory') {
      owner = { uid: Number(chunks.stat!.uid), gid: Number(chunks.stat!.gid) };
      ownerOf = chunksDir(store);
    }
  }
  return { store, stat, owner, ownerOf, resolvedFrom };
}

function resolveCutoff(value: unknown): number {
  if (value === undefined) return DEFAULT_CUTOFF_MINUTES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw badOption('cutoffMinutes', value, 'expected a whole number of minutes, at least 1');
  return value;
}

/** Who touches: runAs, else this process's user, else (root over a store that is not root's) the store owner. */
function chooseUser(requested: UserSpec | undefined, target: Target, accounts: Accounts): { user?: UserSpec; reason: TouchIdentity['reason'] } {
  if (requested) return { user: requested, reason: 'requested' };
  if (process.geteuid!() === 0 && target.owner.uid !== 0) {
    return { user: { ...target.owner, name: accounts.userByUid(target.owner.uid)?.name }, reason: 'store owner' };
  }
  return { reason: 'current user' };
}

async function check(path: string, options: CheckOptions, hooks: CheckHooks): Promise<CheckReport> {
  const startedMs = performance.now();
  const probe = options.probe === true;
  const cutoffMinutes = resolveCutoff(options.cutoffMinutes);
  const accounts = new Accounts();
  const requested = options.runAs === undefined ? undefined : resolveUser(options.runAs, accounts, 'runAs');
  const target = resolveTarget(path, probe);
  const { user, reason } = chooseUser(requested, target, accounts);
  const euid = process.geteuid!();
  const egid = process.getegid!();
  // Another user's credentials mean a helper process (see as-user.ts); a gid only counts when it was given.
  const otherGid = options.runAs !== undefined && namesGid(options.runAs) && user!.gid !== egid;
  const other = user !== undefined && (user.uid !== euid || otherGid) ? user : undefined;
  if (other && euid !== 0) {
    const what = other.uid !== euid ? `uid ${other.uid}` : `gid ${other.gid}`;
    const self = other.uid !== euid ? `uid ${euid}` : `uid ${euid} gid ${egid}`;
    throw badOption('runAs', options.runAs, `switching to ${what} needs root; this process runs as ${self}`);
  }
  if (!other) libc(); // fail on an unsupported platform before any work (the helper loads its own)
  const plan: MeasurePlan = {
    store: target.store,
    probe,
    mode: options.fixedSleep ? 'fixed-sleep' : 'adaptive',
    storeOwner: target.owner,
    rootIdentity: toWire(target.stat),
    clockOffsetNs: hooks.clockOffsetNs?.toString(),
  };
  // Building the blob (zstd) is the slowest step: in-process it starts now and overlaps the
  // first steps; for a helper only once the child is spawned (zstd's start-up is synchronous).
  const { measurement, via } = other
    ? await measureAs({ uid: other.uid, gid: other.gid, groups: accounts.groupsOf(accounts.userByUid(other.uid), other.gid) }, plan, zeroChunkBlobShared, options.signal)
    : { measurement: await measureAtime(plan, quietly(zeroChunkBlobShared()), options.signal), via: 'self' as const };
  return buildReport(measurement, { ...plan, cutoffMinutes, reason, via, ownerOf: target.ownerOf, resolvedFrom: target.resolvedFrom, startedMs, accounts });
}

/** A promise whose rejection is handled where it is awaited, not reported as unhandled meanwhile. */
function quietly<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** checkAtime with test seams (not exported from the package). */
export function checkAtimeWith(path: string, options: CheckOptions = {}, hooks: CheckHooks = {}): Promise<CheckReport> {
  return publicCall('the check', options?.signal, () => check(path, options ?? {}, hooks));
}

export function checkAtime(path: string, options: CheckOptions = {}): Promise<CheckReport> {
  return checkAtimeWith(path, options);
}
