/**
 * checkAtime(path, options): does the filesystem under this chunk store honour
 * atime updates for the user GC runs as? Resolves to a report; never prints.
 * Validates everything before anything is written, measures in this process
 * or, as another user, in a helper process, and builds the report once here.
 */
import { nowMs } from '../runtime/builtins.js';
import { access } from 'node:fs';
import { zeroChunkBlobShared } from '../chunk/zero-chunk.js';
import { nodeZlibCodec, zstdCodec } from '../chunk/zstd.js';
import { badInput, badOption, publicCall } from '../errors.js';
import { type FailOn, failOnOption } from '../findings.js';
import { toWire, unsignedIdentity } from '../fs/identity.js';
import { inspectOrBadInput, resolveDirectory } from '../fs/safe-path.js';
import { libc } from '../native/libc.js';
import { chunksDir } from '../store/layout.js';
import { filesystemAt, ownersOnFilesystem } from '../system/filesystems.js';
import { Accounts } from '../system/passwd.js';
import { namesGid, resolveUser, type UserInput, uidsWithoutAccount } from '../system/user-spec.js';
import { type GcUserChoice, gcUserFor, type GcUserSource, inconsistentOwners, newDatastoreUser } from '../system/gc-user.js';
import { notAsGcUser } from './check-findings.js';
import { probeAsNewDatastore } from './probe-as-gc-user.js';
import { measureAs } from './as-user.js';
import type { MeasurePlan } from './context.js';
import { keptChunkNeedsDecoder } from './marker.js';
import { measureAtime } from './measure.js';
import { buildReport, type CheckReport, type Measurement, type TouchIdentity } from './report.js';
import { switchThreadTo, type ThreadCredentials } from '../system/thread-credentials.js';

export const DEFAULT_CUTOFF_MINUTES = 24 * 60 + 5;

export interface CheckOptions {
  /** Check a directory that is not a store yet, in a temporary directory removed afterwards. */
  probe?: boolean;
  /**
   * The user GC runs as: a name, a uid, `uid:gid`, or `{ uid, gid }`.
   * Default: the server's `backup` user for a datastore in its datastore.cfg,
   * else the owner of the store's contents (never root while they belong to
   * someone else), see docs/design.md. Only root can switch to it.
   */
  runAs?: UserInput;
  /** The backup server's variant: sleep 1 s once instead of adaptive waits. */
  fixedSleep?: boolean;
  /** GC deletes chunks whose atime is older than this; a lagging clock beyond it is an error. Default 1445. */
  cutoffMinutes?: number;
  /** `warning`: a warning fails the check too (`ok` false), for a CI gate. Default `error`. */
  failOn?: FailOn;
  signal?: AbortSignal;
}

/** Test seams, not part of the public API: added to the host clock (also in the helper) to test skew. */
export interface CheckHooks {
  clockOffsetNs?: bigint;
  /**
   * The CLI's own: measure as the GC user on this thread, switched with per-thread syscalls,
   * instead of in a helper process. Only where no other JavaScript can run meanwhile (the
   * measurement awaits its waits): a library caller's code would run as the GC user.
   */
  switchThread?: boolean;
  /** The backup server's datastore list (default /etc/proxmox-backup/datastore.cfg). */
  datastoreConfig?: string;
}

interface Target {
  store: string;
  stat: { dev: bigint; ino: bigint; uid: number; gid: number };
  resolvedFrom?: string;
}

/** Validate the path before anything is written; every problem here is bad input. */
function resolveTarget(path: string, probe: boolean): Target {
  if (typeof path !== 'string' || path === '') throw badInput(String(path), 'no store path given');
  const { absolute: store, entry, resolvedFrom } = resolveDirectory(path);
  const root = entry.stat!;
  const stat = { ...unsignedIdentity(root), uid: Number(root.uid), gid: Number(root.gid) };
  if (!probe && inspectOrBadInput(path, chunksDir(store)).kind === 'missing') {
    // A .chunks that is a symlink or a file is reported as UNSAFE_PATH by the check.
    throw badInput(path, 'no .chunks directory: not a chunk store (use --probe to check a directory before creating a store there)');
  }
  return { store, stat, resolvedFrom };
}

function resolveCutoff(value: unknown): number {
  if (value === undefined) return DEFAULT_CUTOFF_MINUTES;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw badOption('cutoffMinutes', value, 'expected a whole number of minutes, at least 1');
  return value;
}

const TOUCH_REASON: Record<GcUserSource, TouchIdentity['reason']> = {
  option: 'requested',
  'datastore.cfg': 'datastore.cfg',
  'store owners': 'store owner',
  'majority owner': 'store owner',
  'current user': 'current user',
  'backup user': 'new datastore',
  'unprivileged user': 'new datastore',
};

/**
 * Who touches: the GC user. Root switches to it (a helper process); another
 * user can only touch as itself, which answers for the GC user only when it is the GC user.
 */
function chooseToucher(gcUser: GcUserChoice, options: CheckOptions): { other?: GcUserChoice; reason: TouchIdentity['reason']; notGcUser: boolean } {
  const euid = process.geteuid!();
  const egid = process.getegid!();
  // A gid only counts when it was given; an inferred one is the user's primary group.
  const otherGid = options.runAs !== undefined && namesGid(options.runAs) && gcUser.gid !== egid;
  const differs = gcUser.uid !== euid || otherGid;
  if (!differs) return { reason: TOUCH_REASON[gcUser.from], notGcUser: false };
  if (euid === 0) return { other: gcUser, reason: TOUCH_REASON[gcUser.from], notGcUser: false };
  if (gcUser.from === 'option') {
    const what = gcUser.uid !== euid ? `uid ${gcUser.uid}` : `gid ${gcUser.gid}`;
    const self = gcUser.uid !== euid ? `uid ${euid}` : `uid ${euid} gid ${egid}`;
    throw badOption('runAs', options.runAs, `switching to ${what} needs root; this process runs as ${self}`);
  }
  return { reason: 'current user', notGcUser: true };
}

async function check(path: string, options: CheckOptions, hooks: CheckHooks): Promise<CheckReport> {
  const startedMs = nowMs();
  const probe = options.probe === true;
  const cutoffMinutes = resolveCutoff(options.cutoffMinutes);
  const failOn = failOnOption(options.failOn);
  const accounts = new Accounts();
  const requested = options.runAs === undefined ? undefined : resolveUser(options.runAs, accounts, 'runAs');
  const target = resolveTarget(path, probe);
  const decided = gcUserFor(target.store, target.store, {
    asUser: requested && { spec: requested, option: '--as-user' },
    identity: target.stat,
    accounts,
    datastoreConfig: hooks.datastoreConfig,
  });
  const { census, namespace } = decided;
  // Root probing for a datastore to be: never root as the GC user unless asked (seed 002).
  const rootProbe = probe && process.geteuid!() === 0;
  const newOwner = rootProbe && decided.gcUser.uid === 0 && decided.gcUser.from !== 'option' && decided.gcUser.from !== 'current user';
  const gcUser = newOwner ? newDatastoreUser(target.store, accounts) : decided.gcUser;
  const expected = newOwner ? { uid: gcUser.uid, gid: gcUser.gid } : decided.expected;
  const { other, reason, notGcUser } = chooseToucher(gcUser, options);
  if (!other) libc(); // fail on an unsupported platform before any work (the helper loads its own)
  const plan: MeasurePlan = {
    store: target.store,
    // Not the GC user: measure in a probe directory removed afterwards, never leaving a chunk or prefix directory GC cannot use.
    probe: probe || notGcUser,
    mode: options.fixedSleep ? 'fixed-sleep' : 'adaptive',
    // A chunk made as root is given to the expected owner: never one GC cannot touch (seed 002).
    storeOwner: expected,
    rootIdentity: toWire(target.stat),
    clockOffsetNs: hooks.clockOffsetNs?.toString(),
    // Read here: the GC user may not resolve the path (FUSE without allow_other), nor read a fuseblk device.
    ...planFilesystem(target.store),
  };
  const credentials = other && { uid: other.uid, gid: other.gid, groups: other.groups };
  const { measurement, via, asRoot } = rootProbe
    ? await probeAsNewDatastore(target, plan, credentials, (who, where) => measureWith(who, where, hooks, options.signal))
    : { ...(await measureWith(credentials, plan, hooks, options.signal)), asRoot: undefined };
  // A touch refused by owner on a filesystem without owners: its mount options are the remedy, not a chown.
  // Measured and predicted owner findings go through it together: one finding for the filesystem, not one for each.
  const inconsistent = probe ? [] : [inconsistentOwners(target.store, census, expected, gcUser, accounts, namespace)].filter((finding) => finding !== undefined);
  const gated = ownersOnFilesystem([...measurement.findings, ...inconsistent], { mount: plan.mount, known: plan.filesystem }, {
    path: target.store,
    gcUser: { uid: gcUser.uid, gid: expected.gid },
    measured: measurement.findings,
  });
  measurement.findings = gated.filter((finding) => !inconsistent.includes(finding));
  const ownerFindings = [
    ...uidsWithoutAccount([['--as-user', requested]]),
    ...(notGcUser ? [notAsGcUser(gcUser, accounts, target.store, probe)] : []),
    ...gated.filter((finding) => inconsistent.includes(finding)),
  ];
  return buildReport(measurement, { ...plan, cutoffMinutes, failOn, reason, via, gcUser, ownerFindings, asRoot, resolvedFrom: target.resolvedFrom, startedMs, accounts });
}

/** Measure with `credentials` (undefined: as this process is): in-process, on this thread switched, or in a helper. */
async function measureWith(credentials: ThreadCredentials | undefined, plan: MeasurePlan, hooks: CheckHooks, signal: AbortSignal | undefined): Promise<{ measurement: Measurement; via: TouchIdentity['via'] }> {
  if (!credentials) return { measurement: await measureAtime(plan, zeroChunkBlobShared(), signal), via: 'self' };
  if (hooks.switchThread) return measureOnThread(credentials, plan, signal);
  return measureAs(credentials, plan, zeroChunkBlobShared(), signal);
}

/**
 * Measure as the GC user on this thread. koffi, a zstd decoder a kept chunk needs, and libuv's
 * thread pool are loaded or started first, as this process's user, so nothing is loaded from
 * disk and no thread is born as the GC user; the thread is switched back (and checked) whatever happens.
 */
async function measureOnThread(credentials: ThreadCredentials, plan: MeasurePlan, signal: AbortSignal | undefined): Promise<{ measurement: Measurement; via: 'thread' }> {
  libc();
  // On a Node without zstd in zlib the decoder is WebAssembly from disk: loaded now, when a kept chunk will need it.
  // Node 22.15+ bundles zstd (process.versions.zstd) with zlib's API for it: nothing to look at there, on any run.
  if (process.versions.zstd === undefined && keptChunkNeedsDecoder(plan, zeroChunkBlobShared()) && !nodeZlibCodec()) await zstdCodec();
  // Threads inherit their creator's credentials: libuv's pool must exist before the switch, or
  // threads it starts meanwhile would stay the GC user's. One small async call starts all of them.
  await new Promise((done) => access('/', done));
  const back = switchThreadTo(credentials);
  try {
    return { measurement: await measureAtime(plan, zeroChunkBlobShared(), signal), via: 'thread' };
  } finally {
    back();
  }
}

function planFilesystem(store: string): Pick<MeasurePlan, 'mount' | 'filesystem'> {
  const { mount, known } = filesystemAt(store);
  return { ...(mount ? { mount } : {}), ...(known ? { filesystem: known } : {}) };
}

/** checkAtime with test seams (not exported from the package). */
export function checkAtimeWith(path: string, options: CheckOptions = {}, hooks: CheckHooks = {}): Promise<CheckReport> {
  return publicCall('the check', options?.signal, () => check(path, options ?? {}, hooks));
}

export function checkAtime(path: string, options: CheckOptions = {}): Promise<CheckReport> {
  return checkAtimeWith(path, options);
}
