/**
 * The atime check, run in this process with this process's credentials
 * (the caller arranges that those are the GC user's). Steps:
 *   insert the 4 MiB zero chunk (or touch the existing one),
 *   touch it so the reference atime is fresh and newer than mtime,
 *   stat, touch, stat: advanced on the same inode is a pass.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Finding, hasErrors, shellQuote } from '../findings.js';
import { closeFd, inodeFlags, mkdirAt, openFileAt, type NativeResult } from '../native/libc.js';
import { readSync } from 'node:fs';
import { zeroChunkBlob, zeroChunkDigest, zeroChunkProblem } from '../chunk/zero-chunk.js';
import { insertChunk } from '../store/insert.js';
import { CHUNKS_DIR, chunkPath, prefixDir, PREFIX_DIR_MODE } from '../store/layout.js';
import { UnsafePathError } from '../store/safe-path.js';
import { onExitRemove } from '../store/cleanup.js';
import { faultPoint } from '../store/faults.js';
import { errnoError, type NsStat, OpenDir } from '../store/open-dir.js';
import { removeTree } from '../store/remove-tree.js';
import { leftoverTag, lockedAndStillNamed, PROBE_PREFIX, sweepStaleProbes } from '../store/leftovers.js';
import { findMount, mountFacts } from '../system/mounts.js';
import { Accounts } from '../system/passwd.js';
import { CAP_FOWNER, hasCapability, userNamespace } from '../system/process.js';
import { type DiagnosisContext, diagnoseTouch, diagnoseUnreachable, diagnoseWrite, unsafePath } from './diagnose.js';
import { errnoCode } from '../errors.js';
import { snapshot } from './snapshot.js';
import { FIXED_SLEEP_MS, nextWait, storesWholeSeconds } from './waits.js';
import type { CheckMode, CheckReport, TouchIdentity } from './report.js';

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
  /** Device and inode of the store root as validated (decimal strings: this crosses JSON to the helper). */
  rootIdentity?: { dev: string; ino: string };
  /** The zero-chunk blob, base64, when a parent process built it already. */
  blob?: string;
}

type Outcome = { findings: Finding[]; before?: NsStat; after?: NsStat; host?: [bigint, bigint] };

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
  const touch = (dir: OpenDir, name: string): NativeResult => {
    touches++;
    return dir.touch(name);
  };

  let chunkAction: CheckReport['chunkAction'];
  const findings: Finding[] = [];
  let outcome: Outcome = { findings: [] };
  let reportedPath = chunkPath(options.store, digest);
  // Held open for the whole check: every step below is relative to these descriptors.
  const opened: OpenDir[] = [];
  let removeProbe: (() => void) | undefined;

  try {
    const storeDir = OpenDir.open(options.store, options.rootIdentity && { dev: BigInt(options.rootIdentity.dev), ino: BigInt(options.rootIdentity.ino) });
    opened.push(storeDir);
    let work = storeDir;
    if (options.probe) {
      // A probe directory a killed run left here goes first.
      const staleProbes = sweepStaleProbes(storeDir);
      if (staleProbes > 0) {
        findings.push({
          code: 'STALE_TEMP_REMOVED',
          severity: 'info',
          message: `removed ${staleProbes} probe director${staleProbes === 1 ? 'y' : 'ies'} a killed chunkguard run left in ${options.store}`,
          path: options.store,
          evidence: { count: staleProbes },
        });
      }
      const name = `${PROBE_PREFIX}${leftoverTag()}-${randomBytes(4).toString('hex')}`;
      const made = mkdirAt(storeDir.fd, name, 0o700);
      if (!made.ok) throw new StepFailure(diagnoseWrite(ctx, options.store, errnoError(made.code, 'mkdir', storeDir.pathOf(name))));
      const remove = () => removeTree(storeDir, name);
      const forget = onExitRemove(remove);
      removeProbe = () => {
        remove();
        forget();
      };
      work = storeDir.openChild(name).dir;
      opened.push(work);
      // The lock marks the probe live for a sweeping run; released when the descriptor closes.
      if (!lockedAndStillNamed(storeDir, name, work.fd)) {
        throw new StepFailure(diagnoseWrite(ctx, options.store, errnoError('EBUSY', 'flock', work.path)));
      }
      try {
        work.openChild(CHUNKS_DIR, { mode: PREFIX_DIR_MODE }).dir.close();
      } catch (error) {
        throw new StepFailure(diagnoseWrite(ctx, work.path, error));
      }
      reportedPath = chunkPath(work.path, digest);
    }
    outcome = await measure(work);
  } catch (error) {
    if (error instanceof StepFailure) outcome = { findings: [error.finding] };
    else if (error instanceof UnsafePathError) outcome = { findings: [unsafePath(error)] };
    else if (errnoCode(error) === 'EACCES') {
      outcome = { findings: [diagnoseUnreachable(ctx, (error as { path?: string }).path ?? options.store)] };
    } else if (errnoCode(error) && (error as { path?: string }).path) {
      // A step outside the insert failed (an entry vanishing under a concurrent rename, EIO): a finding, not a crash.
      outcome = { findings: [diagnoseWrite(ctx, (error as { path: string }).path, error)] };
    } else throw error;
  } finally {
    // The probe goes while the store directory is still open: its removal is relative to it.
    removeProbe?.();
    for (const dir of opened.reverse()) dir.close();
  }
  findings.push(...outcome.findings);

  async function measure(work: OpenDir): Promise<Outcome> {
    const chunks = work.openChild(CHUNKS_DIR).dir;
    opened.push(chunks);
    const prefixName = digest.slice(0, 4);
    const prefix = prefixDir(work.path, digest);
    let prefixDirectory: OpenDir;
    try {
      const child = chunks.openChild(prefixName, { mode: PREFIX_DIR_MODE, owner: uid === 0 ? options.storeOwner : undefined });
      prefixDirectory = child.dir;
      opened.push(prefixDirectory);
      if (child.created && !options.probe) {
        findings.push({
          code: 'PREFIX_DIR_CREATED',
          severity: 'info',
          message: `the prefix directory ${prefix} was missing and has been created (mode 0750)`,
          path: prefix,
        });
      }
    } catch (error) {
      const syscall = (error as { syscall?: string }).syscall;
      if (syscall === 'mkdir' || syscall === 'fchown' || syscall === 'chown') throw new StepFailure(diagnoseWrite(ctx, chunks.path, error));
      throw error;
    }
    const dir = prefixDirectory;
    const chunk = chunkPath(work.path, digest);
    const blob = await blobReady;
    let inserted;
    try {
      inserted = insertChunk(dir, digest, blob, {
        owner: uid === 0 ? options.storeOwner : undefined,
        backdateSeconds: options.mode === 'adaptive' ? 2 : 0,
        signal: options.signal,
      });
    } catch (error) {
      if (error instanceof UnsafePathError) throw error;
      if (options.signal?.aborted) throw options.signal.reason;
      throw new StepFailure(diagnoseWrite(ctx, prefix, error));
    }
    chunkAction = inserted.action;
    if (inserted.staleTempsRemoved > 0) {
      findings.push({
        code: 'STALE_TEMP_REMOVED',
        severity: 'info',
        message: `removed ${inserted.staleTempsRemoved} temp file(s) a killed chunkguard run left in ${prefix}`,
        path: prefix,
        evidence: { count: inserted.staleTempsRemoved },
      });
    }
    if (inserted.touch) touches++;
    if (inserted.touch && !inserted.touch.ok) return { findings: [touchFailure(dir, digest, chunk, inserted.touch)] };
    if (inserted.action === 'replaced') {
      findings.push({
        code: 'CHUNK_REPLACED',
        severity: 'warning',
        message: `the existing zero chunk was ${inserted.existingSize === 0 ? 'empty' : 'larger than a valid one'} (${inserted.existingSize} bytes) and has been replaced`,
        path: chunk,
        evidence: { existingSize: inserted.existingSize, newSize: blob.length },
      });
    }
    if (inserted.preExisting && inserted.action !== 'replaced') {
      const content = await verifyExisting(dir, digest, chunk, blob);
      if (content) findings.push(content);
    }
    return options.mode === 'fixed-sleep' ? fixedSleep({ dir, name: digest, path: chunk }) : adaptive({ dir, name: digest, path: chunk });
  }

  /** The facts diagnoseTouch needs, read through the open prefix directory. */
  function touchFailure(dir: OpenDir, name: string, chunk: string, result: Extract<NativeResult, { ok: false }>): Finding {
    let stat: NsStat | undefined;
    let flags: number | undefined;
    try {
      stat = dir.stat(name);
      const file = openFileAt(dir.fd, name);
      if (file.ok) {
        const read = inodeFlags(file.fd);
        if (read.ok) flags = read.flags;
        closeFd(file.fd);
      }
    } catch {
      // Diagnosed with what is known.
    }
    return diagnoseTouch(ctx, chunk, result, { stat, flags });
  }

  /** A kept chunk (same size or smaller) is what every zero block of every snapshot points to: is it intact? */
  async function verifyExisting(dir: OpenDir, name: string, chunk: string, blob: Buffer): Promise<Finding | undefined> {
    const file = openFileAt(dir.fd, name);
    if (!file.ok) {
      return { code: 'CHUNK_UNVERIFIED', severity: 'info', message: `could not read the existing zero chunk to verify it (${file.code})`, path: chunk, evidence: { errno: file.code } };
    }
    let bytes: Buffer;
    try {
      // Kept chunks are never bigger than ours; one byte more shows it grew meanwhile.
      const limit = blob.length + 1;
      bytes = Buffer.alloc(limit);
      let length = 0;
      for (let read = -1; read !== 0 && length < limit; length += read) read = readSync(file.fd, bytes, length, limit - length, null);
      bytes = bytes.subarray(0, length);
    } catch (error) {
      return { code: 'CHUNK_UNVERIFIED', severity: 'info', message: `could not read the existing zero chunk to verify it (${errnoCode(error) ?? (error as Error).message})`, path: chunk };
    } finally {
      closeFd(file.fd);
    }
    // Byte for byte what chunkguard writes: valid without loading the decoder.
    if (bytes.equals(blob)) return undefined;
    if (bytes.length > blob.length) {
      return { code: 'CHUNK_UNVERIFIED', severity: 'info', message: 'the existing zero chunk grew while it was read (something rewrites it): not verified', path: chunk };
    }
    const problem = await zeroChunkProblem(bytes);
    if (!problem) return undefined;
    if (problem.unverifiable) {
      return { code: 'CHUNK_UNVERIFIED', severity: 'info', message: `the existing zero chunk was kept but not verified: ${problem.reason}`, path: chunk };
    }
    return {
      code: 'CHUNK_CORRUPT',
      severity: 'error',
      message: `the existing zero chunk (${bytes.length} bytes) is corrupt: ${problem.reason}. The server keeps a chunk of the same or a smaller size, so it stays, and every snapshot with an all-zero 4 MiB block restores wrong data`,
      path: chunk,
      remedy: `mv ${shellQuote(chunk)} ${shellQuote(`${chunk}.0.bad`)}   # the next backup or chunkguard check writes a valid one; then run a verify job on the datastore`,
      evidence: { size: bytes.length, reason: problem.reason },
    };
  }

  function statChunk({ dir, name, path }: ChunkAt): NsStat {
    const stat = dir.stat(name);
    if (!stat) throw new StepFailure(diagnoseWrite(ctx, path, errnoError('ENOENT', 'statx', path)));
    return stat;
  }

  // The backup server's variant: one 1 s sleep, then stat, touch, stat.
  async function fixedSleep(chunk: ChunkAt): Promise<Outcome> {
    await sleep(FIXED_SLEEP_MS, undefined, { signal: options.signal });
    waits.push(FIXED_SLEEP_MS);
    return compare(chunk, true, false);
  }

  async function adaptive(chunk: ChunkAt): Promise<Outcome> {
    // A reference atime set moments ago, and newer than mtime, so a
    // filesystem that only updates old (or relatime-stale) atimes is caught.
    let stat: NsStat;
    const referenceWaits: number[] = [];
    for (;;) {
      const result = touch(chunk.dir, chunk.name);
      if (!result.ok) return { findings: [touchFailure(chunk.dir, chunk.name, chunk.path, result)] };
      stat = statChunk(chunk);
      if (stat.atimeNs > stat.mtimeNs) break;
      const wait = nextWait(referenceWaits, stat, Date.now());
      if (wait === undefined) {
        return {
          findings: [notUpdated(chunk.path, stat, stat, 'atime never moved past mtime although the chunk was touched')],
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

  async function compare(chunk: ChunkAt, retryOnInodeChange: boolean, adaptiveWaits: boolean): Promise<Outcome> {
    const before = statChunk(chunk);
    const measureWaits: number[] = [];
    for (;;) {
      const hostBefore = clock();
      let result: NativeResult;
      try {
        faultPoint('between-stat-and-touch');
        result = touch(chunk.dir, chunk.name);
      } catch (error) {
        result = { ok: false, errno: 0, code: errnoCode(error) ?? 'EIO' };
      }
      const hostAfter = clock();
      if (!result.ok) return { findings: [touchFailure(chunk.dir, chunk.name, chunk.path, result)], before };
      const after = statChunk(chunk);
      if (after.ino !== before.ino) {
        if (retryOnInodeChange) return compare(chunk, false, adaptiveWaits);
        return {
          findings: [
            {
              code: 'INODE_CHANGED',
              severity: 'error',
              message: `the chunk was replaced (inode ${before.ino} became ${after.ino}) during the check, twice: something else rewrites chunks while the check runs`,
              path: chunk.path,
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
        return { findings: [notUpdated(chunk.path, before, after, 'utimensat(UTIME_NOW, UTIME_OMIT) succeeded but atime did not advance')], before, after };
      }
      measureWaits.push(wait);
      waits.push(wait);
      await sleep(wait, undefined, { signal: options.signal });
    }
  }

  function notUpdated(chunk: string, before: NsStat, after: NsStat, what: string): Finding {
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

  function skewFindings(after: NsStat, [hostBefore, hostAfter]: [bigint, bigint]): Finding[] {
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
        path: reportedPath,
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
function skewNs(after: NsStat, hostBefore: bigint, hostAfter: bigint): bigint {
  const slack = storesWholeSeconds(after) ? 1_000_000_000n : 20_000_000n;
  if (after.atimeNs < hostBefore - slack) return after.atimeNs - hostBefore;
  if (after.atimeNs > hostAfter + slack) return after.atimeNs - hostAfter;
  return 0n;
}

/** The chunk, as the open prefix directory and its name (`path` is for messages). */
interface ChunkAt {
  dir: OpenDir;
  name: string;
  path: string;
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
