/**
 * fixOwnership(dir, { owner }): gives every entry of a tree the expected
 * owner. A dry run unless `apply`. Each change is re-checked just before it
 * is made (same device, inode and owner as the audit saw), made with lchown
 * relative to a directory held open (never a symlink's target, never across
 * a mount), and journalled first (apply.ts). undoJournal() reverts a journal
 * the same way, after checking every path it names (journal.ts).
 */
import { resolve } from 'node:path';
import { ISSUE } from '../audit/classify.js';
import { auditStore } from '../audit/index.js';
import type { Offender } from '../audit/scan-dir.js';
import { badInput, badOption, ChunkguardError, publicCall } from '../errors.js';
import { agree, type FailOn, failOnOption, type Finding, fixRemedy, journalFlag, plural, shellQuote, verdict } from '../findings.js';

const entries = (count: number): string => plural(count, 'entry', 'entries');
import { displayPath, relText, type RelPath } from '../fs/rel-path.js';
import { isWithin, resolveDirectory } from '../fs/safe-path.js';
import { unsignedIdentity } from '../fs/identity.js';
import { formatDev } from '../fs/stat.js';
import { filesystemAt, ownerMountOptions } from '../system/filesystems.js';
import { Accounts } from '../system/passwd.js';
import { type GcUserChoice, gcUserFor } from '../system/gc-user.js';
import { resolveUser, type UserInput, uidsWithoutAccount } from '../system/user-spec.js';
import { Applier, IGNORES_CHOWN, type SkippedEntry } from './apply.js';
import { type ChownRecord, JOURNAL_VERSION, type JournalTarget, readJournal, relFields, relKey } from './journal.js';

export type { SkippedEntry };

export interface FixOptions {
  /** The owner to give every entry: `uid:gid`, a name, or `{ uid, gid }`. */
  owner: UserInput;
  /** Make the changes; without it, only report them. */
  apply?: boolean;
  /**
   * Where each change is recorded before it is made, for `undoJournal`: a file (created; must
   * not exist) or a writable stream. Needed with `apply` (there is no default: the library
   * never writes to its host's stdout); refused without it.
   */
  journal?: JournalTarget;
  /** Each change, planned (dry run) or about to be made. */
  onChange?: (record: ChownRecord) => void;
  workers?: number;
  /** `warning`: a warning (NOT_GC_USER) fails too (`ok` false), for a CI gate. Default `error`. */
  failOn?: FailOn;
  signal?: AbortSignal;
}

export interface FixReport {
  /** No finding fails it: nothing left to change (dry run: nothing to change), and with failOn `warning` no warning. */
  ok: boolean;
  command: 'fix';
  summary: string;
  /** The directory, absolute. */
  dir: string;
  /** The owner given (undefined for an undo, which restores each entry's own old owner). */
  owner?: { uid: number; gid: number; user?: string; group?: string };
  /** Who GC runs as, and why (undefined for an undo): an owner other than this one leaves GC unable to touch what it owns. */
  gcUser?: GcUserChoice;
  dryRun: boolean;
  /** Entries whose owner differs (dry run: would change). */
  planned: number;
  changed: number;
  /** Left as they were: changed since the audit, or the chown failed. */
  skipped: number;
  /** The first few skipped entries and why. */
  skippedExamples: SkippedEntry[];
  /** The journal file, absolute, or `stream` (undefined for a dry run). */
  journal?: string;
  durationMs: number;
  findings: Finding[];
}

const isStream = (value: unknown): value is NodeJS.WritableStream => typeof (value as { write?: unknown } | null)?.write === 'function';

/** The journal's place: needed with apply, refused without; a file never inside the tree being changed (its absolute path). */
function journalTarget(journal: unknown, dryRun: boolean, root: string): JournalTarget | undefined {
  if (journal === undefined) {
    if (dryRun) return undefined;
    const reason = 'apply needs a journal, a file path or a writable stream: each change is recorded there before it is made, so it can be undone';
    throw new ChunkguardError('EBADINPUT', `journal: ${reason}`, { option: 'journal', value: '', reason });
  }
  if (typeof journal !== 'string' && !isStream(journal)) throw badOption('journal', typeof journal, 'expected a file path or a writable stream');
  if (dryRun) throw badOption('journal', typeof journal === 'string' ? journal : 'a stream', 'a journal records changes, and a dry run makes none (apply them, or leave the journal out)');
  if (typeof journal !== 'string') return journal;
  if (journal === '') throw badOption('journal', '', 'expected a file path or a writable stream');
  if (isWithin(resolve(journal), root)) throw badInput(journal, 'the journal must be outside the directory being fixed');
  return resolve(journal);
}

function summarize(report: Pick<FixReport, 'planned' | 'dryRun' | 'skipped' | 'changed'> & { owner: { uid: number; gid: number } }): string {
  const target = `${report.owner.uid}:${report.owner.gid}`;
  if (report.planned === 0) return `DONE: every entry is owned by ${target}, nothing to change`;
  if (report.dryRun) return `DRY RUN: ${entries(report.planned)} would be changed to ${target}; run again with --apply`;
  if (report.skipped === 0) return `DONE: ${entries(report.changed)} changed to ${target}`;
  return `INCOMPLETE: ${report.changed} of ${entries(report.planned)} changed to ${target}, ${report.skipped} left`;
}

/** Entries an --apply left (exit 1): `lacking` says what they lack, e.g. "the owner 34:34". */
function skippedFinding(skipped: number, examples: SkippedEntry[], lacking: string, remedy?: string): Finding[] {
  if (skipped === 0) return [];
  return [
    {
      code: 'FOREIGN_OWNER',
      severity: 'error',
      message: `${entries(skipped)} ${skipped === 1 ? 'was' : 'were'} left without ${lacking}: ${examples[0]?.reason ?? ''}`,
      path: examples[0]?.path,
      ...(remedy ? { remedy } : {}),
      evidence: { count: skipped, skipped: examples },
    },
  ];
}

/** A dry run's plan (exit 1): entries still to change fail it, as they fail an audit. Nothing was changed. */
function toChange(planned: number, change: string, path: string | undefined, remedy: string): Finding[] {
  if (planned === 0) return [];
  return [
    {
      code: 'FOREIGN_OWNER',
      severity: 'error',
      message: `${entries(planned)} would ${change} (a dry run: nothing was changed)`,
      ...(path ? { path } : {}),
      remedy,
      evidence: { count: planned },
    },
  ];
}

/** chown returned 0 and the owner stayed: the filesystem keeps no per-file owners, so only its mount options can set one. */
function chownIgnored(absolute: string, count: number, shown: { uid: number; gid: number } | undefined, owner: { uid: number; gid: number }): Finding {
  const { mount, known } = filesystemAt(absolute);
  const name = known?.name ?? mount?.fsType ?? 'the filesystem';
  const options = ownerMountOptions(known, owner);
  return {
    code: 'CHOWN_IGNORED',
    severity: 'error',
    message: `${entries(count)} ${count === 1 ? 'was' : 'were'} not changed: chown returned success, but a fresh stat still shows owner ${shown ? `${shown.uid}:${shown.gid}` : 'unchanged'}: ${name}${mount ? ` at ${mount.mountPoint}` : ''} ignores chown (it keeps no per-file owners)`,
    path: absolute,
    remedy: `mount ${mount ? shellQuote(mount.mountPoint) : 'the filesystem'} again with ${options} instead (a chown cannot change an owner there)`,
    evidence: { ignored: count, shown, wanted: owner, fsType: mount?.fsType, filesystem: known?.name },
  };
}

function planChange(dir: string, rel: RelPath, offender: Offender, owner: { uid: number; gid: number }) {
  const path = relText(displayPath(dir, rel));
  const record: ChownRecord = {
    op: 'chown',
    path,
    ...relFields(rel),
    dev: formatDev(offender.dev),
    ino: String(offender.ino),
    from: `${offender.uid}:${offender.gid}`,
    to: `${owner.uid}:${owner.gid}`,
  };
  return { rel, path, expected: { dev: offender.dev, ino: offender.ino, uid: offender.uid, gid: offender.gid }, to: owner, record };
}

async function fix(given: string, options: FixOptions): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute, entry } = resolveDirectory(given);
  // Reports and the journal name absolute paths, whatever the working directory.
  const dir = resolve(given);
  const failOn = failOnOption(options.failOn);
  const accounts = new Accounts();
  if (options.owner === undefined || options.owner === '') throw badOption('owner', '', 'fix needs an owner UID:GID');
  const spec = resolveUser(options.owner, accounts, 'owner');
  const { gcUser } = gcUserFor(dir, absolute, { identity: unsignedIdentity(entry.stat!), accounts });
  const owner = { uid: spec.uid, gid: spec.gid, user: accounts.userByUid(spec.uid)?.name, group: accounts.groupByGid(spec.gid)?.name };
  const target = `${owner.uid}:${owner.gid}`;
  const dryRun = options.apply !== true;
  const journal = journalTarget(options.journal, dryRun, absolute);
  const changes = journal === undefined ? undefined : Applier.start(absolute, journal, { op: 'begin', root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION });
  let planned = 0;
  let firstPath: string | undefined;
  try {
    await auditStore(dir, {
      owner: { uid: owner.uid, gid: owner.gid },
      crossFilesystems: false,
      workers: options.workers,
      signal: options.signal,
      onOffender: (_path, offender) => {
        if (!(offender.issues & (ISSUE.FOREIGN | ISSUE.NOT_MAPPED))) return;
        planned++;
        const change = planChange(dir, offender.rel, offender, owner);
        firstPath ??= change.path;
        options.onChange?.(change.record);
        changes?.add(change);
      },
    });
  } catch (error) {
    // Aborted or failed: the changes still queued are not made.
    changes?.discard();
    throw error;
  }
  changes?.close();
  const report = fixReport(dir, { planned, dryRun, journal, started }, changes);
  const ignored = changes?.ignored ?? 0;
  const findings = [
    // A uid with no account here: probably a typo or another host's uid, said first.
    ...uidsWithoutAccount([['--owner', spec]]),
    // Root as the GC user touches any owner's chunk (CAP_FOWNER): another owner costs it nothing.
    ...(owner.uid === gcUser.uid || gcUser.uid === 0 ? [] : [notGcUserOwner(owner, gcUser, accounts)]),
    ...toChange(dryRun ? planned : 0, `be changed to ${target}`, firstPath, fixRemedy(dir, target)),
    ...(ignored > 0 ? [chownIgnored(absolute, ignored, changes!.ignoredShown, owner)] : []),
    ...skippedFinding(
      report.skipped - ignored,
      report.skippedExamples.filter((example) => !example.reason.endsWith(IGNORES_CHOWN)),
      `the owner ${target}`,
      `chunkguard audit ${shellQuote(dir)} --owner ${target} --list`,
    ),
  ];
  return { ...report, ok: verdict(findings, failOn).ok, owner, gcUser, summary: summarize({ ...report, owner }), findings };
}

/** Giving the entries to someone other than the GC user makes GC fail on every one (utimensat needs the owner). */
function notGcUserOwner(owner: { uid: number; gid: number }, gcUser: GcUserChoice, accounts: Accounts): Finding {
  return {
    code: 'NOT_GC_USER',
    severity: 'warning',
    message: `the owner given, uid ${accounts.describeUid(owner.uid)}, is not the GC user, uid ${accounts.describeUid(gcUser.uid)} (${gcUser.reason}): GC cannot update the atime of chunks it does not own (EPERM), so after this fix it fails on every one of them`,
    evidence: { owner, gcUser: { uid: gcUser.uid, gid: gcUser.gid, from: gcUser.from } },
  };
}

/** What fix and undo report alike; the caller adds the verdict, the summary and the findings. */
function fixReport(dir: string, run: { planned: number; dryRun: boolean; journal: JournalTarget | undefined; started: bigint }, changes: Applier | undefined): FixReport {
  const skipped = changes?.skipped ?? 0;
  return {
    ok: false,
    command: 'fix',
    summary: '',
    dir,
    dryRun: run.dryRun,
    planned: run.planned,
    changed: changes?.changed ?? 0,
    skipped,
    skippedExamples: changes?.skippedExamples ?? [],
    journal: run.journal === undefined || typeof run.journal === 'string' ? run.journal : 'stream',
    durationMs: Number(process.hrtime.bigint() - run.started) / 1e6,
    findings: [],
  };
}

export function fixOwnership(dir: string, options: FixOptions): Promise<FixReport> {
  return publicCall('the fix', options?.signal, () => fix(dir, options ?? ({} as FixOptions)));
}

export interface UndoOptions {
  apply?: boolean;
  /** Journal of the undo itself (so an undo can be undone): a file or a writable stream, as for fixOwnership; needed with `apply`. */
  journal?: JournalTarget;
  /** Each change, one a dry run would make (read from the entry as it is now) or about to be made. */
  onChange?: (record: ChownRecord) => void;
  /** `warning`: a warning fails too (`ok` false). Default `error`. */
  failOn?: FailOn;
}

function undoSummary(run: { planned: number; dryRun: boolean; changed: number; already: number; skipped: number }): string {
  const { planned, changed, already, skipped } = run;
  const had = already ? ` (${already} had it already)` : '';
  if (planned === 0 && skipped === 0) return already ? `DONE: ${entries(already)} ${already === 1 ? 'has its' : 'have their'} old owner already, nothing to revert` : 'DONE: the journal records no changes to revert';
  if (run.dryRun) return `DRY RUN: ${entries(planned)} would get ${agree(planned, 'its', 'their')} old owner back${had}${skipped ? `, ${skipped} would be left` : ''}; run again with --apply`;
  if (skipped === 0) return `DONE: ${entries(changed)} got ${agree(changed, 'its', 'their')} old owner back${had}`;
  return `INCOMPLETE: ${changed} of ${entries(planned)} reverted, ${skipped} left`;
}

/** Revert the changes a journal records, newest first, each re-checked like a fix. */
async function undo(given: string, journalFile: string, options: UndoOptions): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute } = resolveDirectory(given);
  const dir = resolve(given);
  const failOn = failOnOption(options.failOn);
  const journal = readJournal(journalFile);
  if (journal.begin.root !== absolute) throw badInput(journalFile, `the journal is for ${journal.begin.root}, not ${absolute}`);
  const dryRun = options.apply !== true;
  const target = journalTarget(options.journal, dryRun, absolute);
  const undoOf = resolve(journalFile);
  const begin = { op: 'begin' as const, root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION, undoOf };
  // A dry run reads each entry as it is now, as --apply does: one restored already is not "would chown".
  const changes = target === undefined ? Applier.preview(absolute) : Applier.start(absolute, target, begin);
  let planned = 0;
  let firstPath: string | undefined;
  try {
    for (const change of [...journal.changes].reverse()) {
      if (journal.failed.has(relKey(change.rel))) continue;
      // The path shown is made from the checked path, never taken from the journal.
      const path = relText(displayPath(dir, change.rel));
      const reverse: ChownRecord = { ...change.record, path, ...relFields(change.rel), from: change.record.to, to: change.record.from };
      const step = { rel: change.rel, path, expected: { dev: change.dev, ino: change.ino, ...change.to }, to: change.from, record: reverse };
      if (dryRun && !changes.wouldMake(step)) continue;
      planned++;
      firstPath ??= path;
      options.onChange?.(reverse);
      if (!dryRun) changes.add(step);
    }
  } catch (error) {
    changes.discard();
    throw error;
  }
  changes.close();
  const report = fixReport(dir, { planned, dryRun, journal: target, started }, changes);
  const findings = [
    ...toChange(dryRun ? planned : 0, `get ${agree(planned, 'its', 'their')} old owner back`, firstPath, `chunkguard fix ${shellQuote(dir)} --undo ${shellQuote(undoOf)} --apply${journalFlag(dir)}`),
    ...skippedFinding(report.skipped, report.skippedExamples, `${agree(report.skipped, 'its', 'their')} old owner`),
  ];
  const summary = undoSummary({ planned, dryRun, changed: report.changed, already: changes.already, skipped: report.skipped });
  return { ...report, ok: verdict(findings, failOn).ok, summary, findings };
}

export function undoJournal(dir: string, journalFile: string, options: UndoOptions = {}): Promise<FixReport> {
  return publicCall('the undo', undefined, () => undo(dir, journalFile, options));
}
