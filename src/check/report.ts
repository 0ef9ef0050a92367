/**
 * The check report, built once, in the process that was asked (the parent,
 * when a helper process ran the measurement as the GC user): the
 * measurement's findings, the notes on who touched, the clock skew against
 * the cutoff, and the one-line summary.
 */
import { nowMs } from '../runtime/builtins.js';
import { type FailOn, type Finding, plural, verdict } from '../findings.js';
import type { InsertAction } from '../store/insert.js';
import type { FilesystemKnowledge } from '../system/filesystems.js';
import type { MountFacts } from '../system/mounts.js';
import type { GcUserChoice } from '../system/gc-user.js';
import type { Accounts } from '../system/passwd.js';
import { clockSkew, ranAs, storeRootSymlink } from './check-findings.js';
import type { StatSnapshot } from './snapshot.js';
import { storesWholeSeconds } from './waits.js';

export type CheckMode = 'adaptive' | 'fixed-sleep';

/** What happened to the marker chunk: the insert's action, or `kept-untouched` when it was kept and the touch failed. */
export type ChunkAction = InsertAction | 'kept-untouched';

export interface TouchIdentity {
  uid: number;
  gid: number;
  groups: number[];
  /** From /etc/passwd; undefined when the uid has no entry. */
  name?: string;
  capFowner: boolean;
  /** Why the check ran as this user. */
  reason: 'current user' | 'store owner' | 'requested' | 'datastore.cfg' | 'new datastore';
  /**
   * How the identity was taken: this process as it is; this thread switched to the GC user
   * (the CLI: raw per-thread syscalls, no second process); or a helper process started with
   * setpriv/spawn (the library, whose caller's other JavaScript must never run as the GC user).
   */
  via: 'self' | 'thread' | 'setpriv' | 'spawn';
}

/**
 * A probe run by root where the GC user never got to the touch: root measured the
 * filesystem too (its before/after are the report's), with CAP_FOWNER.
 */
export interface AsRoot {
  touchedAs: Measurement['touchedAs'];
  chunkAction?: ChunkAction;
}

/** What the measuring process found out (JSON-safe: it crosses from the helper process). */
export interface Measurement {
  /** The marker chunk's digest (computed where it was measured: the parent need not hash 4 MiB again). */
  digest: string;
  chunkPath: string;
  chunkAction?: ChunkAction;
  touchedAs: Pick<TouchIdentity, 'uid' | 'gid' | 'groups' | 'capFowner'>;
  filesystem?: MountFacts & { known?: FilesystemKnowledge };
  /** Stats just before and after the touch that decided the verdict. */
  before?: StatSnapshot;
  after?: StatSnapshot;
  /** The host clock (ns, decimal) read just before and after the deciding touch. */
  host?: [string, string];
  waits: number[];
  touches: number;
  findings: Finding[];
}

export interface CheckReport {
  ok: boolean;
  command: 'check';
  /** The verdict in one line, as the CLI prints it. */
  summary: string;
  store: string;
  probe: boolean;
  mode: CheckMode;
  digest: string;
  chunkPath: string;
  /** What the insert did with the marker chunk (undefined when it did not get that far). */
  chunkAction?: ChunkAction;
  touchedAs: TouchIdentity;
  /** Who GC runs as, and why (docs/design.md): the user the check touches as, when it can. */
  gcUser: GcUserChoice;
  filesystem?: MountFacts & { known?: FilesystemKnowledge };
  before?: StatSnapshot;
  after?: StatSnapshot;
  /** Milliseconds waited between touches (adaptive growth, or the fixed 1000 ms). */
  waits: number[];
  touches: number;
  clock?: { skewMs: number; hostNs: string; atimeNs: string };
  cutoffMinutes: number;
  /** Set when the GC user could not get as far as the touch and root measured the filesystem instead (--probe as root). */
  measuredAsRoot?: AsRoot;
  durationMs: number;
  findings: Finding[];
}

/** What the parent knows that the measurement does not. */
export interface ReportContext {
  store: string;
  probe: boolean;
  mode: CheckMode;
  cutoffMinutes: number;
  reason: TouchIdentity['reason'];
  via: TouchIdentity['via'];
  gcUser: GcUserChoice;
  /** Findings about the owners themselves (NOT_GC_USER, INCONSISTENT_OWNER), after what was measured; one the filesystem explains is among the measured ones. */
  ownerFindings: Finding[];
  asRoot?: AsRoot;
  resolvedFrom?: string;
  startedMs: number;
  accounts: Accounts;
  /** Which findings fail the check (findings.ts `verdict`); default `error`. */
  failOn?: FailOn;
}

/** atime minus the host time of the touch, in ns; 0 inside the window (whole-second stores truncate up to 1 s). */
export function skewNs(after: StatSnapshot, host: [string, string]): bigint {
  const atime = BigInt(after.atimeNs);
  const [hostBefore, hostAfter] = host.map(BigInt) as [bigint, bigint];
  const times = { atimeNs: atime, mtimeNs: BigInt(after.mtimeNs), ctimeNs: BigInt(after.ctimeNs) };
  const slack = storesWholeSeconds(times) ? 1_000_000_000n : 20_000_000n;
  if (atime < hostBefore - slack) return atime - hostBefore;
  if (atime > hostAfter + slack) return atime - hostAfter;
  return 0n;
}

export function buildReport(measurement: Measurement, context: ReportContext): CheckReport {
  const touchedAs: TouchIdentity = {
    ...measurement.touchedAs,
    name: context.accounts.userByUid(measurement.touchedAs.uid)?.name,
    reason: context.reason,
    via: context.via,
  };
  const { after, host } = measurement;
  const skewMs = after && host ? Number(skewNs(after, host) / 1_000_000n) : undefined;
  const findings = [
    ...ranAs(touchedAs, context),
    ...(context.resolvedFrom ? [storeRootSymlink(context.resolvedFrom, context.store)] : []),
    ...measurement.findings,
    // After what was measured: the verdict line names the measured failure first.
    ...context.ownerFindings,
    ...(skewMs === undefined ? [] : clockSkew(skewMs, after!, host!, { cutoffMinutes: context.cutoffMinutes, chunkPath: measurement.chunkPath }, measurement.filesystem)),
  ];
  const report: CheckReport = {
    ok: verdict(findings, context.failOn).ok,
    command: 'check',
    summary: '',
    store: context.store,
    probe: context.probe,
    mode: context.mode,
    digest: measurement.digest,
    chunkPath: measurement.chunkPath,
    chunkAction: measurement.chunkAction,
    touchedAs,
    gcUser: context.gcUser,
    filesystem: measurement.filesystem,
    before: measurement.before,
    after,
    waits: measurement.waits,
    touches: measurement.touches,
    clock: skewMs === undefined ? undefined : { skewMs, hostNs: host![0], atimeNs: after!.atimeNs },
    cutoffMinutes: context.cutoffMinutes,
    ...(context.asRoot ? { measuredAsRoot: context.asRoot } : {}),
    durationMs: Math.round(nowMs() - context.startedMs),
    findings,
  };
  report.summary = summarize(report, context.accounts, context.failOn);
  return report;
}

/** The verdict line; a warning that fails the check (failOn `warning`) is named as its reason, under WARNING. */
export function summarize(report: CheckReport, accounts: Accounts, failOn?: FailOn): string {
  const who = accounts.describeUid(report.touchedAs.uid);
  const fs = report.filesystem ? `${report.filesystem.fsType} at ${report.filesystem.mountPoint}` : report.store;
  const { failedBy } = verdict(report.findings, failOn);
  if (!failedBy) {
    const waited = report.waits.reduce((sum, wait) => sum + wait, 0);
    return `SAFE: ${fs} honours atime updates for uid ${who} (${plural(report.touches, 'touch', 'touches')}, ${waited} ms waited)`;
  }
  return `${failedBy.severity === 'error' ? 'UNSAFE' : 'WARNING'}: ${fs} for uid ${who}: ${failedBy.code}: ${failedBy.message}`;
}
