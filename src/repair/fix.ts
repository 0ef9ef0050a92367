/**
 * fixOwnership(dir, { owner }): gives every entry of a tree the expected
 * owner. A dry run unless `apply`. Each change is re-checked just before it
 * is made (same device, inode and owner as the audit saw), made with lchown
 * relative to a directory held open (never a symlink's target, never across
 * a mount), and journalled first. undoJournal() reverts a journal the same way.
 */
import { resolve } from 'node:path';
import { ISSUE } from '../audit/classify.js';
import { DirOpener, DirOpenError } from '../audit/dir-opener.js';
import { auditStore } from '../audit/index.js';
import { baseName, displayPath, parentRel, relText, type RelPath } from '../audit/rel-path.js';
import type { Offender } from '../audit/scan-dir.js';
import { badInput } from '../errors.js';
import { type Finding, shellQuote } from '../findings.js';
import { chownAt, statxAt, STATX_SIZE } from '../native/libc.js';
import { readStatx } from '../native/statx.js';
import { isWithin, resolveDirectory } from '../store/safe-path.js';
import { Accounts } from '../system/passwd.js';
import { resolveUser, type UserInput } from '../system/user-spec.js';
import { type ChownRecord, type JournalRecord, JournalWriter, readJournal, recordRel, relFields, JOURNAL_VERSION } from './journal.js';

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

export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface FixReport {
  /** Nothing left to change. */
  ok: boolean;
  command: 'fix';
  summary: string;
  dir: string;
  /** The owner given (undefined for an undo, which restores each entry's own old owner). */
  owner?: { uid: number; gid: number; user?: string; group?: string };
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

const EXAMPLES = 20;

interface Applier {
  changed: number;
  /** Already had the new owner (an undo run twice, or a chown that never happened). */
  already: number;
  skipped: number;
  skippedExamples: SkippedEntry[];
  apply(rel: RelPath, path: string, expected: { dev: string; ino: string; uid: number; gid: number }, to: { uid: number; gid: number }, record: ChownRecord): void;
  close(): void;
}

/** Opens the root before anything is written: a failure here is bad input. */
function openRoot(root: string): DirOpener {
  try {
    return DirOpener.openRoot(root);
  } catch (error) {
    throw badInput(root, (error as DirOpenError).detail);
  }
}

/** The root first, then the journal with its begin record; the root is closed again if the journal cannot be created. */
function startChanges(root: string, journalFile: string | undefined, begin: Extract<JournalRecord, { op: 'begin' }>): Applier {
  const opener = openRoot(root);
  let journal: JournalWriter;
  try {
    journal = new JournalWriter(journalFile);
  } catch (error) {
    opener.close();
    throw error;
  }
  journal.write(begin);
  return applier(opener, journal);
}

/** Makes one change at a time, relative to directories opened without following symlinks. */
function applier(opener: DirOpener, journal: JournalWriter): Applier {
  const rootDev = opener.identity().dev;
  const buf = Buffer.alloc(STATX_SIZE);
  const state: Applier = {
    changed: 0,
    already: 0,
    skipped: 0,
    skippedExamples: [],
    apply(rel, path, expected, to, record) {
      const skip = (reason: string): void => {
        state.skipped++;
        if (state.skippedExamples.length < EXAMPLES) state.skippedExamples.push({ path, reason });
      };
      const isRoot = rel === '' || (Buffer.isBuffer(rel) && rel.length === 0);
      let parentFd: number;
      try {
        parentFd = opener.open(isRoot ? '' : parentRel(rel));
      } catch (error) {
        skip(error instanceof DirOpenError ? `its directory ${error.message}` : String(error));
        return;
      }
      const name = isRoot ? '' : baseName(rel);
      const errno = statxAt(parentFd, name, buf);
      if (errno !== 0) {
        skip(`gone since the audit (errno ${errno})`);
        return;
      }
      const now = readStatx(buf);
      if (now.dev !== expected.dev || String(now.ino) !== expected.ino) {
        skip(`replaced since the audit (inode ${expected.dev}/${expected.ino} is now ${now.dev}/${now.ino})`);
        return;
      }
      if (now.dev !== rootDev) {
        skip('on another filesystem');
        return;
      }
      if (now.uid === to.uid && now.gid === to.gid) {
        state.already++;
        return;
      }
      if (now.uid !== expected.uid || now.gid !== expected.gid) {
        skip(`owner changed since the audit (${expected.uid}:${expected.gid} is now ${now.uid}:${now.gid})`);
        return;
      }
      journal.write(record);
      const result = chownAt(parentFd, name, to.uid, to.gid);
      if (!result.ok) {
        journal.write({ op: 'failed', ...relFields(rel), errno: result.code });
        skip(`chown failed with ${result.code}${result.code === 'EPERM' ? ' (immutable flag, an unmapped owner, or no CAP_CHOWN)' : ''}`);
        return;
      }
      state.changed++;
    },
    close() {
      opener.close();
      journal.close();
    },
  };
  return state;
}

function ownerOf(spec: UserInput, accounts: Accounts): { uid: number; gid: number; user?: string; group?: string } {
  const parsed = resolveUser(spec, accounts, '--owner');
  return { uid: parsed.uid, gid: parsed.gid, user: accounts.userByUid(parsed.uid)?.name, group: accounts.groupByGid(parsed.gid)?.name };
}

function checkJournalPlace(journal: string | undefined, root: string): void {
  if (journal === undefined) return;
  if (isWithin(resolve(journal), root)) throw badInput(journal, 'the journal must be outside the directory being fixed');
}

function summarize(report: Omit<FixReport, 'summary' | 'ok'> & { owner: { uid: number; gid: number } }): string {
  const target = `${report.owner.uid}:${report.owner.gid}`;
  if (report.planned === 0) return `DONE: every entry is owned by ${target}, nothing to change`;
  if (report.dryRun) return `DRY RUN: ${report.planned} entries would be changed to ${target}; run again with --apply`;
  if (report.skipped === 0) return `DONE: ${report.changed} entries changed to ${target}`;
  return `INCOMPLETE: ${report.changed} of ${report.planned} entries changed to ${target}, ${report.skipped} left`;
}

function skippedFinding(dir: string, report: Pick<FixReport, 'skipped' | 'skippedExamples'> & { owner: { uid: number; gid: number } }): Finding[] {
  if (report.skipped === 0) return [];
  return [
    {
      code: 'FOREIGN_OWNER',
      severity: 'error',
      message: `${report.skipped} entries still have another owner than ${report.owner.uid}:${report.owner.gid}: ${report.skippedExamples[0]?.reason ?? ''}`,
      path: report.skippedExamples[0]?.path,
      remedy: `chunkguard audit ${shellQuote(dir)} --owner ${report.owner.uid}:${report.owner.gid} --list`,
      evidence: { skipped: report.skippedExamples },
    },
  ];
}

export async function fixOwnership(dir: string, options: FixOptions): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute } = resolveDirectory(dir);
  const accounts = new Accounts();
  if (options.owner === undefined || options.owner === '') throw badInput('--owner', 'fix needs --owner UID:GID');
  const owner = ownerOf(options.owner, accounts);
  const dryRun = options.apply !== true;
  if (dryRun && options.journal !== undefined) throw badInput(options.journal, '--journal records changes: it needs --apply');
  checkJournalPlace(options.journal, absolute);
  const changes = dryRun ? undefined : startChanges(absolute, options.journal, { op: 'begin', root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION });
  let planned = 0;
  try {
    await auditStore(dir, {
      owner: { uid: owner.uid, gid: owner.gid },
      crossFilesystems: false,
      workers: options.workers,
      signal: options.signal,
      onOffender: (path: RelPath, offender: Offender) => {
        if (!(offender.issues & (ISSUE.FOREIGN | ISSUE.NOT_MAPPED))) return;
        planned++;
        const record: ChownRecord = {
          op: 'chown',
          path: relText(path),
          ...relFields(offender.rel),
          dev: offender.dev,
          ino: String(offender.ino),
          from: `${offender.uid}:${offender.gid}`,
          to: `${owner.uid}:${owner.gid}`,
        };
        options.onChange?.(record);
        changes?.apply(offender.rel, relText(path), { dev: offender.dev, ino: String(offender.ino), uid: offender.uid, gid: offender.gid }, owner, record);
      },
    });
  } finally {
    changes?.close();
  }
  const partial = {
    command: 'fix' as const,
    dir,
    owner,
    dryRun,
    planned,
    changed: changes?.changed ?? 0,
    skipped: changes?.skipped ?? 0,
    skippedExamples: changes?.skippedExamples ?? [],
    journal: dryRun ? undefined : (options.journal ?? 'stdout'),
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    findings: [] as Finding[],
  };
  partial.findings = skippedFinding(dir, partial);
  return { ...partial, ok: dryRun ? planned === 0 : partial.skipped === 0, summary: summarize(partial) };
}

export interface UndoOptions {
  apply?: boolean;
  /** Journal of the undo itself (so an undo can be undone). Default: stdout. */
  journal?: string;
  onChange?: (record: ChownRecord) => void;
}

/** Revert the changes a journal records, newest first, each re-checked like a fix. */
export async function undoJournal(dir: string, journalFile: string, options: UndoOptions = {}): Promise<FixReport> {
  const started = process.hrtime.bigint();
  const { absolute } = resolveDirectory(dir);
  const { begin, chowns, failed } = readJournal(journalFile);
  if (begin && begin.root !== absolute) throw badInput(journalFile, `the journal is for ${begin.root}, not ${absolute}`);
  const dryRun = options.apply !== true;
  if (dryRun && options.journal !== undefined) throw badInput(options.journal, '--journal records changes: it needs --apply');
  checkJournalPlace(options.journal, absolute);
  const changes = dryRun ? undefined : startChanges(absolute, options.journal, { op: 'begin', root: absolute, time: new Date().toISOString(), version: JOURNAL_VERSION, undoOf: resolve(journalFile) });
  let planned = 0;
  try {
    for (const record of [...chowns].reverse()) {
      if (failed.has(record.relBase64 ?? record.rel)) continue;
      const rel = recordRel(record);
      const [toUid, toGid] = record.to.split(':').map(Number) as [number, number];
      const [fromUid, fromGid] = record.from.split(':').map(Number) as [number, number];
      const path = relText(displayPath(dir, rel));
      planned++;
      const reverse: ChownRecord = { ...record, path, from: record.to, to: record.from };
      options.onChange?.(reverse);
      changes?.apply(rel, path, { dev: record.dev, ino: record.ino, uid: toUid, gid: toGid }, { uid: fromUid, gid: fromGid }, reverse);
    }
  } finally {
    changes?.close();
  }
  const changed = changes?.changed ?? 0;
  const already = changes?.already ?? 0;
  const skipped = changes?.skipped ?? 0;
  const partial = {
    command: 'fix' as const,
    dir,
    dryRun,
    planned,
    changed,
    skipped,
    skippedExamples: changes?.skippedExamples ?? [],
    journal: dryRun ? undefined : (options.journal ?? 'stdout'),
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    findings: [] as Finding[],
  };
  const summary =
    planned === 0
      ? 'DONE: the journal records no changes to revert'
      : dryRun
        ? `DRY RUN: ${planned} entries would get their old owner back; run again with --apply`
        : skipped === 0
          ? `DONE: ${changed} entries got their old owner back${already ? ` (${already} had it already)` : ''}`
          : `INCOMPLETE: ${changed} of ${planned} entries reverted, ${skipped} left`;
  return { ...partial, ok: dryRun ? planned === 0 : skipped === 0, summary };
}
