/**
 * checkAtime(path, options): does the filesystem under this chunk store honour
 * atime updates for the user GC runs as? Resolves to a report; never prints.
 */
import { badInput, ChunkguardError, errnoCode } from '../errors.js';
import type { Finding } from '../findings.js';
import { loadNative } from '../native/libc.js';
import { chunksDir } from '../store/layout.js';
import { inspect, resolveDirectory } from '../store/safe-path.js';
import { Accounts } from '../system/passwd.js';
import { resolveUser, type UserInput, type UserSpec } from '../system/user-spec.js';
import { runCheckAs } from './as-user.js';
import type { CheckReport } from './report.js';
import { runCheck, summarize } from './run.js';

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
  /** Host wall clock in ns since the epoch (tests inject a skewed one). Only used in-process. */
  clock?: () => bigint;
}

interface Target {
  store: string;
  /** The root as validated: the check refuses a root replaced before it opens it. */
  identity: { dev: string; ino: string };
  owner: { uid: number; gid: number };
  /** The root was a symlink: resolved once, reported. */
  resolvedFrom?: string;
}

/** Validate the path before anything is written; every problem here is bad input. */
function resolveTarget(path: string, probe: boolean): Target {
  if (typeof path !== 'string' || path === '') throw badInput(String(path), 'no store path given');
  const { absolute: store, entry: target, resolvedFrom } = resolveDirectory(path);
  let ownerStat = target.stat!;
  if (!probe) {
    const chunks = inspect(chunksDir(store));
    if (chunks.kind === 'missing') {
      throw badInput(path, 'no .chunks directory: not a chunk store (use --probe to check a directory before creating a store there)');
    }
    // A .chunks that is a symlink or a file is reported as UNSAFE_PATH by the check.
    if (chunks.kind === 'directory') ownerStat = chunks.stat!;
  }
  return {
    store,
    identity: { dev: target.stat!.dev.toString(), ino: target.stat!.ino.toString() },
    owner: { uid: Number(ownerStat.uid), gid: Number(ownerStat.gid) },
    resolvedFrom,
  };
}

function resolveCutoff(value: number | undefined): number {
  if (value === undefined) return DEFAULT_CUTOFF_MINUTES;
  if (!Number.isInteger(value) || value < 1) throw badInput(`--cutoff-minutes ${value}`, 'expected a whole number of minutes, at least 1');
  return value;
}

function resolveRunAs(runAs: CheckOptions['runAs'], accounts: Accounts): UserSpec | undefined {
  return runAs === undefined ? undefined : resolveUser(runAs, accounts);
}

export async function checkAtime(path: string, options: CheckOptions = {}): Promise<CheckReport> {
  options.signal?.throwIfAborted();
  const probe = options.probe ?? false;
  const cutoffMinutes = resolveCutoff(options.cutoffMinutes);
  const accounts = new Accounts();
  const requested = resolveRunAs(options.runAs, accounts);
  const target = resolveTarget(path, probe);

  const euid = process.geteuid!();
  let runAs = requested;
  let reason: 'current user' | 'store owner' | 'requested' = requested ? 'requested' : 'current user';
  if (!requested && euid === 0 && target.owner.uid !== 0) {
    runAs = { ...target.owner, name: accounts.userByUid(target.owner.uid)?.name };
    reason = 'store owner';
  }
  // Another user's credentials mean a helper process (see as-user.ts).
  const otherUser = runAs !== undefined && runAs.uid !== euid ? runAs : undefined;
  if (otherUser && euid !== 0) {
    throw badInput(`--as-user ${options.runAs}`, `switching to uid ${otherUser.uid} needs root; this process runs as uid ${euid}`);
  }

  const base = {
    store: target.store,
    probe,
    mode: options.fixedSleep ? ('fixed-sleep' as const) : ('adaptive' as const),
    cutoffMinutes,
    storeOwner: target.owner,
    rootIdentity: target.identity,
    reason,
  };
  let report: CheckReport;
  // Fail on a platform without the binding before any work (the helper loads its own).
  if (!otherUser) loadNative();
  try {
    report =
      otherUser
        ? await runCheckAs(
            { uid: otherUser.uid, gid: otherUser.gid, groups: accounts.groupsOf(accounts.userByUid(otherUser.uid), otherUser.gid) },
            base,
            options.signal,
          )
        : await runCheck({ ...base, via: 'self', signal: options.signal, clock: options.clock });
  } catch (error) {
    if (options.signal?.aborted || errnoCode(error) === 'ABORT_ERR') throw new ChunkguardError('EABORT', 'the check was aborted', { cause: error });
    throw error;
  }

  const notes: Finding[] = [];
  if (reason === 'store owner') {
    notes.push({
      code: 'RAN_AS_STORE_OWNER',
      severity: 'info',
      message: `ran as uid ${accounts.describeUid(runAs!.uid)}, the owner of ${probe ? target.store : chunksDir(target.store)}, because GC runs as the store owner; root would pass through CAP_FOWNER where GC fails (pass --as-user to choose)`,
      evidence: { uid: runAs!.uid, gid: runAs!.gid },
    });
  } else if (report.touchedAs.uid === 0 && report.touchedAs.capFowner) {
    notes.push({
      code: 'RAN_WITH_CAP_FOWNER',
      severity: 'info',
      message: 'ran as root with CAP_FOWNER, which may touch any file: a GC running as another user can still fail; pass --as-user with the GC user',
    });
  }
  if (target.resolvedFrom) {
    notes.push({
      code: 'STORE_ROOT_SYMLINK',
      severity: 'info',
      message: `the store path ${target.resolvedFrom} is a symlink; checked its target ${target.store} (resolved once, nothing inside the store is followed)`,
      path: target.resolvedFrom,
    });
  }
  report.findings.unshift(...notes);
  report.summary = summarize(report, accounts);
  return report;
}
