/**
 * auditStore(dir, options): walks a whole chunk store or backup repository,
 * never following symlinks and not crossing into other filesystems unless
 * asked, and reports every entry the GC user would trip over. Resolves to a
 * report; never prints.
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { badInput, publicCall } from '../errors.js';
import { type FailOn, failOnOption, type Finding, formatMode, shellQuote, verdict } from '../findings.js';
import { FsError } from '../fs/errors.js';
import { identityOf } from '../fs/identity.js';
import type { RelPath } from '../fs/rel-path.js';
import { openDirOrBadInput, pathsFromRoot, resolveDirectory } from '../fs/safe-path.js';
import { entryKind, majorMinorOf, type Stat } from '../fs/stat.js';
import { libc } from '../native/libc.js';
import { Accounts, type AccountFiles } from '../system/passwd.js';
import { isUnmapped, userNamespace, type UserNamespace } from '../system/process.js';
import { datastoreOf } from '../system/datastores.js';
import { decideGcUser, inconsistentOwners } from '../system/gc-user.js';
import { filesystemAt, fuseWithoutAllowOther, ownersOnFilesystem } from '../system/filesystems.js';
import { hasMountsBelow, type MountInfo } from '../system/mounts.js';
import { type OwnedEntry, type Owner, type OwnerCensus, ownerKey, sampleOwners } from '../store/owners.js';
import { resolveUser, type UserInput, uidsWithoutAccount } from '../system/user-spec.js';
import { canSearch, type GcUser, permissionClass } from '../system/access.js';
import { classify } from './classify.js';
import { chooseConcurrency, type RingPlan, workersOption } from './concurrency.js';
import { AuditCollector, auditSummary } from './collect.js';
import { scanTree } from './pool.js';
import type { AuditReport } from './report.js';
import type { Offender, ScanBatch, ScanSettings } from './scan-dir.js';

export type { UserInput };

export interface AuditProgress {
  /** Directories scanned so far. */
  directories: number;
  entries: number;
  /** Chunk stores: prefix directories done and how many there are (65536 in a full store). */
  prefixDirs?: { done: number; total: number };
}

export interface AuditOptions {
  /** The owner every entry should have: `uid:gid`, a name, or `{ uid, gid }`. Default: the GC user. */
  owner?: UserInput;
  /**
   * The user GC runs as (readability, touchability). Default: `owner` when given, else the
   * server's `backup` user for a datastore in its datastore.cfg, else the owner of most of the
   * contents (never root while they belong to someone else), see docs/design.md.
   */
  asUser?: UserInput;
  /** `warning`: a warning fails the audit too (`ok` false), for a CI gate. Default `error`. */
  failOn?: FailOn;
  /** Descend into other filesystems mounted inside the tree. Default false. */
  crossFilesystems?: boolean;
  /**
   * Worker threads; 0 scans in the calling thread. Default: chosen from the filesystem (on a
   * local one the cores, at most 4; more on a network or FUSE one), see the report's `concurrency`.
   */
  workers?: number;
  signal?: AbortSignal;
  /** Every offending entry, as `find <dir>` would print its path (a Buffer when the name is not UTF-8). */
  onOffender?: (path: RelPath, offender: Offender) => void;
  onProgress?: (progress: AuditProgress) => void;
}

/** Test seams, not part of the public API: passwd and group files to read names from. */
export interface AuditHooks {
  accountFiles?: AccountFiles;
  /** The backup server's datastore list (default /etc/proxmox-backup/datastore.cfg). */
  datastoreConfig?: string;
  /** Scan through io_uring with this plan whatever the filesystem (the ring scanner on a local tree). */
  ring?: RingPlan;
}

/** The server layout's prefix directories, 0000 to ffff. */
const PREFIX_DIRS = 0x10000;

interface RootFacts {
  stat: Stat;
  layout: AuditReport['layout'];
  prefixDirs: number;
  /** `.chunks`, when it is a directory. */
  chunksDir?: OwnedEntry;
  /**
   * A sample of the owners, to choose the GC user before the scan counts them all;
   * only the top when options or the datastore's config say who GC runs as.
   */
  sample: OwnerCensus;
}

/**
 * The root, opened without following a symlink (a failure is bad input), whether it is a
 * chunk store, how many prefix directories to expect (for progress: `.chunks`' link
 * count says it where the filesystem counts subdirectories, ext4, xfs, tmpfs, else the
 * server's 65,536), and a sample of the owners.
 */
function inspectRoot(dir: string, absolute: string, sample: boolean): RootFacts {
  const root = openDirOrBadInput(dir, absolute);
  try {
    // A .chunks symlink still makes this a chunk store: one whose .chunks is reported as UNSAFE_PATH.
    const chunks = root.stat('.chunks');
    const kind = entryKind(chunks);
    const stat = root.statSelf();
    return {
      stat,
      layout: kind === 'directory' || kind === 'symlink' ? 'chunk-store' : 'repository',
      prefixDirs: kind === 'directory' && chunks!.nlink > 2 ? chunks!.nlink - 2 : PREFIX_DIRS,
      chunksDir: kind === 'directory' ? { uid: chunks!.uid, gid: chunks!.gid, mode: chunks!.mode } : undefined,
      // The sample is a few hundred stats one at a time: on a network filesystem, as many round trips before the scan starts.
      sample: sample ? sampleOwners(root, stat) : { top: { uid: stat.uid, gid: stat.gid, mode: stat.mode }, contents: new Map(), complete: false },
    };
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    throw badInput(dir, `cannot stat (${error.code})`);
  } finally {
    root.close();
  }
}

/** Progress as results arrive; the prefix-directory total is the expected count until `.chunks` is listed, then the count found. */
function progressSink(collector: AuditCollector, expectedPrefixDirs: number | undefined, onProgress: AuditOptions['onProgress']) {
  const progress: AuditProgress = { directories: 0, entries: 0 };
  if (expectedPrefixDirs !== undefined) progress.prefixDirs = { done: 0, total: expectedPrefixDirs };
  return (batch: ScanBatch): void => {
    collector.add(batch);
    progress.directories += batch.directories;
    progress.entries += batch.entries;
    const prefixDirs = progress.prefixDirs;
    if (prefixDirs) {
      // The collector counts the prefix directories listed so far (it needs them for the owner census too).
      if (batch.chunksRoot) prefixDirs.total = batch.chunksRoot === 'part' ? Math.max(prefixDirs.total, collector.prefixDirsListed) : collector.prefixDirsListed;
      prefixDirs.done += batch.prefixDirsDone;
    }
    onProgress?.(progress);
  };
}

/** Offenders held back during a scan that may be repeated; past the bound, the scan is repeated instead. */
class HeldOffenders {
  private static readonly LIMIT = 100_000;
  private readonly offenders: [RelPath, Offender][] = [];
  overflowed = false;

  readonly add = (path: RelPath, offender: Offender): void => {
    if (this.offenders.length < HeldOffenders.LIMIT) this.offenders.push([path, offender]);
    else this.overflowed = true;
  };

  replay(onOffender: NonNullable<AuditOptions['onOffender']>): void {
    for (const [path, offender] of this.offenders) onOffender(path, offender);
  }
}

interface Scan {
  collector: AuditCollector;
  settings: ScanSettings;
}

interface ScanContext {
  accounts: Accounts;
  namespace: UserNamespace;
  options: AuditOptions;
  /** Threads and each one's ring, as chosen for the filesystem. */
  workers: number;
  ring?: RingPlan;
  /** Nothing is mounted below the tree (ScanSettings#openSubdirsFirst). */
  openSubdirsFirst: boolean;
}

/** One pass over the tree, classifying every entry for this expected owner and GC user. */
async function scanOnce(dirs: { given: string; shown: string }, absolute: string, root: RootFacts, users: { expected: Owner; gcUser: GcUser }, context: ScanContext): Promise<Scan> {
  const { accounts, namespace, options } = context;
  const { stat, layout } = root;
  const settings: ScanSettings = {
    rootDevice: majorMinorOf(stat.dev),
    crossFilesystems: options.crossFilesystems === true,
    openSubdirsFirst: context.openSubdirsFirst,
    expected: users.expected,
    gcUser: users.gcUser,
    namespace: { identity: namespace.identity, overflowUid: namespace.overflowUid, overflowGid: namespace.overflowGid },
  };
  // The store's structure (root, .chunks, prefix directories) is reported on its own only when .chunks is a directory.
  const structure = root.chunksDir ? 'chunk-store' : 'repository';
  const collector = new AuditCollector({ displayRoot: dirs.shown, listRoot: dirs.given, expected: users.expected, gcUser: users.gcUser, accounts, namespace, layout: structure, onOffender: options.onOffender });
  const rootIssues = classify(stat.mode, stat.uid, stat.gid, stat.attributes, 'other', settings);
  const mtimeMs = Number(stat.mtimeNs / 1_000_000n);
  const ctimeMs = Number(stat.ctimeNs / 1_000_000n);
  collector.addRoot({ rel: '', mode: stat.mode, uid: stat.uid, gid: stat.gid, size: 0, mtimeMs, ctimeMs, dev: stat.dev, ino: stat.ino, attributes: stat.attributes, issues: rootIssues, role: 'other' });
  const task = { rel: '', role: layout === 'chunk-store' ? ('store-root' as const) : ('blob' as const) };
  const sink = progressSink(collector, layout === 'chunk-store' ? root.prefixDirs : undefined, options.onProgress);
  await scanTree({ path: absolute, identity: identityOf(stat), task, settings }, sink, { workers: context.workers, ring: context.ring, signal: options.signal });
  return { collector, settings };
}

async function audit(given: string, options: AuditOptions, hooks: AuditHooks): Promise<AuditReport> {
  const started = process.hrtime.bigint();
  workersOption(options.workers);
  const failOn = failOnOption(options.failOn);
  const accounts = new Accounts(hooks.accountFiles);
  const owner = options.owner === undefined ? undefined : resolveUser(options.owner, accounts, 'owner');
  const asUser = options.asUser === undefined ? undefined : resolveUser(options.asUser, accounts, 'asUser');
  const { absolute, resolvedFrom } = resolveDirectory(given);
  // Reports name absolute paths, whatever the working directory: a symlink given as the root by its own path.
  const dir = resolve(given);
  libc();
  const datastore = datastoreOf(absolute, hooks.datastoreConfig);
  const root = inspectRoot(given, absolute, !asUser && !owner && !datastore);
  const filesystem = filesystemAt(absolute);
  const { concurrency, ring } = chooseConcurrency(filesystem.mount?.fsType, options.workers, hooks.ring);
  const namespace = userNamespace();
  const self = { uid: process.geteuid!(), gid: process.getegid!() };
  const decide = (census: OwnerCensus) =>
    decideGcUser({
      dir,
      asUser: asUser && { spec: asUser, option: '--as-user' },
      owner: owner && { spec: owner, option: '--owner' },
      datastore,
      census,
      accounts,
      namespace,
      self,
    });
  let decision = decide(root.sample);
  const settled = decision.gcUser.from === 'option' || decision.gcUser.from === 'datastore.cfg';
  // While a second scan may follow, offenders are held back (a bounded number) and passed on once the owner is settled.
  const held = !settled && options.onOffender ? new HeldOffenders() : undefined;
  const firstOptions = held ? { ...options, onOffender: held.add } : options;
  // Opening a mount point would trigger an automount (a stat does not): with mounts below the tree, stat first.
  const context = { accounts, namespace, workers: concurrency.workers, ring, openSubdirsFirst: !hasMountsBelow(absolute) };
  let { collector, settings } = await scanOnce({ given, shown: dir }, absolute, root, decision, { ...context, options: firstOptions });
  let census = collector.census(root.chunksDir);
  if (!settled) {
    // A sample chose; now every entry is counted. When the counts choose another owner, scan again for that one.
    const counted = decide(census);
    const changed = ownerKey(counted.expected) !== ownerKey(decision.expected) || counted.gcUser.uid !== decision.gcUser.uid;
    if (changed || held?.overflowed) {
      ({ collector, settings } = await scanOnce({ given, shown: dir }, absolute, root, counted, { ...context, options }));
      census = collector.census(root.chunksDir);
    } else {
      held?.replay(options.onOffender!);
    }
    decision = counted;
  }
  const { expected, gcUser } = decision;

  const owners = collector.owners();
  const layoutFinding = root.layout === 'chunk-store' ? inconsistentOwners(absolute, census, expected, gcUser, accounts, namespace) : undefined;
  const predicted: Finding[] = [
    // First: it qualifies every chown below it.
    ...uidsWithoutAccount([['--as-user', asUser], ['--owner', owner]]),
    ...unreachableFor(gcUser, absolute, filesystem.mount, { accounts, namespace }),
    ...(layoutFinding ? [layoutFinding] : []),
    ...collector.findings(dir, owners),
  ];
  const findings = ownersOnFilesystem(predicted, filesystem, { path: absolute, gcUser: { uid: gcUser.uid, gid: expected.gid } });
  if (resolvedFrom) findings.push(rootSymlink(dir, resolvedFrom, absolute));
  const describe = (uid: number, gid: number) => ({ uid, gid, user: accounts.userByUid(uid)?.name, group: accounts.groupByGid(gid)?.name });
  const report: AuditReport = {
    ok: verdict(findings, failOn).ok,
    command: 'audit',
    summary: '',
    dir,
    layout: root.layout,
    expectedOwner: { ...describe(expected.uid, expected.gid), from: owner ? 'option' : 'gc user' },
    gcUser,
    crossFilesystems: settings.crossFilesystems,
    scanned: {
      entries: collector.entries,
      directories: owners.reduce((sum, entry) => sum + entry.directories, 0),
      bytes: owners.reduce((sum, entry) => sum + entry.bytes, 0),
    },
    offending: collector.offending,
    owners,
    concurrency,
    durationMs: Number(process.hrtime.bigint() - started) / 1e6,
    findings,
  };
  report.summary = auditSummary(report);
  return report;
}

/**
 * GC cannot use a store it cannot reach: a FUSE mount that only its mounter may enter
 * (no mode says so: the remedy is a remount), or the first directory above the store that
 * denies the GC user search permission (read by path, for this message only), with the
 * chmod that adds exactly that permission for that user's class.
 */
function unreachableFor(gcUser: GcUser, absolute: string, mount: MountInfo | undefined, context: { accounts: Accounts; namespace: UserNamespace }): Finding[] {
  const { accounts, namespace } = context;
  const fuse = mount && fuseWithoutAllowOther(mount, gcUser.uid, (uid) => accounts.describeUid(uid));
  if (fuse) return [fuse];
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
        remedy: `chmod ${permissionClass(stat.uid, stat.gid, gcUser)}+x ${shellQuote(ancestor)}${isUnmapped({ uid: stat.uid, gid: stat.gid }, namespace) ? '   # on the host, as root: its owner is not mapped in this user namespace, so no one here may change its mode' : ''}`,
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
