/**
 * Makes ownership changes one entry at a time, relative to directories
 * reached from the root one component at a time without following symlinks
 * (DirTree), never across a mount, each re-checked just before it is made:
 * the same device, inode and owner the audit (or the journal) saw.
 * Write-ahead: a batch's journal records are written and synced before any
 * of its chowns; a chown that then fails or finds the entry changed adds a
 * `failed` record, so the journal never claims a change that was not made.
 */
import type { Dir } from '../fs/dir.js';
import { DirTree } from '../fs/dir-tree.js';
import { FsError } from '../fs/errors.js';
import { baseName, parentRel, type RelPath, unsafeComponent } from '../fs/rel-path.js';
import { formatDev } from '../fs/stat.js';
import { type ChownRecord, JournalWriter, type JournalRecord, type Owner, relFields } from './journal.js';

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
/** Records synced at once before their chowns: one fdatasync per batch, not per entry. */
const BATCH = 64;

export class Applier {
  changed = 0;
  /** Already had the new owner (an undo run twice, or a chown that never happened). */
  already = 0;
  skipped = 0;
  readonly skippedExamples: SkippedEntry[] = [];
  private pending: Change[] = [];
  private readonly rootDev: bigint;

  private constructor(
    private readonly tree: DirTree,
    private readonly journal: JournalWriter,
  ) {
    this.rootDev = tree.root.statSelf().dev;
  }

  /** The root first (the caller validated it), then the journal with its begin record; nothing is left open on failure. */
  static start(root: string, journalFile: string | undefined, begin: JournalRecord): Applier {
    const tree = DirTree.open(root);
    let journal: JournalWriter | undefined;
    try {
      journal = new JournalWriter(journalFile);
      journal.write(begin);
      return new Applier(tree, journal);
    } catch (error) {
      journal?.close();
      tree.close();
      throw error;
    }
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
    for (const change of ready) this.journal.write(change.record);
    this.journal.sync();
    for (const change of ready) this.apply(change);
  }

  /** Makes the rest and closes everything; a second call does nothing. */
  close(): void {
    try {
      if (this.pending.length > 0) this.flush();
    } finally {
      this.journal.close();
      this.tree.close();
    }
  }

  private skip(change: Change, reason: string): void {
    this.skipped++;
    if (this.skippedExamples.length < EXAMPLES) this.skippedExamples.push({ path: change.path, reason });
  }

  /** The entry's directory and name, reached from the root; a reason when it cannot be. */
  private locate(rel: RelPath): { dir: Dir; name: RelPath } | string {
    if (rel.length === 0) return { dir: this.tree.root, name: '' };
    const name = baseName(rel);
    const why = unsafeComponent(name);
    if (why) return `its name has ${why} (refused)`;
    try {
      return { dir: this.tree.open(parentRel(rel)), name };
    } catch (error) {
      if (error instanceof FsError) return `its directory ${error.message.replace(/^[^ ]* /, '')}`;
      throw error;
    }
  }

  /** Why the entry must be left alone now, 'already' when it has the new owner, or undefined to go ahead. */
  private recheck(change: Change): string | 'already' | undefined {
    const at = this.locate(change.rel);
    if (typeof at === 'string') return at;
    let now;
    try {
      now = at.dir.stat(at.name);
    } catch (error) {
      return `cannot stat it (${(error as FsError).code})`;
    }
    const { expected, to } = change;
    if (!now) return 'gone since the audit';
    if (now.dev !== expected.dev || now.ino !== expected.ino) {
      return `replaced since the audit (inode ${formatDev(expected.dev)}/${expected.ino} is now ${formatDev(now.dev)}/${now.ino})`;
    }
    if (now.dev !== this.rootDev) return 'on another filesystem';
    if (now.uid === to.uid && now.gid === to.gid) return 'already';
    if (now.uid !== expected.uid || now.gid !== expected.gid) return `owner changed since the audit (${expected.uid}:${expected.gid} is now ${now.uid}:${now.gid})`;
    return undefined;
  }

  /** Before journalling: true when the change is still to be made. */
  private wanted(change: Change): boolean {
    const why = this.recheck(change);
    if (why === 'already') this.already++;
    else if (why !== undefined) this.skip(change, why);
    return why === undefined;
  }

  /** After the sync: re-checked once more, then made; a change not made gets a `failed` record. */
  private apply(change: Change): void {
    const why = this.recheck(change);
    const at = why === undefined ? this.locate(change.rel) : why;
    const result = typeof at === 'string' ? undefined : at.dir.chown(at.name, change.to.uid, change.to.gid);
    if (result?.ok) {
      this.changed++;
      return;
    }
    const errno = result && !result.ok ? result.code : 'ECHANGED';
    this.journal.write({ op: 'failed', ...relFields(change.rel), errno });
    if (why === 'already') this.already++;
    else this.skip(change, result && !result.ok ? `chown failed with ${errno}${errno === 'EPERM' ? ' (immutable flag, an unmapped owner, or no CAP_CHOWN)' : ''}` : (why ?? 'changed'));
  }
}
