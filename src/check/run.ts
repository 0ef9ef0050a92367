/**
 * The atime check, run in this process with this process's credentials
 * (the caller arranges that those are the GC user's). Steps:
 *   insert the 4 MiB zero chunk (or touch the existing one),
 *   touch it so the reference atime is fresh and newer than mtime,
 *   stat, touch, stat: advanced on the same inode is a pass.
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Finding, hasErrors } from '../findings.js';
import { touchAtime, type NativeResult } from '../native/libc.js';
import { zeroChunkBlob, zeroChunkDigest } from '../chunk/zero-chunk.js';
import { insertChunk } from '../store/insert.js';
import { chunkPath, chunksDir, prefixDir, PREFIX_DIR_MODE } from '../store/layout.js';
import { requireDirectory, UnsafePathError } from '../store/safe-path.js';
import { trackTempDirectory, untrackTempDirectory } from '../store/cleanup.js';
import { findMount, mountFacts } from '../system/mounts.js';
import { Accounts } from '../system/passwd.js';
import { CAP_FOWNER, hasCapability, userNamespace } from '../system/process.js';
import { type DiagnosisContext, diagnoseTouch, diagnoseUnreachable, diagnoseWrite, unsafePath } from './diagnose.js';
import { errnoCode } from '../errors.js';
import { snapshot, statPath } from './snapshot.js';
import { FIXED_SLEEP_MS, nextWait, storesWholeSeconds } from './waits.js';
import type { CheckMode, CheckReport, TouchIdentity } from './report.js';

export const PROBE_PREFIX = '.chunkguard-probe-';
const DEFAULT_CLOCK = () => BigInt(Date.now()) * 1_000_000n;

export interface RunOptions {
  /** Absolute, validated store (or, with probe, the directory to probe). */
  store: string;
  probe: boolean;
  mode: CheckMode;
  cutoffMinutes: number;
  storeOwner: { uid: number; gid: number };
  reason: TouchIdentity['reason'];
  via: TouchIdentity['via'];
  signal?: AbortSignal;
  /** Host wall clock in ns since the epoch; injectable to test skew. */
  clock?: () => bigint;
  /** The zero-chunk blob, base64, when a parent process built it already. */
  blob?: string;
}

type Outcome = { findings: Finding[]; before?: BigIntStats; after?: BigIntStats; host?: [bigint, bigint] };

export async function runCheck(options: RunOptions): Promise<CheckReport> {
  const started = performance.now();
  // Instantiating the zstd module is the slowest step of a check: start it now, off the critical path.
  const blobReady = options.blob === undefined ? zeroChunkBlob() : Promise.resolve(Buffer.from(options.blob, 'base64'));
  blobReady.catch(() => undefined);
  const clock = options.clock ?? DEFAULT_CLOCK;
  const accounts = new Accounts();
  const uid = process.geteuid!();
  const gid = process.getegid!();
  const capFowner = hasCapability(CAP_FOWNER);
  const mount = findMount(options.store);
  const digest = zeroChunkDigest();
  const touchedAs: TouchIdentity = {
    uid,
    gid,
    groups: process.getgroups!(),
    name: accounts.userByUid(uid)?.name,
    capFowner,
    reason: options.reason,
    via: options.via,
  };
  const ctx: DiagnosisContext = {
    accounts,
    uid,
    gid,
    capFowner,
    namespace: userNamespace(),
    mount,
    storeOwner: options.storeOwner,
    store: options.store,
  };
  const waits: number[] = [];
  let touches = 0;
  const touch = (path: string): NativeResult => {
    touches++;
    return touchAtime(path);
  };

  let root = options.store;
  let probeDir: string | undefined;
  let chunkAction: CheckReport['chunkAction'];
  const findings: Finding[] = [];
  let outcome: Outcome = { findings: [] };
  const path = chunkPath(options.store, digest);
  let reportedPath = path;

  try {
    if (options.probe) {
      try {
        probeDir = mkdtempSync(join(options.store, PROBE_PREFIX));
        trackTempDirectory(probeDir);
        root = probeDir;
        mkdirSync(chunksDir(root), { mode: PREFIX_DIR_MODE });
      } catch (error) {
        throw new StepFailure(diagnoseWrite(ctx, probeDir ?? options.store, error));
      }
      reportedPath = chunkPath(root, digest);
    }
    outcome = await measure();
  } catch (error) {
    if (error instanceof StepFailure) outcome = { findings: [error.finding] };
    else if (error instanceof UnsafePathError) outcome = { findings: [unsafePath(error)] };
    else if (errnoCode(error) === 'EACCES') {
      outcome = { findings: [diagnoseUnreachable(ctx, (error as { path?: string }).path ?? options.store)] };
    } else throw error;
  } finally {
    if (probeDir) {
      rmSync(probeDir, { recursive: true, force: true });
      untrackTempDirectory(probeDir);
    }
  }
  findings.push(...outcome.findings);

  async function measure(): Promise<Outcome> {
    requireDirectory(chunksDir(root));
    const prefix = prefixDir(root, digest);
    if (requireDirectory(prefix, { allowMissing: true }).kind === 'missing') {
      try {
        mkdirSync(prefix, { mode: PREFIX_DIR_MODE });
        if (uid === 0) chownSync(prefix, options.storeOwner.uid, options.storeOwner.gid);
      } catch (error) {
        throw new StepFailure(diagnoseWrite(ctx, chunksDir(root), error));
      }
      if (!options.probe) {
        findings.push({
          code: 'PREFIX_DIR_CREATED',
          severity: 'info',
          message: `the prefix directory ${prefix} was missing and has been created (mode 0750)`,
          path: prefix,
        });
      }
    }
    const chunk = chunkPath(root, digest);
    const blob = await blobReady;
    let inserted;
    try {
      inserted = await insertChunk(chunk, blob, {
        owner: uid === 0 ? options.storeOwner : undefined,
        backdateSeconds: options.mode === 'adaptive' ? 2 : 0,
        signal: options.signal,
      });
    } catch (error) {
      if (error instanceof UnsafePathError) throw error;
      throw new StepFailure(diagnoseWrite(ctx, prefix, error));
    }
    chunkAction = inserted.action;
    if (inserted.touch) touches++;
    if (inserted.touch && !inserted.touch.ok) return { findings: [diagnoseTouch(ctx, chunk, inserted.touch)] };
    if (inserted.action === 'replaced') {
      findings.push({
        code: 'CHUNK_REPLACED',
        severity: 'warning',
        message: `the existing zero chunk was ${inserted.existingSize === 0 ? 'empty' : 'larger than a valid one'} (${inserted.existingSize} bytes) and has been replaced`,
        path: chunk,
        evidence: { existingSize: inserted.existingSize, newSize: blob.length },
      });
    }
    return options.mode === 'fixed-sleep' ? fixedSleep(chunk) : adaptive(chunk);
  }

  // The backup server's variant: one 1 s sleep, then stat, touch, stat.
  async function fixedSleep(chunk: string): Promise<Outcome> {
    await sleep(FIXED_SLEEP_MS, undefined, { signal: options.signal });
    waits.push(FIXED_SLEEP_MS);
    return compare(chunk, true, false);
  }

  async function adaptive(chunk: string): Promise<Outcome> {
    // A reference atime set moments ago, and newer than mtime, so a
    // filesystem that only updates old (or relatime-stale) atimes is caught.
    let stat: BigIntStats;
    const referenceWaits: number[] = [];
    for (;;) {
      const result = touch(chunk);
      if (!result.ok) return { findings: [diagnoseTouch(ctx, chunk, result)] };
      stat = statPath(chunk);
      if (stat.atimeNs > stat.mtimeNs) break;
      const wait = nextWait(referenceWaits, stat, Date.now());
      if (wait === undefined) {
        return {
          findings: [notUpdated(chunk, stat, stat, 'atime never moved past mtime although the chunk was touched')],
          before: stat,
          after: stat,
        };
      }
      referenceWaits.push(wait);
      waits.push(wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
    return compare(chunk, true, true);
  }

  async function compare(chunk: string, retryOnInodeChange: boolean, adaptiveWaits: boolean): Promise<Outcome> {
    const before = statPath(chunk);
    const measureWaits: number[] = [];
    for (;;) {
      const hostBefore = clock();
      const result = touch(chunk);
      const hostAfter = clock();
      if (!result.ok) return { findings: [diagnoseTouch(ctx, chunk, result)], before };
      const after = statPath(chunk);
      if (after.ino !== before.ino) {
        if (retryOnInodeChange) return compare(chunk, false, adaptiveWaits);
        return {
          findings: [
            {
              code: 'INODE_CHANGED',
              severity: 'error',
              message: `the chunk was replaced (inode ${before.ino} became ${after.ino}) during the check, twice: something else rewrites chunks while the check runs`,
              path: chunk,
              evidence: { before: snapshot(before), after: snapshot(after) },
            },
          ],
          before,
          after,
        };
      }
      if (after.atimeNs > before.atimeNs) {
        return { findings: skewFindings(after, [hostBefore, hostAfter]), before, after, host: [hostBefore, hostAfter] };
      }
      const wait = adaptiveWaits ? nextWait(measureWaits, after, Date.now()) : undefined;
      if (wait === undefined) {
        return { findings: [notUpdated(chunk, before, after, 'utimensat(UTIME_NOW, UTIME_OMIT) succeeded but atime did not advance')], before, after };
      }
      measureWaits.push(wait);
      waits.push(wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
  }

  function notUpdated(chunk: string, before: BigIntStats, after: BigIntStats, what: string): Finding {
    const waited = waits.reduce((sum, wait) => sum + wait, 0);
    return {
      code: 'ATIME_NOT_UPDATED',
      severity: 'error',
      message: `${what}, even after ${waited} ms: this filesystem ignores atime updates, and GC would delete live chunks (do not run GC on it)`,
      path: chunk,
      remedy: `move the datastore to a filesystem that honours utimensat (ext4, xfs, btrfs, zfs); for ${mount?.fsType ?? 'this filesystem'} at ${mount?.mountPoint ?? options.store} check its atime/cache options`,
      evidence: { before: snapshot(before), after: snapshot(after), waits, fsType: mount?.fsType, mountOptions: mount?.mountOptions },
    };
  }

  function skewFindings(after: BigIntStats, [hostBefore, hostAfter]: [bigint, bigint]): Finding[] {
    const skew = skewNs(after, hostBefore, hostAfter);
    const skewMs = Number(skew / 1_000_000n);
    const absMs = Math.abs(skewMs);
    if (absMs <= 60_000) return [];
    const lagging = skewMs < 0;
    const fatal = lagging && absMs >= options.cutoffMinutes * 60_000;
    const minutes = (absMs / 60_000).toFixed(1);
    return [
      {
        code: 'CLOCK_SKEW',
        severity: fatal ? 'error' : 'warning',
        message: `the filesystem clock is ${minutes} minutes ${lagging ? 'behind' : 'ahead of'} this host: a chunk touched now gets an atime ${minutes} minutes ${lagging ? 'in the past' : 'in the future'}${
          fatal
            ? `, beyond the GC cutoff of ${options.cutoffMinutes} minutes: GC would delete chunks it just marked`
            : lagging
              ? `, which eats into the GC cutoff margin of ${options.cutoffMinutes} minutes`
              : ', so unused chunks are kept longer'
        }`,
        path: chunkPath(root, digest),
        remedy: `synchronise the clocks of this host and of the server behind ${mount?.source ?? 'the filesystem'} (chronyc tracking; timedatectl set-ntp true)`,
        evidence: { skewMs, atimeNs: after.atimeNs.toString(), hostNs: hostBefore.toString(), cutoffMinutes: options.cutoffMinutes },
      },
    ];
  }

  const passed = !hasErrors(findings);
  const after = outcome.after;
  const report: CheckReport = {
    ok: passed,
    command: 'check',
    summary: '',
    store: options.store,
    probe: options.probe,
    mode: options.mode,
    digest,
    chunkPath: reportedPath,
    chunkAction,
    touchedAs,
    filesystem: mount && mountFacts(mount),
    before: outcome.before && snapshot(outcome.before),
    after: after && snapshot(after),
    waits,
    touches,
    clock:
      after && outcome.host
        ? {
            skewMs: Number(skewNs(after, outcome.host[0], outcome.host[1]) / 1_000_000n),
            hostNs: outcome.host[0].toString(),
            atimeNs: after.atimeNs.toString(),
          }
        : undefined,
    cutoffMinutes: options.cutoffMinutes,
    durationMs: Math.round(performance.now() - started),
    findings,
  };
  report.summary = summarize(report, accounts);
  return report;
}

/** atime minus the host time of the touch; 0 inside the window (whole-second stores truncate up to 1 s). */
function skewNs(after: BigIntStats, hostBefore: bigint, hostAfter: bigint): bigint {
  const slack = storesWholeSeconds(after) ? 1_000_000_000n : 20_000_000n;
  if (after.atimeNs < hostBefore - slack) return after.atimeNs - hostBefore;
  if (after.atimeNs > hostAfter + slack) return after.atimeNs - hostAfter;
  return 0n;
}

class StepFailure extends Error {
  constructor(readonly finding: Finding) {
    super(finding.message);
  }
}

export function summarize(report: CheckReport, accounts = new Accounts()): string {
  const who = accounts.describeUid(report.touchedAs.uid);
  const fs = report.filesystem ? `${report.filesystem.fsType} at ${report.filesystem.mountPoint}` : report.store;
  if (report.ok) {
    const waited = report.waits.reduce((sum, wait) => sum + wait, 0);
    return `SAFE: ${fs} honours atime updates for uid ${who} (${report.touches} touches, ${waited} ms waited)`;
  }
  const first = report.findings.find((finding) => finding.severity === 'error');
  return `UNSAFE: ${fs} for uid ${who}: ${first?.code}: ${first?.message}`;
}
