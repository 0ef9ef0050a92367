/**
 * Phase 2 as the server would run it after phase 1, fed one `.chunks` entry at
 * a time by the chunk walk: each chunk is looked up in the referenced set; a
 * referenced one the GC user can touch gets a fresh atime from the mark (in
 * use), unless the atime check found touches ignored; everything else goes
 * by its own whole-second atime (removed, pending, in use). Chunks the mark
 * cannot touch, referenced chunks only the touch keeps, and referenced chunks
 * never found are flagged by their number in the set, for the snapshots pass.
 */
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE } from '../fs/stat.js';
import { prefixName } from '../store/chunk-names.js';
import { canRead, canSearch, canTouch, canWriteDirectory, type GcUser } from '../system/access.js';
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import type { DigestSet } from './digest-set.js';
import type { ChunkView, PrefixDirView } from './chunk-walk.js';
import type { Amount } from './last-gc.js';
import { sweepClass } from './settings.js';

/** Per referenced digest (by its number in the set). */
export const FLAG = { MISSING: 1, AT_RISK: 2, UNMARKABLE: 4 } as const;

export interface SweepRules {
  minAtime: number;
  oldestWriter: number;
  gcUser: GcUser;
  /** The mount is read-only: no touch and no unlink succeeds. */
  readOnly: boolean;
  /** The atime check found the touch ignored: a referenced chunk keeps the atime it has. */
  touchIgnored: boolean;
}

/** A prefix directory that stops GC: the lowest number is the one the server meets first. */
export interface PrefixStop {
  prefix: number;
  why: 'unlistable' | 'not searchable' | 'not a directory' | 'not writable' | 'immutable';
  /** The chunk (name) whose removal fails, for `not writable` / `immutable`. */
  chunk?: string;
  mode: number;
  uid: number;
  gid: number;
  errno?: string;
}

const amount = (): Amount => ({ chunks: 0, bytes: 0 });
const add = (to: Amount, bytes: number): void => {
  to.chunks++;
  to.bytes += bytes;
};

const hex = (view: ChunkView): string => view.bytes.toString('hex', view.digestOffset, view.digestOffset + 32);
/** The zero chunk's prefix directory (bb9f). */
const ZERO_PREFIX = parseInt(zeroChunkDigest().slice(0, 4), 16);
/** The digest's first two bytes are the prefix directory it was found in. */
const inOwnPrefix = (view: ChunkView): boolean => ((view.bytes[view.digestOffset]! << 8) | view.bytes[view.digestOffset + 1]!) === view.prefix;
const FROZEN = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND;
/** A prefix directory's kept stat: mode, uid, gid, attributes. */
const PREFIX_WORDS = 4;

export class SweepTally {
  readonly referenced = amount();
  readonly removed = amount();
  readonly pending = amount();
  readonly inUse = amount();
  readonly bad = { ...amount(), removed: 0 };
  readonly atRisk = amount();
  readonly leftovers = { files: 0, bytes: 0 };
  /** Referenced chunks the GC user's touch would fail on (`.chunks/<prefix>/<digest>`). */
  readonly unmarkable: string[] = [];
  /** Of those, the immutable ones, and how many belong to someone else. */
  readonly unmarkableImmutable: string[] = [];
  unmarkableForeign = 0;
  missing = 0;
  /** The zero chunk, when the walk met it: the server's safety check touches it before the mark. */
  zeroChunk: { path: string; uid: number; gid: number; attributes: number } | undefined;
  /** Per digest number: FLAG bits. */
  readonly flags: Uint8Array;
  /** Prefix directories the GC user cannot enter, by number (its referenced chunks cannot be touched either). */
  readonly referencedIn = new Uint32Array(0x10000);
  /** Each prefix directory's stat once met (mode, uid, gid, attributes), by number: an object each would cost a hidden class each. */
  private readonly prefixStats = new Uint32Array(0x10000 * PREFIX_WORDS);
  private readonly prefixSeen = new Uint8Array(0x10000);
  /** The first stop in the server's order: by prefix, then name. */
  stop: PrefixStop | undefined;
  /** `.bad` files of referenced digests: kept when the chunk is missing (the mark touches them then), decided once all is seen. */
  private readonly badOfReferenced: { index: number; atime: number }[] = [];
  /** Per prefix directory, the first chunk (by name) the sweep would unlink: judged against the directory once its stat is in. */
  private readonly firstRemoval = new Map<number, string>();

  constructor(
    private readonly set: DigestSet,
    private readonly rules: SweepRules,
  ) {
    this.flags = new Uint8Array(set.size);
  }

  prefixDir(view: PrefixDirView): void {
    const { gcUser } = this.rules;
    this.keepPrefix(view);
    const stop = (why: PrefixStop['why']) => this.stopAt({ prefix: view.prefix, why, mode: view.mode, uid: view.uid, gid: view.gid, ...(view.errno ? { errno: view.errno } : {}) });
    const type = view.mode & S_IFMT;
    // A symlink there is followed by the server and never by chunkguard: its chunks are not seen (the audit reports it).
    if (type === S_IFLNK) return;
    if (type !== S_IFDIR && view.mode !== 0) stop('not a directory');
    else if (!view.listable) stop('unlistable');
    else if ((view.mode & S_IFMT) === S_IFDIR && !canRead(view.mode, view.uid, view.gid, gcUser, true)) stop(canSearch(view.mode, view.uid, view.gid, gcUser) ? 'unlistable' : 'not searchable');
  }

  chunk(view: ChunkView): void {
    const { size, atime } = view;
    switch (view.kind) {
      case 'temp':
        this.leftovers.files++;
        this.leftovers.bytes += size;
        return;
      case 'using':
        return; // an S3 marker: always deleted, never counted
      case 'bad':
        this.badFile(view);
        return;
    }
    // The sweep skips what is not a regular file; a referenced one is missing data (never marked found).
    if ((view.mode & S_IFMT) !== S_IFREG) return;
    if (view.prefix === ZERO_PREFIX && view.lowercase && hex(view) === zeroChunkDigest()) {
      this.zeroChunk = { path: `.chunks/${prefixName(view.prefix)}/${hex(view)}`, uid: view.uid, gid: view.gid, attributes: view.attributes };
    }
    // The mark touches `.chunks/<lowercase digest prefix>/<lowercase digest>`: a chunk under another name or in another directory is not that file.
    const index = view.lowercase && inOwnPrefix(view) ? this.set.indexOfWords(view.words, view.digestWord) : -1;
    if (index < 0) {
      this.sweep(view, sweepClass(atime, this.rules.minAtime, this.rules.oldestWriter));
      return;
    }
    this.set.markFoundAt(index);
    add(this.referenced, size);
    this.referencedIn[view.prefix]!++;
    const foreign = !canTouch(view.uid, this.rules.gcUser);
    const immutable = (view.attributes & STATX_ATTR_IMMUTABLE) !== 0;
    const untouchable = this.rules.readOnly || foreign || immutable;
    if (untouchable) {
      const rel = `.chunks/${prefixName(view.prefix)}/${hex(view)}`;
      this.flags[index]! |= FLAG.UNMARKABLE;
      this.unmarkable.push(rel);
      if (immutable) this.unmarkableImmutable.push(rel);
      if (foreign) this.unmarkableForeign++;
    }
    if (atime < this.rules.minAtime) {
      this.flags[index]! |= FLAG.AT_RISK;
      add(this.atRisk, size);
    }
    // Marked: the touch gives it a fresh atime unless the filesystem ignores it; one that fails stops GC, and once that is fixed it is marked too.
    const keepsAtime = this.rules.touchIgnored;
    this.sweep(view, keepsAtime ? sweepClass(atime, this.rules.minAtime, this.rules.oldestWriter) : 'inUse');
  }

  /** After the walk: referenced digests never found are missing; `.bad` files of referenced digests decided; unlinks judged. */
  finish(): void {
    this.unwritable();
    this.set.forEachMissing((index) => {
      this.missing++;
      this.flags[index]! |= FLAG.MISSING;
    });
    for (const bad of this.badOfReferenced) {
      // The mark touches a missing chunk's .bad files (cond_touch_bad_chunks): they stay.
      const touched = (this.flags[bad.index]! & FLAG.MISSING) !== 0 && !this.rules.touchIgnored;
      this.badClass(touched ? 'inUse' : sweepClass(bad.atime, this.rules.minAtime, this.rules.oldestWriter));
    }
  }

  private badFile(view: ChunkView): void {
    if ((view.mode & S_IFMT) !== S_IFREG) return;
    add(this.bad, view.size);
    const index = view.lowercase && inOwnPrefix(view) ? this.set.indexOfWords(view.words, view.digestWord) : -1;
    const cls = sweepClass(view.atime, this.rules.minAtime, this.rules.oldestWriter);
    if (index >= 0) this.badOfReferenced.push({ index, atime: view.atime });
    else this.badClass(cls);
    if (index < 0 && cls === 'removed') this.removal(view);
  }

  private badClass(cls: 'removed' | 'pending' | 'inUse'): void {
    if (cls === 'removed') this.bad.removed++;
  }

  private sweep(view: ChunkView, cls: 'removed' | 'pending' | 'inUse'): void {
    // Named, not this[cls]: a million chunks go through here.
    if (cls === 'removed') {
      add(this.removed, view.size);
      this.removal(view);
    } else add(cls === 'pending' ? this.pending : this.inUse, view.size);
  }

  /** An unlink the GC user cannot make stops the sweep: an immutable or append-only chunk here, a directory it cannot write in finish(). */
  private removal(view: ChunkView): void {
    const chunk = hex(view) + (view.kind === 'bad' ? `.${view.badIndex}.bad` : '');
    if ((view.attributes & FROZEN) !== 0) this.stopAt({ prefix: view.prefix, why: 'immutable', chunk, mode: view.mode, uid: view.uid, gid: view.gid });
    const first = this.firstRemoval.get(view.prefix);
    if (first === undefined || chunk < first) this.firstRemoval.set(view.prefix, chunk);
  }

  private unwritable(): void {
    for (const [prefix, chunk] of this.firstRemoval) {
      const dir = this.prefixStat(prefix);
      const frozen = dir !== undefined && (dir.attributes & FROZEN) !== 0;
      if (this.rules.readOnly || frozen || (dir && !canWriteDirectory(dir.mode, dir.uid, dir.gid, this.rules.gcUser))) {
        this.stopAt({ prefix, why: 'not writable', chunk, mode: dir?.mode ?? 0, uid: dir?.uid ?? 0, gid: dir?.gid ?? 0 });
      }
    }
  }

  private keepPrefix(view: PrefixDirView): void {
    const at = view.prefix * PREFIX_WORDS;
    this.prefixStats[at] = view.mode;
    this.prefixStats[at + 1] = view.uid;
    this.prefixStats[at + 2] = view.gid;
    this.prefixStats[at + 3] = view.attributes;
    this.prefixSeen[view.prefix] = 1;
  }

  private prefixStat(prefix: number): Pick<PrefixDirView, 'mode' | 'uid' | 'gid' | 'attributes'> | undefined {
    if (this.prefixSeen[prefix] === 0) return undefined;
    const at = prefix * PREFIX_WORDS;
    return { mode: this.prefixStats[at]!, uid: this.prefixStats[at + 1]!, gid: this.prefixStats[at + 2]!, attributes: this.prefixStats[at + 3]! };
  }

  private stopAt(stop: PrefixStop): void {
    const current = this.stop;
    if (!current || stop.prefix < current.prefix || (stop.prefix === current.prefix && (stop.chunk ?? '') < (current.chunk ?? ''))) this.stop = stop;
  }
}
