/**
 * Gathers scan results in the main thread into what an investigator needs:
 * per-owner counts, bytes, windows and bursts, and one finding per problem
 * and owner (with counts and example paths, never one finding per file).
 * Memory stays bounded: tallies per owner, minute buckets, a few examples.
 * The report does not depend on the order results arrive in (threads, stats
 * in flight): examples are the smallest paths, findings and owners sorted.
 */
import { agree, type Finding, type FindingCode, fixRemedy, formatMode, plural, type Severity, severityCounts, shellQuote } from '../findings.js';
import { fileType, S_IFDIR, S_IFMT } from '../fs/stat.js';
import type { Accounts } from '../system/passwd.js';
import { ownerRemedy } from '../system/gc-user.js';
import { formatIdMap, type UserNamespace } from '../system/process.js';
import { type OwnedEntry, type OwnerCensus, ownerKey, type PrefixDirCensus, tally, tallyPrefixDir, totalOf } from '../store/owners.js';
import { canTouch, canWriteDirectory, type GcUser } from '../system/access.js';
import { ISSUE } from './classify.js';
import type { AuditReport, OwnerSummary } from './report.js';
import { displayPath, relBytes, relText, type RelPath } from '../fs/rel-path.js';
import type { Offender, Problem, ProblemKind, ScanBatch } from './scan-dir.js';
import { BurstTracker, formatWindow, isoSeconds, OwnerTallies } from './tally.js';

const EXAMPLES = 5;

/** The code and severity each kind of problem is reported with (also for the ones past the examples). */
const PROBLEM_FINDING: Record<ProblemKind, { code: FindingCode; severity: Severity }> = {
  'mount-not-crossed': { code: 'MOUNT_NOT_CROSSED', severity: 'info' },
  unsafe: { code: 'UNSAFE_PATH', severity: 'error' },
  unlistable: { code: 'UNREADABLE', severity: 'error' },
};
const MAX_BURSTS_REPORTED = 20;

export interface CollectContext {
  /** The directory, absolute: every path of the report is under it. */
  displayRoot: string;
  /** The directory as the user gave it: `onOffender` (--list) gets paths under it, as find prints them. */
  listRoot: string;
  expected: { uid: number; gid: number };
  gcUser: GcUser;
  accounts: Accounts;
  namespace: UserNamespace;
  /** A chunk store's own directories (root, .chunks, prefix directories) are reported as INCONSISTENT_OWNER, not FOREIGN_OWNER. */
  layout: 'chunk-store' | 'repository';
  /** Called for every offending entry, in scan order (for --list). */
  onOffender?: (path: RelPath, offender: Offender) => void;
}

interface Group {
  code: FindingCode;
  uid: number;
  gid: number;
  count: number;
  directories: number;
  /** Directories the GC user cannot create or delete entries in. */
  unwritableDirectories: number;
  bytes: number;
  examples: string[];
  /** The lowest modes, distinct. */
  modes: string[];
  types: Map<string, number>;
}

const MODES = 8;

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byRel = (a: Problem, b: Problem): number => Buffer.compare(relBytes(a.rel), relBytes(b.rel));

/** Keep the `limit` smallest values in `kept`, in order (and each once, when `distinct`). */
function keepSmallest<T>(kept: T[], value: T, limit: number, compare: (a: T, b: T) => number, distinct = false): void {
  let at = kept.length;
  while (at > 0 && compare(value, kept[at - 1]!) < 0) at--;
  if (at >= limit || (distinct && at > 0 && compare(value, kept[at - 1]!) === 0)) return;
  kept.splice(at, 0, value);
  if (kept.length > limit) kept.pop();
}


/**
 * chattr over exactly the flagged entries: by name when the examples are all of them,
 * else found again by their flags, which find cannot test: lsattr prints them before
 * each path (a path with a newline in it would be split; chunk stores have none).
 */
export function immutableRemedy(dir: string, group: { count: number; examples: readonly string[] }): string {
  if (group.count <= group.examples.length) return `chattr -i -a ${group.examples.map(shellQuote).join(' ')}`;
  return `find ${shellQuote(dir)} -xdev \\( -type f -o -type d \\) -exec lsattr -d {} + | awk '$1 ~ /[ia]/ { sub(/^[^ ]+ /, ""); print }' | xargs -r -d '\\n' chattr -i -a`;
}

/**
 * What another owner costs GC: a file's atime needs the owner (or CAP_FOWNER) to be
 * updated, whatever the mode; a directory needs write and search permission for GC
 * to delete the chunks in it and for new ones to be written there. `blocks`: GC
 * fails on some of them.
 */
function foreignConsequence(group: Group, touchable: boolean): { blocks: boolean; consequence: string } {
  const files = group.count - group.directories;
  const directories = group.directories;
  const unwritable = group.unwritableDirectories;
  const both = files > 0 && directories > 0;
  const parts: string[] = [];
  if (files > 0) {
    const them = agree(files, 'it', 'them');
    if (touchable) parts.push(`can still mark ${both ? agree(files, 'the file', 'the files') : them}`);
    else parts.push(`cannot update ${both ? agree(files, "the file's", "the files'") : agree(files, 'its', 'their')} atime (EPERM), so it stops there or deletes ${them} as unused`);
  }
  if (directories > 0) {
    const them = both ? agree(directories, 'the directory', 'the directories') : agree(directories, 'it', 'them');
    if (unwritable === 0) parts.push(`can still create and delete entries in ${them}`);
    else parts.push(`cannot create or delete entries in ${unwritable < directories ? `${unwritable} of ${them}` : them} (no write permission for it), so it cannot delete unused chunks there and no new one can be written there`);
  }
  const blocks = (files > 0 && !touchable) || unwritable > 0;
  const differ = blocks ? '' : `, but ${agree(group.count, 'it differs', 'they differ')} from the rest of the store`;
  return { blocks, consequence: `${parts.join(', and ')}${differ}` };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export class AuditCollector {
  readonly tallies = new OwnerTallies();
  entries = 0;
  directories = 0;
  offending = 0;
  private readonly groups = new Map<string, Group>();
  private readonly bursts = new Map<string, { mtime: BurstTracker; ctime: BurstTracker }>();
  private readonly ownerExamples = new Map<string, string[]>();
  /** Per kind, the first directories by path, and how many in all. */
  private readonly problems = new Map<ProblemKind, Problem[]>();
  private readonly problemCounts = new Map<ProblemKind, number>();
  /** The directories whose entries could not be stat'ed, reported so far (by their own scan and by each subdirectory). */
  private readonly repeatedProblems = new Set<string>();
  /** Chunk stores: prefix directories listed, and the ones with another owner (by uid:gid). */
  private listedPrefixDirs = 0;
  /** Of those, the ones stat'ed and found to be directories of this filesystem: the census counts these. */
  private countedPrefixDirs = 0;
  private readonly foreignPrefixDirs: PrefixDirCensus = { owners: new Map(), modes: new Map() };
  /** Chunk stores: entries of prefix directories, and the ones with another owner (by uid:gid). */
  private chunksListed = 0;
  private readonly foreignChunks = new Map<string, number>();
  private chunksDirOwner: OwnedEntry | undefined;
  private rootEntry: OwnedEntry | undefined;

  constructor(private readonly ctx: CollectContext) {}

  add(batch: ScanBatch): void {
    this.tallies.merge(batch.tallies);
    this.entries += batch.entries;
    this.directories += batch.directories;
    this.listedPrefixDirs += batch.prefixDirsListed;
    this.countedPrefixDirs += batch.prefixDirsCounted;
    this.chunksListed += batch.chunksListed;
    for (const offender of batch.offenders) this.addOffender(offender);
    for (const problem of batch.problems) {
      if (problem.repeated) {
        // Reported by each subdirectory of a directory whose entries cannot be stat'ed (scan-dir: parentCannotStat).
        const key = relBytes(problem.rel).toString('latin1');
        if (this.repeatedProblems.has(key)) continue;
        this.repeatedProblems.add(key);
      }
      this.problemCounts.set(problem.kind, (this.problemCounts.get(problem.kind) ?? 0) + 1);
      let kept = this.problems.get(problem.kind);
      if (!kept) this.problems.set(problem.kind, (kept = []));
      keepSmallest(kept, problem, EXAMPLES, byRel);
    }
  }

  /** Prefix directories listed so far (the audit's progress total, once `.chunks` is listed). */
  get prefixDirsListed(): number {
    return this.listedPrefixDirs;
  }

  /** The audited directory itself, which no scan lists. */
  addRoot(offender: Offender): void {
    this.entries++;
    this.tallies.add(offender.uid, offender.gid, 0, true, offender.mtimeMs, offender.ctimeMs);
    this.rootEntry = { uid: offender.uid, gid: offender.gid, mode: offender.mode };
    if (offender.issues !== 0) this.addOffender(offender, true);
  }

  /**
   * Every owner counted: the top directory, the entries below it, and for a
   * chunk store `.chunks` (its stat from before the scan) and the prefix directories.
   */
  census(chunksDir: OwnedEntry | undefined): OwnerCensus {
    const top = this.rootEntry!;
    const contents = new Map([...this.tallies.byOwner].map(([key, tally]) => [key, tally.count]));
    const own = ownerKey(top);
    if (contents.get(own) === 1) contents.delete(own);
    else contents.set(own, contents.get(own)! - 1);
    const census: OwnerCensus = { top, contents, complete: true };
    if (this.ctx.layout !== 'chunk-store' || !chunksDir) return census;
    census.chunksDir = this.chunksDirOwner ?? chunksDir;
    // The rest have the expected owner (their mode is not kept: it only matters for the ones that differ).
    census.prefixDirs = { owners: this.withExpected(this.foreignPrefixDirs.owners, this.countedPrefixDirs), modes: new Map(this.foreignPrefixDirs.modes) };
    census.chunks = this.withExpected(this.foreignChunks, this.chunksListed);
    return census;
  }

  /** The counts of the entries with another owner, and the rest of `listed` as the expected owner's. */
  private withExpected(foreign: Map<string, number>, listed: number): Map<string, number> {
    const counts = new Map(foreign);
    const rest = listed - totalOf(foreign);
    if (rest > 0) tally(counts, ownerKey(this.ctx.expected), rest);
    return counts;
  }

  private addOffender(offender: Offender, isRoot = false): void {
    this.offending++;
    this.ctx.onOffender?.(displayPath(this.ctx.listRoot, offender.rel), offender);
    const text = relText(displayPath(this.ctx.displayRoot, offender.rel));
    const owner = `${offender.uid}:${offender.gid}`;
    if (offender.issues & (ISSUE.FOREIGN | ISSUE.NOT_MAPPED)) {
      let trackers = this.bursts.get(owner);
      if (!trackers) this.bursts.set(owner, (trackers = { mtime: new BurstTracker(), ctime: new BurstTracker() }));
      trackers.mtime.add(offender.mtimeMs);
      trackers.ctime.add(offender.ctimeMs);
      let examples = this.ownerExamples.get(owner);
      if (!examples) this.ownerExamples.set(owner, (examples = []));
      keepSmallest(examples, text, EXAMPLES, byText);
    }
    const perOwner = (code: FindingCode): void => this.group(code, offender, text, true);
    const unmapped = (offender.issues & ISSUE.NOT_MAPPED) !== 0;
    const layoutDir = this.isLayoutDirectory(offender, isRoot);
    if (offender.issues & (ISSUE.FOREIGN | ISSUE.NOT_MAPPED)) this.countOwner(offender, owner);
    // The store's own directories with another owner are INCONSISTENT_OWNER (one finding, a narrow chown), not FOREIGN_OWNER.
    if (offender.issues & ISSUE.FOREIGN && !layoutDir) perOwner('FOREIGN_OWNER');
    if (unmapped) perOwner('OWNER_NOT_MAPPED');
    // An unmapped owner's entries have one remedy, on the host (OWNER_NOT_MAPPED): no chmod or chown here could work.
    if (offender.issues & ISSUE.UNREADABLE && !unmapped) perOwner('UNREADABLE');
    if (offender.issues & ISSUE.UNTOUCHABLE && !unmapped) perOwner('TOUCH_EPERM_WRONG_OWNER');
    if (offender.issues & ISSUE.IMMUTABLE) this.group('TOUCH_EPERM_IMMUTABLE', offender, text, false);
    if (offender.issues & ISSUE.NON_REGULAR) this.group('NON_REGULAR_FILE', offender, text, false);
    if (offender.issues & ISSUE.SYMLINK_IN_LAYOUT) this.group('UNSAFE_PATH', offender, text, false);
  }

  /** The store root, `.chunks` or a prefix directory of a chunk store. */
  private isLayoutDirectory(offender: Offender, isRoot: boolean): boolean {
    if (this.ctx.layout !== 'chunk-store' || (offender.mode & S_IFMT) !== S_IFDIR) return false;
    return isRoot || offender.role === 'chunks-dir' || offender.role === 'prefix-dir';
  }

  /** An entry of the store's structure with another owner, for the census (the rest have the expected one). */
  private countOwner(offender: Offender, key: string): void {
    if (this.ctx.layout !== 'chunk-store') return;
    const isDirectory = (offender.mode & S_IFMT) === S_IFDIR;
    if (offender.role === 'chunks-dir' && isDirectory) this.chunksDirOwner = { uid: offender.uid, gid: offender.gid, mode: offender.mode };
    if (offender.role === 'prefix-dir' && isDirectory) tallyPrefixDir(this.foreignPrefixDirs, key, offender.mode);
    if (offender.role === 'chunk') tally(this.foreignChunks, key);
  }

  private group(code: FindingCode, offender: Offender, path: string, byOwner: boolean): void {
    const key = byOwner ? `${code}|${offender.uid}:${offender.gid}` : code;
    let group = this.groups.get(key);
    if (!group) {
      group = { code, uid: offender.uid, gid: offender.gid, count: 0, directories: 0, unwritableDirectories: 0, bytes: 0, examples: [], modes: [], types: new Map() };
      this.groups.set(key, group);
    }
    group.count++;
    const isDirectory = (offender.mode & S_IFMT) === S_IFDIR;
    if (isDirectory) {
      group.directories++;
      if (!canWriteDirectory(offender.mode, offender.uid, offender.gid, this.ctx.gcUser)) group.unwritableDirectories++;
    } else {
      group.bytes += offender.size;
    }
    keepSmallest(group.examples, path, EXAMPLES, byText);
    keepSmallest(group.modes, formatMode(offender.mode), MODES, byText, true);
    const type = fileType(offender.mode);
    group.types.set(type, (group.types.get(type) ?? 0) + 1);
  }

  owners(): OwnerSummary[] {
    const { accounts, expected } = this.ctx;
    return [...this.tallies.byOwner.values()]
      .sort((a, b) => b.count - a.count || a.uid - b.uid || a.gid - b.gid)
      .map((tally) => {
        const key = `${tally.uid}:${tally.gid}`;
        const trackers = this.bursts.get(key);
        const summary: OwnerSummary = {
          uid: tally.uid,
          gid: tally.gid,
          user: accounts.userByUid(tally.uid)?.name,
          group: accounts.groupByGid(tally.gid)?.name,
          expected: tally.uid === expected.uid && tally.gid === expected.gid,
          entries: tally.count,
          directories: tally.directories,
          bytes: tally.bytes,
          mtime: { from: isoSeconds(tally.mtimeMin), to: isoSeconds(tally.mtimeMax) },
          ctime: { from: isoSeconds(tally.ctimeMin), to: isoSeconds(tally.ctimeMax) },
          examples: this.ownerExamples.get(key) ?? [],
        };
        if (trackers) {
          summary.bursts = {
            mtime: trackers.mtime.bursts(),
            ctime: trackers.ctime.bursts(),
            complete: !trackers.mtime.overflowed && !trackers.ctime.overflowed,
          };
        }
        return summary;
      });
  }

  findings(dir: string, owners: OwnerSummary[]): Finding[] {
    const findings: Finding[] = [];
    const byOwner = new Map(owners.map((owner) => [`${owner.uid}:${owner.gid}`, owner]));
    const sorted = <T>(map: Map<string, T>): T[] => [...map.keys()].sort(byText).map((key) => map.get(key)!);
    for (const group of sorted(this.groups)) findings.push(this.describe(group, dir, byOwner.get(`${group.uid}:${group.gid}`)));
    for (const problems of sorted(this.problems)) for (const problem of problems) findings.push(this.describeProblem(problem, dir));
    for (const [kind, count] of [...this.problemCounts].sort(([a], [b]) => byText(a, b))) {
      if (count > EXAMPLES) {
        findings.push({
          ...PROBLEM_FINDING[kind],
          message: `${plural(count - EXAMPLES, `more ${kind} directory`, `more ${kind} directories`)} like the ones above`,
          evidence: { kind, count },
        });
      }
    }
    const order: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
    return findings.sort((a, b) => order[a.severity] - order[b.severity]);
  }

  private who(uid: number, gid: number): string {
    return `uid ${this.ctx.accounts.describeUid(uid)} gid ${this.ctx.accounts.describeGid(gid)}`;
  }

  private windowText(owner: OwnerSummary | undefined): string {
    const bursts = owner?.bursts?.mtime ?? [];
    if (bursts.length === 0) return '';
    const shown = bursts.slice(0, 3).map((burst) => `${formatWindow(burst.from, burst.to)} (${burst.count})`);
    const more = bursts.length > 3 ? ` and ${plural(bursts.length - 3, 'more burst')}` : '';
    return `; written ${shown.join(', ')}${more}`;
  }

  private describe(group: Group, dir: string, owner: OwnerSummary | undefined): Finding {
    const { expected, gcUser, accounts, namespace } = this.ctx;
    const quoted = shellQuote(dir);
    const what = `${plural(group.count, 'entry', 'entries')}${group.directories ? ` (${plural(group.directories, 'directory', 'directories')})` : ''}`;
    const gcWho = `uid ${accounts.describeUid(gcUser.uid)}`;
    const target = `${expected.uid}:${expected.gid}`;
    const evidence: Record<string, unknown> = {
      count: group.count,
      directories: group.directories,
      bytes: group.bytes,
      owner: { uid: group.uid, gid: group.gid, user: accounts.userByUid(group.uid)?.name, group: accounts.groupByGid(group.gid)?.name },
      modes: group.modes,
      examples: group.examples,
    };
    if (owner?.bursts) evidence.bursts = { mtime: owner.bursts.mtime.slice(0, MAX_BURSTS_REPORTED), ctime: owner.bursts.ctime.slice(0, MAX_BURSTS_REPORTED), complete: owner.bursts.complete };
    const base = { path: group.examples[0], evidence };

    switch (group.code) {
      case 'FOREIGN_OWNER': {
        const { blocks, consequence } = foreignConsequence(group, canTouch(group.uid, gcUser));
        return {
          code: 'FOREIGN_OWNER',
          severity: blocks ? 'error' : 'warning',
          message: `${what}, ${formatBytes(group.bytes)}, owned by ${this.who(group.uid, group.gid)} instead of ${this.who(expected.uid, expected.gid)}: GC as ${gcWho} ${consequence}${this.windowText(owner)}`,
          remedy: `${fixRemedy(dir, target)}   # or: find ${quoted} -xdev \\( ! -uid ${expected.uid} -o ! -gid ${expected.gid} \\) -exec chown -h ${target} {} +`,
          ...base,
        };
      }
      case 'OWNER_NOT_MAPPED':
        return {
          code: 'OWNER_NOT_MAPPED',
          severity: 'error',
          message: `${what} ${agree(group.count, 'shows', 'show')} owner ${this.who(group.uid, group.gid)}, the overflow id: ${agree(group.count, 'its', 'their')} real owner is not mapped in this user namespace (uid_map ${formatIdMap(namespace.uidMap)}; gid_map ${formatIdMap(namespace.gidMap)}), so GC gets "permission denied" and cannot chown ${agree(group.count, 'it', 'them')} from inside${this.windowText(owner)}`,
          remedy: ownerRemedy(dir, expected, namespace, true),
          ...base,
          evidence: { ...evidence, overflowUid: namespace.overflowUid, overflowGid: namespace.overflowGid, uidMap: namespace.uidMap, gidMap: namespace.gidMap },
        };
      case 'UNREADABLE': {
        const example = shellQuote(group.examples[0] ?? dir);
        const fixOwner = group.uid !== gcUser.uid && !(group.uid === expected.uid && group.gid === expected.gid);
        return {
          code: 'UNREADABLE',
          severity: 'error',
          message: `${what} owned by ${this.who(group.uid, group.gid)} (modes ${group.modes.join(', ')}) that GC as ${gcWho} (groups ${gcUser.groups.join(',')}) cannot ${group.directories === group.count ? 'list' : group.directories ? 'read or list' : 'read'}: GC stops with "permission denied" there`,
          remedy: fixOwner
            ? fixRemedy(dir, target)
            : `chmod ${group.uid === gcUser.uid ? 'u+rX' : gcUser.groups.includes(group.gid) ? 'g+rX' : 'o+rX'} ${example}${group.count > 1 ? `   # and ${group.count - 1} more listed by --list` : ''}`,
          ...base,
        };
      }
      case 'TOUCH_EPERM_WRONG_OWNER':
        return {
          code: 'TOUCH_EPERM_WRONG_OWNER',
          severity: 'error',
          message: `${plural(group.count, 'chunk')} owned by ${this.who(group.uid, group.gid)} while GC runs as ${gcWho} without CAP_FOWNER: utimensat(UTIME_NOW, UTIME_OMIT) needs the owner, so GC cannot mark ${agree(group.count, 'it', 'them')}`,
          remedy: `${fixRemedy(dir, `${gcUser.uid}:${expected.gid}`)}   # or run GC as uid ${group.uid}`,
          ...base,
        };
      case 'TOUCH_EPERM_IMMUTABLE':
        return {
          code: 'TOUCH_EPERM_IMMUTABLE',
          severity: 'error',
          message: `${what} ${agree(group.count, 'carries', 'carry')} the immutable or append-only flag: no one, not even root, can update ${agree(group.count, 'its', 'their')} atime or delete ${agree(group.count, 'it', 'them')}`,
          remedy: immutableRemedy(dir, group),
          ...base,
        };
      case 'NON_REGULAR_FILE': {
        const types = [...group.types].sort(([a], [b]) => byText(a, b)).map(([type, count]) => `${count} ${type}`).join(', ');
        return {
          code: 'NON_REGULAR_FILE',
          severity: 'warning',
          message: `${what} where chunks belong ${agree(group.count, 'is', 'are')} not what the layout expects (${types}): GC skips or fails on ${agree(group.count, 'it', 'them')}`,
          remedy: `ls -la ${group.examples.map(shellQuote).join(' ')}`,
          ...base,
        };
      }
      default:
        return {
          code: 'UNSAFE_PATH',
          severity: 'error',
          message: `${plural(group.count, 'symlink')} where the store layout needs a directory or a chunk: chunkguard does not follow ${agree(group.count, 'it', 'them')}, GC would read, touch or delete somewhere else`,
          remedy: `ls -la ${group.examples.map(shellQuote).join(' ')}   # replace each with the real directory or chunk`,
          ...base,
        };
    }
  }

  private describeProblem(problem: Problem, dir: string): Finding {
    const path = relText(displayPath(this.ctx.displayRoot, problem.rel));
    switch (problem.kind) {
      case 'mount-not-crossed':
        return {
          code: 'MOUNT_NOT_CROSSED',
          severity: 'info',
          message: `${path}: ${problem.detail}; not audited (add --cross-filesystems to include it)`,
          path,
          evidence: { kind: problem.kind },
        };
      case 'unsafe':
        return {
          code: 'UNSAFE_PATH',
          severity: 'error',
          message: `${path} ${problem.detail} during the audit: not followed, entries below it were not audited`,
          path,
          evidence: { kind: problem.kind, errno: problem.errno },
        };
      default:
        return {
          code: 'UNREADABLE',
          severity: 'error',
          // Listing failed: nothing below was seen. A stat failed: the other entries were examined, not that one.
          message: problem.detail.startsWith('cannot stat')
            ? `${path}: chunkguard (uid ${process.geteuid?.()}) could not stat an entry in it (${problem.errno ?? 'error'}); the directory's other entries were audited, that one and what is below it were not`
            : `${path}: chunkguard (uid ${process.geteuid?.()}) could not list it (${problem.errno ?? 'error'}); entries below it were not audited`,
          path,
          remedy: `ls -ld ${shellQuote(path)}   # audit as root, or as a user that can read ${shellQuote(dir)}`,
          evidence: { kind: problem.kind, errno: problem.errno },
        };
    }
  }
}

export function auditSummary(report: Pick<AuditReport, 'ok' | 'offending' | 'scanned' | 'findings'>): string {
  const scanned = `${plural(report.scanned.entries, 'entry', 'entries')} scanned`;
  const counts = severityCounts(report.findings);
  if (!counts) return `CLEAN: ${scanned}, no ownership or permission problems`;
  const errors = report.findings.some((finding) => finding.severity === 'error');
  return `${errors ? 'PROBLEMS' : 'WARNINGS'}: ${plural(report.offending, 'offending entry', 'offending entries')} of ${scanned} (${counts})`;
}
