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
  | 'OWNERSHIP_NOT_ENFORCED';

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

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((finding) => finding.severity === 'error');
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
