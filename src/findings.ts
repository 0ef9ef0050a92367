import { badOption } from './errors.js';
import { isWithin } from './fs/safe-path.js';

/** Finding codes are stable API: add new ones, never rename. */
export type FindingCode =
  | 'ATIME_NOT_UPDATED'
  | 'INODE_CHANGED'
  | 'TOUCH_EPERM_WRONG_OWNER'
  | 'TOUCH_EPERM_IMMUTABLE'
  | 'TOUCH_FAILED'
  | 'CHUNK_WRITE_FAILED'
  | 'READ_ONLY_FS'
  | 'CHUNK_DIR_NOT_WRITABLE'
  | 'CLOCK_SKEW'
  | 'UNSAFE_PATH'
  | 'FOREIGN_OWNER'
  | 'OWNER_NOT_MAPPED'
  | 'UNREADABLE'
  | 'NO_PASSWD_ENTRY'
  | 'RAN_AS_STORE_OWNER'
  | 'RAN_WITH_CAP_FOWNER'
  | 'PREFIX_DIR_CREATED'
  | 'CHUNK_REPLACED'
  | 'STORE_ROOT_SYMLINK'
  | 'NON_REGULAR_FILE'
  | 'MOUNT_NOT_CROSSED'
  | 'NETWORK_FILESYSTEM'
  | 'FUSE_FILESYSTEM'
  | 'CHUNK_CORRUPT'
  | 'CHUNK_UNVERIFIED'
  | 'STALE_TEMP_REMOVED'
  | 'INCONSISTENT_OWNER'
  | 'NOT_GC_USER'
  | 'FUSE_NO_ALLOW_OTHER'
  | 'TOUCH_SETS_MTIME'
  | 'NO_FILE_OWNERS'
  | 'CHOWN_IGNORED'
  | 'OWNERSHIP_NOT_ENFORCED'
  | 'GC_WOULD_ABORT'
  | 'GC_WOULD_DELETE_REFERENCED'
  | 'CHUNK_MISSING'
  | 'INDEX_OUTSIDE_SCHEME'
  | 'INDEX_NOT_READ'
  | 'GC_OVERDUE'
  | 'BACKUP_RUNNING'
  | 'TEMP_LEFTOVERS';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** One sentence an operator can act on. */
  message: string;
  path?: string;
  /** A command that fixes the cause, ready to paste. */
  remedy?: string;
  /** The facts the message is based on. */
  evidence?: Record<string, unknown>;
}

/** The least severity that fails a command: `error` (the default), or `warning` for a CI gate that fails on warnings too. */
export type FailOn = 'error' | 'warning';

const FAILING: Record<FailOn, readonly Severity[]> = { error: ['error'], warning: ['error', 'warning'] };

/** The `failOn` option, checked: undefined is `error`. */
export function failOnOption(value: unknown): FailOn {
  if (value === undefined) return 'error';
  if (value === 'error' || value === 'warning') return value;
  throw badOption('failOn', value, "expected 'error' or 'warning'");
}

/**
 * The one rule of every command: a run is ok (exit 0) unless a finding fails it, an
 * `error`, or with failOn `warning` a warning too. `failedBy` is the first finding
 * that fails it, errors before warnings, for the verdict line.
 */
export function verdict(findings: readonly Finding[], failOn: FailOn = 'error'): { ok: boolean; failedBy?: Finding } {
  for (const severity of FAILING[failOn]) {
    const failedBy = findings.find((finding) => finding.severity === severity);
    if (failedBy) return { ok: false, failedBy };
  }
  return { ok: true };
}

/** Permission bits as reports show them: 0750, 0600, 4755. */
export function formatMode(mode: number | bigint): string {
  return `0${(Number(mode) & 0o7777).toString(8).padStart(3, '0')}`;
}

/** Quote a path for a POSIX shell, so a remedy can be pasted as is. */
export function shellQuote(value: string): string {
  if (/^[\w@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The word that agrees with a count: agree(1, 'its', 'their') is 'its'. */
export function agree(count: number, one: string, many = `${one}s`): string {
  return count === 1 ? one : many;
}

/** "1 entry", "3 entries": a count with its noun, for messages and summaries. */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${agree(count, one, many)}`;
}

/** "2 errors, 1 warning": the findings that can fail a command, counted for a summary; '' when there are none. */
export function severityCounts(findings: readonly Finding[]): string {
  return (['error', 'warning'] as const)
    .map((severity) => [severity, findings.filter((finding) => finding.severity === severity).length] as const)
    .filter(([, count]) => count > 0)
    .map(([severity, count]) => plural(count, severity))
    .join(', ');
}

/** Where a pasted fix remedy keeps its journal: the first of these outside the directory it fixes. */
const JOURNAL_DIRS = ['/var/tmp', '/tmp'];

/**
 * ` --journal FILE` for a `chunkguard fix --apply` a finding offers: a new file named by
 * the time it runs, so a pasted remedy can be undone (`--undo FILE`; `ls
 * /var/tmp/chunkguard-fix-*`) without the output it printed at hand.
 */
export function journalFlag(dir: string): string {
  const journalDir = JOURNAL_DIRS.find((candidate) => !isWithin(candidate, dir));
  return journalDir ? ` --journal ${journalDir}/chunkguard-fix-$(date +%Y%m%d-%H%M%S-%N).jsonl` : '';
}

/** The remedy that gives every entry under `dir` (absolute) the owner `owner` (`uid:gid`), journalled. */
export function fixRemedy(dir: string, owner: string): string {
  return `chunkguard fix ${shellQuote(dir)} --owner ${owner} --apply${journalFlag(dir)}`;
}
