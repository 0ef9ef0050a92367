/**
 * auditStore(dir, options): walks a whole chunk store or backup repository,
 * never following symlinks and not crossing into other filesystems unless
 * asked, and reports every entry the GC user would trip over. Resolves to a
 * report; never prints.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { badInput, badOption, publicCall } from '../errors.js';
import { type Finding, formatMode, shellQuote } from '../findings.js';
import { FsError } from '../fs/errors.js';
import { identityOf } from '../fs/identity.js';
import type { RelPath } from '../fs/rel-path.js';
import { openDirOrBadInput, pathsFromRoot, resolveDirectory } from '../fs/safe-path.js';
import { entryKind, majorMinorOf, type Stat } from '../fs/stat.js';
import { libc } from '../native/libc.js';
import { Accounts, type AccountFiles } from '../system/passwd.js';
import { userNamespace } from '../system/process.js';
import { resolveUser, type UserInput } from '../system/user-spec.js';
import { canSearch, type GcUser, permissionClass } from './access.js';
import { classify } from './classify.js';
import { AuditCollector, auditSummary } from './collect.js';
import { scanTree } from './pool.js';
import type { AuditReport } from './report.js';
import type { DirScanResult, Offender, ScanSettings } from './scan-dir.js';

export type { UserInput };

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
}

/** Test seams, not part of the public API: passwd and group files to read names from. */
export interface AuditHooks {
  accountFiles?: AccountFiles;
}

/** The server layout's prefix directories, 0000 to ffff. */
const PREFIX_DIRS = 0x10000;

/**
 * The root, opened without following a symlink (a failure is bad input), whether it is a
 * chunk store, and how many prefix directories to expect (for progress): `.chunks`' link
 * count says it where the filesystem counts subdirectories (ext4, xfs, tmpfs), else the server's 65,536.
 */
function inspectRoot(dir: string, absolute: string): { stat: Stat; layout: AuditReport['layout']; prefixDirs: number } {
  const root = openDirOrBadInput(dir, absolute);
  try {
    // A .chunks symlink still makes this a chunk store: one whose .chunks is reported as UNSAFE_PATH.
    const chunks = root.stat('.chunks');
    const kind = entryKind(chunks);
    const prefixDirs = kind === 'directory' && chunks!.nlink > 2 ? chunks!.nlink - 2 : PREFIX_DIRS;
    return { stat: root.statSelf(), layout: kind === 'directory' || kind === 'symlink' ? 'chunk-store' : 'repository', prefixDirs };
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    throw badInput(dir, `cannot stat (${error.code})`);
  } finally {
    root.close();
  }
}

/** Who should own the tree (`owner`, else the owner of its root) and who GC runs as (`asUser`, else that owner). */
function resolveUsers(options: AuditOptions, rootStat: Stat, accounts: Accounts): { expected: { uid: number; gid: number }; gcUser: GcUser; fromOption: { owner: boolean; asUser: boolean } } {
  const expectedSpec = options.owner === undefined ? undefined : resolveUser(options.owner, accounts, 'owner');
  const expected = expectedSpec ? { uid: expectedSpec.uid, gid: expectedSpec.gid } : { uid: rootStat.uid, gid: rootStat.gid };
  const gcSpec = options.asUser === undefined ? undefined : resolveUser(options.asUser, accounts, 'asUser');
  const gcBase = gcSpec ?? expected;
  const gcEntry = accounts.userByUid(gcBase.uid);
  const gcUser: GcUser = { uid: gcBase.uid, gid: gcBase.gid, groups: accounts.groupsOf(gcEntry, gcBase.gid), name: gcEntry?.name };
  return { expected, gcUser, fromOption: { owner: expectedSpec !== undefined, asUser: gcSpec !== undefined } };
}

/** Progress as results arrive; the prefix-directory total is the expected count until `.chunks` is listed, then the count found. */
function progressSink(collector: AuditCollector, expectedPrefixDirs: number | undefined, onProgress: AuditOptions['onProgress']) {
  const progress: AuditProgress = { directories: 0, entries: 0 };
  if (expectedPrefixDirs !== undefined) progress.prefixDirs = { done: 0, total: expectedPrefixDirs };
  let listed = 0;
  return (result: DirScanResult, tallies: Parameters<AuditCollector['add']>[1]): void => {
    collector.add(result, tallies);
    if (!result.partial) progress.directories++;
    progress.entries += result.entries;
    const prefixDirs = progress.prefixDirs;
    if (prefixDirs) {
      if (result.role === 'chunks-root') {
        listed += result.subdirs.length;
        prefixDirs.total = result.partial ? Math.max(prefixDirs.total, listed) : listed;
      }
      if (result.role === 'prefix-dir' && !result.partial) prefixDirs.done++;
    }
    onProgress?.(progress);
  };
}

async function audit(dir: string, options: AuditOptions, hooks: AuditHooks): Promise<AuditReport> {
  const started = process.hrtime.bigint();
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 0 && options.workers <= 64)) {
    throw badOption('workers', options.workers, 'expected a whole number of worker threads, 0 to 64');
  }
  const { absolute, resolvedFrom } = resolveDirectory(dir);
  libc();
  const accounts = new Accounts(hooks.accountFiles);
  const { stat: rootStat, layout, prefixDirs } = inspectRoot(dir, absolute);
  const { expected, gcUser, fromOption } = resolveUsers(options, rootStat, accounts);
  const namespace = userNamespace();
  const settings: ScanSettings = {
    rootDevice: majorMinorOf(rootStat.dev),
    crossFilesystems: options.crossFilesystems === true,
    expected,
    gcUser,
    namespace: { identity: namespace.identity, overflowUid: namespace.overflowUid, overflowGid: namespace.overflowGid },
  };
  const collector = new AuditCollector({ displayRoot: dir, expected, gcUser, accounts, namespace, onOffender: options.onOffender });
  const rootIssues = classify(rootStat.mode, rootStat.uid, rootStat.gid, rootStat.attributes, 'other', settings);
  const mtimeMs = Number(rootStat.mtimeNs / 1_000_000n);
  const ctimeMs = Number(rootStat.ctimeNs / 1_000_000n);
  collector.addRoot({ rel: '', mode: rootStat.mode, uid: rootStat.uid, gid: rootStat.gid, size: 0, mtimeMs, ctimeMs, dev: rootStat.dev, ino: rootStat.ino, attributes: rootStat.attributes, issues: rootIssues, role: 'other' });
  const task = { rel: '', role: layout === 'chunk-store' ? ('store-root' as const) : ('blob' as const) };
  await scanTree({ path: absolute, identity: identityOf(rootStat), task, settings }, progressSink(collector, layout === 'chunk-store' ? prefixDirs : undefined, options.onProgress), { workers: options.workers, signal: options.signal });

  const owners = collector.owners();
  const findings: Finding[] = [...unreachableFor(gcUser, absolute, accounts), ...collector.findings(dir, owners)];
  if (resolvedFrom) findings.push(rootSymlink(dir, resolvedFrom, absolute));
  const describe = (uid: number, gid: number) => ({ uid, gid, user: accounts.userByUid(uid)?.name, group: accounts.groupByGid(gid)?.name });
  const report: AuditReport = {
    ok: !findings.some((finding) => finding.severity !== 'info'),
    command: 'audit',
    summary: '',
    dir,
    layout,
    expectedOwner: { ...describe(expected.uid, expected.gid), from: fromOption.owner ? 'option' : 'directory' },
    gcUser: { ...describe(gcUser.uid, gcUser.gid), groups: gcUser.groups, from: fromOption.asUser ? 'option' : 'expected owner' },
    crossFilesystems: settings.crossFilesystems,
    scanned: {
      entries: collector.entries,
      directories: owners.reduce((sum, owner) => sum + owner.directories, 0),
      bytes: owners.reduce((sum, owner) => sum + owner.bytes, 0),
    },
    offending: collector.offending,
    owners,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    findings,
  };
  report.summary = auditSummary(report);
  return report;
}

/**
 * GC cannot use a store it cannot reach: the first directory above it that denies the GC
 * user search permission (read by path, for this message only), with the chmod that adds
 * exactly that permission for that user's class.
 */
function unreachableFor(gcUser: GcUser, absolute: string, accounts: Accounts): Finding[] {
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch {
    return [];
  }
  for (const ancestor of pathsFromRoot(dirname(real))) {
    let stat;
    try {
      stat = lstatSync(ancestor);
    } catch {
      continue; // not ours to judge: the scan reports what it cannot open
    }
    if (canSearch(stat.mode, stat.uid, stat.gid, gcUser)) continue;
    return [
      {
        code: 'UNREADABLE',
        severity: 'error',
        message: `GC as uid ${accounts.describeUid(gcUser.uid)} (groups ${gcUser.groups.join(',')}) cannot reach ${absolute}: ${ancestor} (owner ${stat.uid}:${stat.gid}, mode ${formatMode(stat.mode)}) denies it search permission, so GC stops with "permission denied" before its first chunk`,
        path: ancestor,
        remedy: `chmod ${permissionClass(stat.uid, stat.gid, gcUser)}+x ${shellQuote(ancestor)}`,
        evidence: { blocked: ancestor, owner: stat.uid, gid: stat.gid, mode: formatMode(stat.mode), gcUser: { uid: gcUser.uid, groups: gcUser.groups } },
      },
    ];
  }
  return [];
}

function rootSymlink(dir: string, link: string, target: string): Finding {
  return {
    code: 'STORE_ROOT_SYMLINK',
    severity: 'info',
    message: `${dir} is a symlink; it was resolved once to ${target} and audited there`,
    path: link,
    evidence: { target },
  };
}

/** auditStore with test seams (not exported from the package). */
export function auditStoreWith(dir: string, options: AuditOptions = {}, hooks: AuditHooks = {}): Promise<AuditReport> {
  return publicCall('the audit', options?.signal, () => audit(dir, options ?? {}, hooks));
}

export function auditStore(dir: string, options: AuditOptions = {}): Promise<AuditReport> {
  return auditStoreWith(dir, options);
}
