/**
 * auditStore(dir, options): walks a whole chunk store or backup repository,
 * never following symlinks and not crossing into other filesystems unless
 * asked, and reports every entry the GC user would trip over. Resolves to a
 * report; never prints.
 */
import { badInput } from '../errors.js';
import type { Finding } from '../findings.js';
import { loadNative, statxAt, STATX_SIZE } from '../native/libc.js';
import { readStatx, S_IFDIR, S_IFLNK, S_IFMT } from '../native/statx.js';
import { DirOpener, type DirOpenError } from './dir-opener.js';
import { resolveDirectory } from '../store/safe-path.js';
import { Accounts } from '../system/passwd.js';
import { userNamespace } from '../system/process.js';
import { resolveUser, type UserInput } from '../system/user-spec.js';

export type { UserInput };
import type { GcUser } from './access.js';
import { classify } from './classify.js';
import { AuditCollector, auditSummary } from './collect.js';
import { scanTree } from './pool.js';
import type { RelPath } from './rel-path.js';
import type { AuditReport } from './report.js';
import type { DirScanResult, Offender, ScanSettings } from './scan-dir.js';

export interface AuditProgress {
  /** Directories scanned so far. */
  directories: number;
  entries: number;
  /** Chunk stores: prefix directories done and how many there are (65536 in a full store). */
  prefixDirs?: { done: number; total: number };
}

export interface AuditOptions {
  /** The owner every entry should have: `uid:gid`, a name, or `{ uid, gid }`. Default: the owner of `dir`. */
  owner?: UserInput;
  /** The user GC runs as (readability, touchability). Default: the expected owner. */
  asUser?: UserInput;
  /** Descend into other filesystems mounted inside the tree. Default false. */
  crossFilesystems?: boolean;
  /** Worker threads; 0 scans in the calling thread. Default: available cores, at most 4. */
  workers?: number;
  signal?: AbortSignal;
  /** Every offending entry, as `find <dir>` would print its path (a Buffer when the name is not UTF-8). */
  onOffender?: (path: RelPath, offender: Offender) => void;
  onProgress?: (progress: AuditProgress) => void;
  /** Passwd and group files to read names from (tests; default /etc/passwd, /etc/group). */
  accountFiles?: { passwd?: string; group?: string };
}

export async function auditStore(dir: string, options: AuditOptions = {}): Promise<AuditReport> {
  const started = process.hrtime.bigint();
  const { absolute, resolvedFrom } = resolveDirectory(dir);
  loadNative({ at: true });
  const accounts = new Accounts(options.accountFiles);

  // The root, opened without following a symlink; all later opens are relative to it.
  const statBuf = Buffer.alloc(STATX_SIZE);
  let opener: DirOpener;
  try {
    opener = DirOpener.openRoot(absolute);
  } catch (error) {
    throw badInput(dir, (error as DirOpenError).detail);
  }
  let rootStat;
  let layout: AuditReport['layout'];
  try {
    if (statxAt(opener.rootFd, '', statBuf) !== 0) throw badInput(dir, 'cannot stat');
    rootStat = readStatx(statBuf);
    // A .chunks symlink still makes this a chunk store: one whose .chunks is reported as UNSAFE_PATH.
    const chunksType = statxAt(opener.rootFd, '.chunks', statBuf) === 0 ? readStatx(statBuf).mode & S_IFMT : 0;
    layout = chunksType === S_IFDIR || chunksType === S_IFLNK ? 'chunk-store' : 'repository';
  } finally {
    opener.close();
  }

  const expectedSpec = options.owner === undefined ? undefined : resolveUser(options.owner, accounts, '--owner');
  const expected = expectedSpec ?? { uid: rootStat.uid, gid: rootStat.gid };
  const gcSpec = options.asUser === undefined ? undefined : resolveUser(options.asUser, accounts, '--as-user');
  const gcBase = gcSpec ?? { uid: expected.uid, gid: expected.gid };
  const gcEntry = accounts.userByUid(gcBase.uid);
  const gcUser: GcUser = { uid: gcBase.uid, gid: gcBase.gid, groups: accounts.groupsOf(gcEntry, gcBase.gid), name: gcEntry?.name };
  const namespace = userNamespace();

  const settings: ScanSettings = {
    root: absolute,
    rootDev: rootStat.dev,
    crossFilesystems: options.crossFilesystems === true,
    expected,
    gcUser,
    namespace: { identity: namespace.identity, overflowUid: namespace.overflowUid, overflowGid: namespace.overflowGid },
  };
  const collector = new AuditCollector({ displayRoot: dir, expected, gcUser, accounts, namespace, onOffender: options.onOffender });
  const rootIssues = classify(rootStat.mode, rootStat.uid, rootStat.gid, rootStat.attributes, 'other', settings);
  collector.addRoot({ rel: '', ...rootStat, issues: rootIssues, role: 'other' });

  const progress: AuditProgress = { directories: 0, entries: 0 };
  if (layout === 'chunk-store') progress.prefixDirs = { done: 0, total: 0 };
  const sink = (result: DirScanResult, tallies: Parameters<AuditCollector['add']>[1]): void => {
    collector.add(result, tallies);
    if (!result.partial) progress.directories++;
    progress.entries += result.entries;
    if (progress.prefixDirs) {
      if (result.role === 'chunks-root') progress.prefixDirs.total += result.subdirs.length;
      if (result.role === 'prefix-dir' && !result.partial) progress.prefixDirs.done++;
    }
    options.onProgress?.(progress);
  };
  await scanTree(
    settings,
    { dev: rootStat.dev, ino: rootStat.ino },
    { rel: '', dev: rootStat.dev, ino: rootStat.ino, role: layout === 'chunk-store' ? 'store-root' : 'blob' },
    sink,
    { workers: options.workers, signal: options.signal },
  );

  const owners = collector.owners();
  const findings: Finding[] = collector.findings(dir, owners);
  if (resolvedFrom) {
    findings.push({
      code: 'STORE_ROOT_SYMLINK',
      severity: 'info',
      message: `${dir} is a symlink; it was resolved once to ${absolute} and audited there`,
      path: resolvedFrom,
      evidence: { target: absolute },
    });
  }
  const describe = (uid: number, gid: number) => ({ uid, gid, user: accounts.userByUid(uid)?.name, group: accounts.groupByGid(gid)?.name });
  const scanned = {
    entries: collector.entries,
    directories: owners.reduce((sum, owner) => sum + owner.directories, 0),
    bytes: owners.reduce((sum, owner) => sum + owner.bytes, 0),
  };
  const ok = !findings.some((finding) => finding.severity !== 'info');
  const report: AuditReport = {
    ok,
    command: 'audit',
    summary: '',
    dir,
    layout,
    expectedOwner: { ...describe(expected.uid, expected.gid), from: expectedSpec ? 'option' : 'directory' },
    gcUser: { ...describe(gcUser.uid, gcUser.gid), groups: gcUser.groups, from: gcSpec ? 'option' : 'expected owner' },
    crossFilesystems: settings.crossFilesystems,
    scanned,
    offending: collector.offending,
    owners,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    findings,
  };
  report.summary = auditSummary(report);
  return report;
}
