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
import { badInput, badOption, publicCall } from '../errors.js';
import { type Finding, plural, shellQuote } from '../findings.js';

const entries = (count: number): string => plural(count, 'entry', 'entries');
import { displayPath, relText, type RelPath } from '../fs/rel-path.js';
import { isWithin, resolveDirectory } from '../fs/safe-path.js';
import { unsignedIdentity } from '../fs/identity.js';
import { formatDev } from '../fs/stat.js';
import { filesystemAt, ownerMountOptions } from '../system/filesystems.js';
import { Accounts } from '../system/passwd.js';
import { type GcUserChoice, gcUserFor } from '../system/gc-user.js';
import { resolveUser, type UserInput } from '../system/user-spec.js';
import { Applier, IGNORES_CHOWN, type SkippedEntry } from './apply.js';
import { type ChownRecord, JOURNAL_VERSION, readJournal, relFields, relKey } from './journal.js';

export type { SkippedEntry };

export interface FixOptions {
  /** The owner to give every entry: `uid:gid`, a name, or `{ uid, gid }`. */
  owner: UserInput;
  /** Make the changes; without it, only report them. */
  apply?: boolean;
  /** Journal file (created; must not exist). Default: stdout. Only with `apply`. */
  journal?: string;
  /** Each change, planned (dry run) or about to be made. */
  onChange?: (record: ChownRecord) => void;
  workers?: number;
  signal?: AbortSignal;
}

export interface FixReport {
  /** Nothing left to change. */
  ok: boolean;
  command: 'fix';
  summary: string;
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
  journal?: string;
  durationMs: number;
  findings: Finding[];
}

/** The journal's place: only with apply, and never inside the tree being changed. */
function checkJournalOption(journal: string | undefined, dryRun: boolean, root: string): void {
  if (journal === undefined) return;
  if (dryRun) throw badOption('journal', journal, 'a journal records changes, and a dry run makes none (apply them, or leave the journal out)');
  if (isWithin(resolve(journal), root)) throw badInput(journal, 'the journal must be outside the directory being fixed');
}

function summarize(report: Pick<FixReport, 'planned' | 'dryRun' | 'skipped' | 'changed'> & { owner: { uid: number; gid: number } }): string {
  const target = `${report.owner.uid}:${report.owner.gid}`;
  if (report.planned === 0) return `DONE: every entry is owned by ${target}, nothing to change`;
  if (report.dryRun) return `DRY RUN: ${entries(report.planned)} would be changed to ${target}; run again with --apply`;
  if (report.skipped === 0) return `DONE: ${entries(report.changed)} changed to ${target}`;
  return `INCOMPLETE: ${report.changed} of ${entries(report.planned)} changed to ${target}, ${report.skipped} left`;
}

function skippedFinding(dir: string, skipped: number, examples: SkippedEntry[], owner: { uid: number; gid: number }): Finding[] {
  if (skipped === 0) return [];
  return [
    {
      code: 'FOREIGN_OWNER',
      severity: 'error',
      message: `${entries(skipped)} still ${skipped === 1 ? 'has' : 'have'} another owner than ${owner.uid}:${owner.gid}: ${examples[0]?.reason ?? ''}`,
      path: examples[0]?.path,
      remedy: `chunkguard audit ${shellQuote(dir)} --owner ${owner.uid}:${owner.gid} --list`,
      evidence: { skipped: examples },
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

async function fix(dir: string, options: FixOptions): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute, entry } = resolveDirectory(dir);
  const accounts = new Accounts();
  if (options.owner === undefined || options.owner === '') throw badOption('owner', '', 'fix needs an owner UID:GID');
  const spec = resolveUser(options.owner, accounts, 'owner');
  const { gcUser } = gcUserFor(dir, absolute, { identity: unsignedIdentity(entry.stat!), accounts });
  const owner = { uid: spec.uid, gid: spec.gid, user: accounts.userByUid(spec.uid)?.name, group: accounts.groupByGid(spec.gid)?.name };
  const dryRun = options.apply !== true;
  checkJournalOption(options.journal, dryRun, absolute);
  const changes = dryRun ? undefined : Applier.start(absolute, options.journal, { op: 'begin', root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION });
  let planned = 0;
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
  const report = fixReport(dir, { planned, dryRun, journal: options.journal, started }, changes);
  const ignored = changes?.ignored ?? 0;
  const findings = [
    // Root as the GC user touches any owner's chunk (CAP_FOWNER): another owner costs it nothing.
    ...(owner.uid === gcUser.uid || gcUser.uid === 0 ? [] : [notGcUserOwner(owner, gcUser, accounts)]),
    ...(ignored > 0 ? [chownIgnored(absolute, ignored, changes!.ignoredShown, owner)] : []),
    ...skippedFinding(dir, report.skipped - ignored, report.skippedExamples.filter((example) => !example.reason.endsWith(IGNORES_CHOWN)), owner),
  ];
  return { ...report, owner, gcUser, summary: summarize({ ...report, owner }), findings };
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

/** What fix and undo report alike; the caller adds the summary and findings. */
function fixReport(dir: string, run: { planned: number; dryRun: boolean; journal: string | undefined; started: bigint }, changes: Applier | undefined): FixReport {
  const skipped = changes?.skipped ?? 0;
  return {
    ok: run.dryRun ? run.planned === 0 : skipped === 0,
    command: 'fix',
    summary: '',
    dir,
    dryRun: run.dryRun,
    planned: run.planned,
    changed: changes?.changed ?? 0,
    skipped,
    skippedExamples: changes?.skippedExamples ?? [],
    journal: run.dryRun ? undefined : (run.journal ?? 'stdout'),
    durationMs: Number(process.hrtime.bigint() - run.started) / 1e6,
    findings: [],
  };
}

export function fixOwnership(dir: string, options: FixOptions): Promise<FixReport> {
  return publicCall('the fix', options?.signal, () => fix(dir, options ?? ({} as FixOptions)));
}

export interface UndoOptions {
  apply?: boolean;
  /** Journal of the undo itself (so an undo can be undone). Default: stdout. */
  journal?: string;
  onChange?: (record: ChownRecord) => void;
}

function undoSummary(planned: number, dryRun: boolean, changed: number, already: number, skipped: number): string {
  if (planned === 0) return 'DONE: the journal records no changes to revert';
  if (dryRun) return `DRY RUN: ${entries(planned)} would get their old owner back; run again with --apply`;
  if (skipped === 0) return `DONE: ${entries(changed)} got their old owner back${already ? ` (${already} had it already)` : ''}`;
  return `INCOMPLETE: ${changed} of ${entries(planned)} reverted, ${skipped} left`;
}

/** Revert the changes a journal records, newest first, each re-checked like a fix. */
async function undo(dir: string, journalFile: string, options: UndoOptions): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute } = resolveDirectory(dir);
  const journal = readJournal(journalFile);
  if (journal.begin.root !== absolute) throw badInput(journalFile, `the journal is for ${journal.begin.root}, not ${absolute}`);
  const dryRun = options.apply !== true;
  checkJournalOption(options.journal, dryRun, absolute);
  const begin = { op: 'begin' as const, root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION, undoOf: resolve(journalFile) };
  const changes = dryRun ? undefined : Applier.start(absolute, options.journal, begin);
  let planned = 0;
  try {
    for (const change of [...journal.changes].reverse()) {
      if (journal.failed.has(relKey(change.rel))) continue;
      // The path shown is made from the checked path, never taken from the journal.
      const path = relText(displayPath(dir, change.rel));
      planned++;
      const reverse: ChownRecord = { ...change.record, path, ...relFields(change.rel), from: change.record.to, to: change.record.from };
      options.onChange?.(reverse);
      changes?.add({ rel: change.rel, path, expected: { dev: change.dev, ino: change.ino, ...change.to }, to: change.from, record: reverse });
    }
  } catch (error) {
    changes?.discard();
    throw error;
  }
  changes?.close();
  const report = fixReport(dir, { planned, dryRun, journal: options.journal, started }, changes);
  return { ...report, summary: undoSummary(planned, dryRun, report.changed, changes?.already ?? 0, report.skipped) };
}

export function undoJournal(dir: string, journalFile: string, options: UndoOptions = {}): Promise<FixReport> {
  return publicCall('the undo', undefined, () => undo(dir, journalFile, options));
}
