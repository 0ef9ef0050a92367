/**
 * previewGc(store, options): what the server's next garbage collection would
 * do to this datastore, before it runs. The steps follow the server's:
 *   the start (nested datastores, tuning, the cutoff, running backups);
 *   the atime safety check, run as `check` runs it (the same zero chunk, the GC user);
 *   phase 1: every index the server reads (index-walk.ts), read into one digest set (mark.ts);
 *   phase 2: `.chunks` on the audit's walk, each chunk judged by the server's rules (sweep.ts);
 *   then the snapshots behind what is at risk (snapshots.ts) and the first abort (abort.ts).
 * Nothing in the store is written but the atime check's zero chunk (skipAtimeCheck: nothing).
 * Resolves to a report; never prints.
 */
import { resolve } from 'node:path';
import { checkAtimeWith } from '../check/index.js';
import { storeRootSymlink } from '../check/check-findings.js';
import type { CheckReport } from '../check/report.js';
import { badInput, badOption, publicCall } from '../errors.js';
import { type FailOn, failOnOption, type Finding, plural, verdict } from '../findings.js';
import { formatBytes } from '../audit/collect.js';
import { type RingPlan, workersOption } from '../audit/concurrency.js';
import { DirTree } from '../fs/dir-tree.js';
import { identityOf } from '../fs/identity.js';
import { relText } from '../fs/rel-path.js';
import { openDirOrBadInput, resolveDirectory, isWithin } from '../fs/safe-path.js';
import { entryKind } from '../fs/stat.js';
import { libc } from '../native/libc.js';
import { type Datastore, DATASTORE_CONFIG, datastoreOf, listDatastores } from '../system/datastores.js';
import { filesystemAt } from '../system/filesystems.js';
import { gcUserFor, type GcUserChoice } from '../system/gc-user.js';
import { mountFacts } from '../system/mounts.js';
import { Accounts, type AccountFiles } from '../system/passwd.js';
import { resolveUser, type UserInput, uidsWithoutAccount } from '../system/user-spec.js';
import { userNamespace } from '../system/process.js';
import { firstAbort } from './abort.js';
import { type Prelude, walkChunks } from './chunk-walk.js';
import { abortFinding, deleteReferencedFinding, hiddenRootFinding, leftoversFinding, missingFinding, notReadFinding, outsideSchemeFinding, overdueFinding, writersFinding } from './gc-findings.js';
import { type IndexWalk, walkIndexes } from './index-walk.js';
import { readLastGc } from './last-gc.js';
import { type Marked, Marker } from './mark.js';
import type { GcPreviewProgress, GcPreviewReport } from './report.js';
import { CUTOFF_RANGE, cutoffMinutes, gcTuning, minAtimeFor } from './settings.js';
import { attribute } from './snapshots.js';
import { SweepTally } from './sweep.js';
import { backupWriters } from './writers.js';

export interface GcPreviewOptions {
  /** The cutoff in minutes. Default: the datastore's `gc-atime-cutoff` tuning in datastore.cfg, else 1445 (24 h 5 min). */
  cutoffMinutes?: number;
  /** The user GC runs as: `uid:gid`, a name, or `{ uid, gid }`. Default: the GC user chunkguard infers (datastore.cfg, the store's owners). */
  asUser?: UserInput;
  /** Leave the store untouched: no atime check (the preview then assumes the touch works). */
  skipAtimeCheck?: boolean;
  /** `warning`: a warning fails the preview too. Default `error`. */
  failOn?: FailOn;
  /** Worker threads for the `.chunks` walk; 0 walks in the calling thread. Default: chosen from the filesystem, as the audit does. */
  workers?: number;
  signal?: AbortSignal;
  onProgress?: (progress: GcPreviewProgress) => void;
}

/** Test seams, not part of the public API. */
export interface GcPreviewHooks {
  datastoreConfig?: string;
  accountFiles?: AccountFiles;
  /** /proc/locks and the server's active task list. */
  procLocks?: string;
  activeTasks?: string;
  /** The moment GC starts (Unix seconds). */
  now?: number;
  ring?: RingPlan;
  /** The CLI's: the atime check switches this thread to the GC user (checkAtimeWith's hook). */
  switchThread?: boolean;
}

/** Check findings that mean the mark's touch would not keep a chunk: the server's safety check fails on them too. */
const TOUCH_IGNORED = new Set<Finding['code']>(['ATIME_NOT_UPDATED', 'INODE_CHANGED']);

function cutoffOption(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < CUTOFF_RANGE.min) throw badOption('cutoffMinutes', value, 'expected a whole number of minutes, at least 1');
  return value;
}

/** Another datastore of datastore.cfg that lies inside this one, or this one inside it (by path, as the server compares them). */
function nestedWith(store: Datastore | undefined, all: Datastore[]): { name: string; path: string } | undefined {
  if (!store) return undefined;
  const other = all.find((entry) => entry.name !== store.name && (isWithin(entry.path, store.path) || isWithin(store.path, entry.path)));
  return other && { name: other.name, path: other.path };
}

/** The touch the mark relies on, as the atime check measured it: ignored, or failing where the server's safety check fails. */
function touchVerdict(check: CheckReport | undefined): { ignored?: Finding; stop?: Finding } {
  if (!check) return {};
  const ignored = check.findings.find((finding) => TOUCH_IGNORED.has(finding.code) && finding.severity === 'error');
  const stop = ignored ?? check.findings.find((finding) => finding.severity === 'error');
  return { ...(ignored ? { ignored } : {}), ...(stop ? { stop } : {}) };
}

/** The verdict line: `VERDICT: what the GC would do`, as every command's summary starts. */
function summaryOf(report: GcPreviewReport, failedBy: Finding | undefined, touchIgnored: boolean): string {
  const { sweep, referenced, atRisk } = report;
  // Where the touch is ignored the sweep takes the referenced chunks it does not keep: never say they are kept.
  const lost = touchIgnored ? atRisk.chunks : 0;
  const removed = `removes ${plural(sweep.removed.chunks, 'chunk')} (${formatBytes(sweep.removed.bytes)})`;
  const removes = lost > 0 ? `${removed}, ${lost} of them referenced by ${plural(atRisk.snapshots.length, 'snapshot')}` : `${removed} and keeps ${plural(referenced.chunks - referenced.missing, 'referenced chunk')}`;
  // Past its own safety check the server's GC runs on this filesystem as it is; past any other stop, once the cause is fixed.
  const past = report.abort?.code === 'ATIME_CHECK' ? 'with the safety check off it' : 'once that is fixed it';
  if (report.abort) return `WOULD ABORT: the next GC stops (${report.abort.code}) at ${report.abort.path}; ${past} ${removes}`;
  if (failedBy) return `${failedBy.severity === 'error' ? 'UNSAFE' : 'WARNING'}: ${failedBy.code}: the next GC ${removes}, but ${failedBy.message.split(': ')[0]}`;
  return `SAFE: the next GC completes: it ${removes}; nothing referenced is lost`;
}

/** Phase 1 as the chunk walk's prelude, a step at a time: the index walk, an index a step, then the sweep's rules over the sealed set. */
class PhaseOne implements Prelude {
  walk: IndexWalk | undefined;
  marker: Marker | undefined;
  tally: SweepTally | undefined;

  constructor(
    private readonly walkStore: () => IndexWalk,
    private readonly markerFor: (walk: IndexWalk) => Marker,
    private readonly rulesFor: (marked: Marked) => SweepTally,
  ) {}

  step(): boolean {
    if (!this.walk) {
      this.walk = this.walkStore();
      this.marker = this.markerFor(this.walk);
      return false;
    }
    if (!this.marker!.step()) return false;
    this.tally = this.rulesFor(this.marker!.marked);
    return true;
  }

  /** What phase 1 found, once the walk has run it to its end. */
  result(): { walk: IndexWalk; marked: Marked; tally: SweepTally } {
    if (!this.tally) throw new Error('the GC preview: phase 1 did not run to its end');
    return { walk: this.walk!, marked: this.marker!.marked, tally: this.tally };
  }
}

async function preview(given: string, options: GcPreviewOptions, hooks: GcPreviewHooks): Promise<GcPreviewReport> {
  const started = process.hrtime.bigint();
  const failOn = failOnOption(options.failOn);
  const cutoffGiven = cutoffOption(options.cutoffMinutes);
  const workers = workersOption(options.workers);
  const accounts = new Accounts(hooks.accountFiles);
  const asUser = options.asUser === undefined ? undefined : resolveUser(options.asUser, accounts, 'asUser');
  if (typeof given !== 'string' || given === '') throw badInput(String(given), 'no store path given');
  const { absolute, resolvedFrom } = resolveDirectory(given);
  const store = resolve(given);
  libc();
  const config = hooks.datastoreConfig ?? DATASTORE_CONFIG;
  const datastore = datastoreOf(absolute, config);
  const tuning = gcTuning(datastore);
  const cutoff = cutoffMinutes(cutoffGiven, tuning);
  const now = hooks.now ?? Math.floor(Date.now() / 1000);

  const root = openDirOrBadInput(given, absolute);
  const tree = DirTree.from(root);
  try {
    const rootStat = root.statSelf();
    const chunksStat = root.stat('.chunks');
    if (entryKind(chunksStat) !== 'directory') throw badInput(given, 'no .chunks directory: not a chunk store');
    const writers = backupWriters(root.stat('.lock'), datastore?.name, { procLocks: hooks.procLocks, activeTasks: hooks.activeTasks });
    const oldestWriter = writers.oldest?.start ?? now;
    const minAtime = minAtimeFor(now, cutoff.minutes, oldestWriter);

    // The server's safety check comes before the mark: its zero chunk is then in .chunks with a fresh atime, as after the server's.
    options.onProgress?.({ phase: 'atime check', done: 0 });
    const check = options.skipAtimeCheck
      ? undefined
      : await checkAtimeWith(given, { runAs: options.asUser, cutoffMinutes: cutoff.minutes, signal: options.signal }, { switchThread: hooks.switchThread, datastoreConfig: config });
    const decided = gcUserFor(given, absolute, { asUser: asUser && { spec: asUser, option: '--as-user' }, identity: identityOf(rootStat), accounts, datastoreConfig: config });
    const gcUser: GcUserChoice = check?.gcUser ?? decided.gcUser;
    const touch = touchVerdict(check);
    const { mount, known } = filesystemAt(absolute);

    const rules = { minAtime, oldestWriter, gcUser, readOnly: mount?.readOnly === true, touchIgnored: touch.ignored !== undefined };
    // Phase 1 runs while the walk of .chunks runs, in slices between which this thread hands the
    // walk's threads their tasks; nothing they hand over is judged before the set is sealed.
    const phase1 = new PhaseOne(
      () => walkIndexes(root, gcUser, options.signal),
      (walk) => new Marker(tree, walk, gcUser, (done) => options.onProgress?.({ phase: 'indexes', done, total: walk.indexes.length }), options.signal),
      (marked) => new SweepTally(marked.set, rules),
    );
    const chunkWalk = await walkChunks(absolute, {
      identity: identityOf(rootStat),
      gcUser,
      expected: decided.expected,
      namespace: decided.namespace,
      workers,
      ring: hooks.ring,
      signal: options.signal,
      prelude: phase1,
      onChunk: (view) => phase1.tally!.chunk(view),
      onPrefixDir: (view) => phase1.tally!.prefixDir(view),
      onProgress: ({ done, total }) => options.onProgress?.({ phase: 'chunks', done, total }),
    });
    const { walk, marked, tally } = phase1.result();
    tally.finish();
    options.onProgress?.({ phase: 'snapshots', done: 0 });
    const attribution = attribute(tree, walk, marked, tally.flags, options.signal);
    const last = readLastGc(root);

    const abort = firstAbort({
      store,
      gcUser,
      namespace: decided.namespace,
      mount,
      known,
      nested: nestedWith(datastore, listDatastores(config)),
      tuningProblems: tuning.problems,
      safetyCheck: tuning.safetyCheck,
      atimeStop: touch.stop,
      atimeChecked: check !== undefined,
      walk,
      marked,
      attribution,
      tally,
      chunksDir: chunksStat!,
    });
    const outside = walk.indexes.filter((found) => found.snapshot === undefined).map((found) => relText(found.rel)).sort();
    const problems = walk.indexes.flatMap((found, position) => {
      const { problem } = marked.outcomes[position]!;
      return problem ? [{ rel: relText(found.rel), code: problem.code, reason: problem.reason }] : [];
    });
    const notRead = problems.filter((entry) => entry.code === 'SYMLINK' || entry.code === 'CHANGED').map(({ rel, reason }) => ({ rel, reason }));
    const unreadable = problems.map((entry) => entry.rel).sort();
    const atRisk = { ...tally.atRisk, snapshots: attribution.atRisk };
    const lastGc = last.found && 'status' in last ? last.status : undefined;
    const findings: Finding[] = [
      ...uidsWithoutAccount([['--as-user', asUser]]),
      // The check says it when it runs.
      ...(check?.findings ?? (resolvedFrom ? [storeRootSymlink(resolvedFrom, absolute)] : [])),
      ...(abort ? [abortFinding(abort, tally.unmarkable)] : []),
      ...(touch.ignored && atRisk.chunks > 0 ? [deleteReferencedFinding(store, atRisk, touch.ignored, tuning.safetyCheck)] : []),
      ...(tally.missing > 0 ? [missingFinding(store, tally.missing, attribution.broken, datastore?.name)] : []),
      ...(outside.length > 0 ? [outsideSchemeFinding(store, outside)] : []),
      ...(walk.unread.length > 0 ? [hiddenRootFinding(store, walk.unread.map((found) => relText(found.rel)).sort())] : []),
      ...(notRead.length > 0 ? [notReadFinding(store, notRead)] : []),
      ...[overdueFinding(store, lastGc, tuning.schedule, now), writersFinding(store, writers), leftoversFinding(store, tally.leftovers)].filter((finding): finding is Finding => finding !== undefined),
    ];
    const filesystem = check?.filesystem ?? (mount ? { ...mountFacts(mount), ...(known ? { known } : {}) } : undefined);
    const judged = verdict(findings, failOn);
    const report: GcPreviewReport = {
      ok: judged.ok,
      command: 'gc-preview',
      summary: '',
      store,
      ...(datastore ? { datastore: datastore.name } : {}),
      gcUser,
      ...(filesystem ? { filesystem } : {}),
      now,
      cutoffMinutes: cutoff.minutes,
      cutoffFrom: cutoff.from,
      minAtime,
      oldestWriter,
      writers,
      ...(check ? { atimeCheck: { ok: check.ok, summary: check.summary, touchIgnored: touch.ignored !== undefined, findings: check.findings.map((finding) => finding.code), report: check } } : {}),
      snapshots: { total: walk.snapshots.length, broken: attribution.broken },
      indexes: { files: marked.files, bytes: marked.bytes, outsideScheme: outside, unreadable },
      referenced: { chunks: marked.set.size, bytes: tally.referenced.bytes, missing: tally.missing, unmarkable: tally.unmarkable.length, unmarkablePaths: [...tally.unmarkable].sort() },
      sweep: { removed: tally.removed, pending: tally.pending, inUse: tally.inUse, bad: tally.bad },
      atRisk,
      leftovers: tally.leftovers,
      abort,
      ...(lastGc ? { lastGc } : {}),
      concurrency: chunkWalk.concurrency,
      readBeyondGcUser: walk.denied.map((stop) => relText(stop.rel)),
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      findings,
    };
    report.summary = summaryOf(report, judged.failedBy, touch.ignored !== undefined);
    return report;
  } finally {
    tree.close();
  }
}

/** previewGc with test seams (not exported from the package). */
export function previewGcWith(store: string, options: GcPreviewOptions = {}, hooks: GcPreviewHooks = {}): Promise<GcPreviewReport> {
  return publicCall('the GC preview', options?.signal, () => preview(store, options ?? {}, hooks));
}

export function previewGc(store: string, options: GcPreviewOptions = {}): Promise<GcPreviewReport> {
  return previewGcWith(store, options);
}
