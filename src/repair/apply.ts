/**
 * Makes ownership changes one entry at a time, relative to directories
 * reached from the root one component at a time without following symlinks
 * (DirTree), never across a mount, each re-checked just before it is made:
 * the same device, inode and owner the audit (or the journal) saw.
 * Write-ahead: a batch's journal records are written and synced before any
 * of its chowns; a chown that then fails or finds the entry changed adds a
 * `failed` record, so the journal never claims a change that was not made.
 */
import { chownVerified, openedEntry, type OpenedEntry } from '../fs/dir.js';
import { DirTree } from '../fs/dir-tree.js';
import { FsError } from '../fs/errors.js';
import { baseName, parentRel, type RelPath, unsafeComponent } from '../fs/rel-path.js';
import { openDirOrBadInput } from '../fs/safe-path.js';
import { entryKind, formatDev, type Stat, STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE } from '../fs/stat.js';
import { CAP_CHOWN, hasCapability } from '../system/process.js';
import { type ChownRecord, type JournalRecord, type JournalTarget, JournalWriter, type Owner, relFields } from './journal.js';

export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface Change {
  rel: RelPath;
  /** As find prints it, for messages. */
  path: string;
  expected: { dev: bigint; ino: bigint } & Owner;
  to: Owner;
  record: ChownRecord;
}

const EXAMPLES = 20;
/** How a skipped entry's reason says its chown was ignored (fix reports those as CHOWN_IGNORED, not FOREIGN_OWNER). */
export const IGNORES_CHOWN = 'the filesystem ignores chown (it has no per-file owners)';
/** Records synced at once before their chowns: one fdatasync per batch, not per entry. */
const BATCH = 64;

export class Applier {
  changed = 0;
  /** Already had the new owner (an undo run twice, or a chown that never happened). */
  already = 0;
  skipped = 0;
  /** chowns that returned 0 and changed nothing (a filesystem without per-file owners): counted in skipped too. */
  ignored = 0;
  /** The owner such a filesystem kept, for the message. */
  ignoredShown?: Owner;
  readonly skippedExamples: SkippedEntry[] = [];
  private pending: Change[] = [];
  private readonly rootDev: bigint;

  private constructor(
    private readonly tree: DirTree,
    /** Undefined for a preview, which changes nothing. */
    private readonly journal: JournalWriter | undefined,
  ) {
    this.rootDev = tree.root.statSelf().dev;
  }

  /** The root first (the caller validated it), then the journal with its begin record; nothing is left open on failure. */
  static start(root: string, target: JournalTarget, begin: JournalRecord): Applier {
    const tree = DirTree.from(openDirOrBadInput(root, root));
    let journal: JournalWriter | undefined;
    try {
      journal = new JournalWriter(target);
      journal.write(begin);
      return new Applier(tree, journal);
    } catch (error) {
      try {
        // Not even the begin record is in it: an empty journal would only block the retry (it must not exist).
        journal?.abandon();
      } finally {
        tree.close();
      }
      throw error;
    }
  }

  /**
   * A dry run's answer for one change, read from the entry as it is now, as an
   * --apply would: true when it would be made; one it has already, or would leave,
   * is counted (`already`, `skipped`) instead. Nothing is written or changed.
   */
  static preview(root: string): Applier {
    return new Applier(DirTree.from(openDirOrBadInput(root, root)), undefined);
  }

  wouldMake(change: Change): boolean {
    return this.wanted(change);
  }

  add(change: Change): void {
    this.pending.push(change);
    if (this.pending.length >= BATCH) this.flush();
  }

  /** Journal the batch, sync it, then make its changes. */
  flush(): void {
    const batch = this.pending;
    this.pending = [];
    const ready = batch.filter((change) => this.wanted(change));
    for (const change of ready) this.journal!.write(change.record);
    this.journal!.sync();
    for (const change of ready) this.apply(change);
  }

  /** Makes the changes still queued, then closes everything. */
  close(): void {
    try {
      if (this.pending.length > 0) this.flush();
    } finally {
      this.discard();
    }
  }

  /** Closes everything without making the changes still queued (the run failed or was aborted); a second call does nothing. */
  discard(): void {
    this.pending = [];
    try {
      this.journal?.close();
    } finally {
      this.tree.close();
    }
  }

  private skip(change: Change, reason: string): void {
    this.skipped++;
    if (this.skippedExamples.length < EXAMPLES) this.skippedExamples.push({ path: change.path, reason });
  }

  /**
   * The entry itself, reached from the root one component at a time and
   * opened O_PATH|O_NOFOLLOW: what is checked is what is changed, even if
   * its name is swapped meanwhile. A reason when it cannot be reached.
   */
  private open(rel: RelPath): OpenedEntry | string {
    if (rel.length === 0) return { fd: this.tree.root.fd, stat: this.tree.root.statSelf(), close: () => undefined };
    const name = baseName(rel);
    const why = unsafeComponent(name);
    if (why) return `its name has ${why} (refused)`;
    let dir;
    try {
      dir = this.tree.open(parentRel(rel));
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      return `its directory ${error.path} ${error.code === 'EUNSAFEPATH' ? error.detail : `cannot be opened (${error.code})`}`;
    }
    try {
      return openedEntry(dir.openPath(name), dir.pathOf(name));
    } catch (error) {
      if (!(error instanceof FsError)) throw error;
      if (error.syscall === 'statx') return 'cannot stat it';
      return error.code === 'ENOENT' ? 'gone since the audit' : `cannot be opened (${error.code})`;
    }
  }

  /** Why the entry must be left alone now, 'already' when it has the new owner, or undefined to go ahead. */
  private recheck(change: Change, now: Stat): string | 'already' | undefined {
    const { expected, to } = change;
    if (now.dev !== expected.dev || now.ino !== expected.ino) {
      return `replaced since the audit (inode ${formatDev(expected.dev)}/${expected.ino} is now ${formatDev(now.dev)}/${now.ino})`;
    }
    if (now.dev !== this.rootDev) return 'on another filesystem';
    // Another name for the same file may be outside the tree (a hard link planted to /etc/shadow): not ours to chown.
    if (entryKind(now) !== 'directory' && now.nlink > 1) return `it has ${now.nlink} hard links, and another may be outside the directory: check with find -samefile and chown it by hand`;
    if (now.uid === to.uid && now.gid === to.gid) return 'already';
    if (now.uid !== expected.uid || now.gid !== expected.gid) return `owner changed since the audit (${expected.uid}:${expected.gid} is now ${now.uid}:${now.gid})`;
    return undefined;
  }

  /** Before journalling: true when the change is still to be made. */
  private wanted(change: Change): boolean {
    const opened = this.open(change.rel);
    const why = typeof opened === 'string' ? opened : this.recheck(change, opened.stat);
    if (typeof opened !== 'string') opened.close();
    if (why === 'already') this.already++;
    else if (why !== undefined) this.skip(change, why);
    return why === undefined;
  }

  /** After the sync: re-checked once more through the descriptor that is then changed; a change not made gets a `failed` record. */
  private apply(change: Change): void {
    const opened = this.open(change.rel);
    let why = typeof opened === 'string' ? opened : this.recheck(change, opened.stat);
    let errno = 'ECHANGED';
    if (typeof opened !== 'string') {
      try {
        if (why === undefined) {
          const notSet = chownVerified(opened.fd, change.to);
          if (!notSet) {
            this.changed++;
            return;
          }
          if (notSet.ignored) {
            errno = 'EIGNORED';
            this.ignored++;
            this.ignoredShown = notSet.shown;
            why = `chown returned 0 but the owner is still ${notSet.shown ? `${notSet.shown.uid}:${notSet.shown.gid}` : 'unknown'}: ${IGNORES_CHOWN}`;
          } else {
            errno = notSet.code;
            why = Applier.chownFailure(errno, opened.stat);
          }
        }
      } finally {
        opened.close();
      }
    }
    this.journal!.write({ op: 'failed', ...relFields(change.rel), errno });
    if (why === 'already') this.already++;
    else this.skip(change, why ?? 'changed');
  }

  /** Why a chown failed, from what the stat of that very entry says. */
  private static chownFailure(errno: string, stat: Stat): string {
    if (errno !== 'EPERM') return `chown failed with ${errno}`;
    if (stat.attributes & STATX_ATTR_IMMUTABLE) return 'chown failed with EPERM: the immutable flag is set (chattr -i first)';
    if (stat.attributes & STATX_ATTR_APPEND) return 'chown failed with EPERM: the append-only flag is set (chattr -a first)';
    if (!hasCapability(CAP_CHOWN)) return 'chown failed with EPERM: this process lacks CAP_CHOWN (run the fix as root)';
    return 'chown failed with EPERM although this process has CAP_CHOWN and no immutable flag is set (an unmapped owner in a user namespace, or a filesystem or security module that refuses it)';
  }
}
