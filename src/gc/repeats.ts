/**
 * Phase 1's shortcut for what backups repeat: a VM disk's fixed index keeps
 * an unchanged block's digest at the same place from one backup to the next,
 * and a group's snapshots are marked one after another (newest first). So
 * each index of a group is read against the one read before it under the
 * same file name (its lineage): an entry equal to the one at its place there
 * is in the set already and is not added again. An add is a search of the
 * set (a cache miss or two, about a microsecond); this is a comparison of 32
 * bytes the previous read left in order.
 *
 * Entries go on to `sink` (the mark's ReadJournal, which adds a read's
 * digests to the set once the read succeeded); a read that fails is forgotten
 * with its lineage (`forget`), so a lineage only ever holds digests of reads
 * that reached the set: the set ends the same with or without this. Lineages
 * end with their group; what they keep is bounded (KEEP_BYTES), past that
 * entries are passed on as they come.
 */
import { copyWords, DIGEST_WORDS as WORDS, type DigestSink, DigestWords, sameWords } from './digest-words.js';
import type { DigestVisitor } from './index-file.js';

/** A lineage's first allocation, then doubled: 2,048 entries, an 8 GiB disk of 4 MiB chunks. */
const FIRST_BYTES = 64 * 1024;
/** What all lineages of a group keep together: 1,048,576 entries, a 4 TiB disk of 4 MiB chunks. */
const KEEP_BYTES = 32 * 1024 * 1024;

interface Lineage {
  /** Digests in entry order, 8 words each; the first `filled` slots hold one each. */
  words: Uint32Array;
  filled: number;
}

export class RepeatFilter {
  private group: string | undefined;
  private readonly lineages = new Map<string, Lineage>();
  private kept = 0;
  private current: Lineage | undefined;
  private currentName: string | undefined;
  private position = 0;
  private skipped = 0;
  /** The entry being read, as words. */
  private readonly digest = new DigestWords();

  constructor(private readonly sink: DigestSink) {}

  /** Entries not added because they repeated their place. */
  get repeats(): number {
    return this.skipped;
  }

  /** The visitor for one read of an index: `group` and `name` its lineage, none for one outside the scheme. */
  start(lineage: { group: string; name: string } | undefined): DigestVisitor {
    this.position = 0;
    this.current = undefined;
    if (lineage === undefined) return this.addOnly;
    if (lineage.group !== this.group) {
      this.group = lineage.group;
      this.lineages.clear();
      this.kept = 0;
    }
    let current = this.lineages.get(lineage.name);
    if (!current) {
      current = { words: new Uint32Array(0), filled: 0 };
      this.lineages.set(lineage.name, current);
    }
    this.current = current;
    this.currentName = lineage.name;
    return this.visit;
  }

  /** The read just started failed: its lineage holds entries that never reached the set, so it goes. */
  forget(): void {
    if (!this.current) return;
    this.kept -= this.current.words.byteLength;
    this.lineages.delete(this.currentName!);
    this.current = undefined;
  }

  private readonly addOnly: DigestVisitor = (bytes, first, count, stride) => this.digest.forEach(bytes, first, count, stride, this.sink);

  private readonly visit: DigestVisitor = (bytes, first, count, stride) => {
    const { digest, sink } = this;
    const lineage = this.current!;
    const position = this.position;
    this.position += count;
    const room = this.roomFor(lineage, position + count);
    // Aligned entries (an index read's buffer) are compared in place, a read's worth in one loop.
    if (digest.pointRun(bytes, first, stride)) {
      this.skipped += filterRun(digest.words, digest.at, count, stride >>> 2, lineage, position, room, sink);
      return;
    }
    for (let entry = 0; entry < count; entry++) {
      digest.point(bytes, first + entry * stride);
      this.skipped += filterRun(digest.words, digest.at, 1, 0, lineage, position + entry, room, sink);
    }
  };

  /** The lineage's room in entries, grown towards `entries` within the group's budget. */
  private roomFor(lineage: Lineage, entries: number): number {
    while (lineage.words.length < entries * WORDS && this.grow(lineage));
    return lineage.words.length / WORDS;
  }

  /** Doubles the lineage's room within the group's budget; false when there is none left. */
  private grow(lineage: Lineage): boolean {
    const size = Math.max(FIRST_BYTES, 2 * lineage.words.byteLength);
    if (this.kept + size - lineage.words.byteLength > KEEP_BYTES) return false;
    const words = new Uint32Array(size / 4);
    words.set(lineage.words.subarray(0, lineage.filled * WORDS));
    this.kept += size - lineage.words.byteLength;
    lineage.words = words;
    return true;
  }
}

/**
 * `count` entries, one every `strideWords` words of `words` from `at`, read at
 * places `position` on of `lineage` (which has room for `room`): an entry equal
 * to the one at its place is skipped, any other goes to `sink` and takes that
 * place. Returns how many were skipped. One loop over locals: the loop this
 * replaced read and wrote the filter's properties for every entry.
 */
function filterRun(words: Uint32Array<ArrayBufferLike>, at: number, count: number, strideWords: number, lineage: Lineage, position: number, room: number, sink: DigestSink): number {
  const kept = lineage.words;
  const filled = lineage.filled;
  let skipped = 0;
  for (let entry = 0; entry < count; entry++) {
    const from = at + entry * strideWords;
    const slot = position + entry;
    if (slot >= room) {
      sink(words, from); // past the budget: passed on, not kept
      continue;
    }
    const to = slot * WORDS;
    if (slot < filled && sameWords(kept, to, words, from)) {
      skipped++;
      continue;
    }
    sink(words, from);
    copyWords(words, from, kept, to);
  }
  // Entries come in order from 0: the places up to the last one kept are filled.
  lineage.filled = Math.max(filled, Math.min(position + count, room));
  return skipped;
}
