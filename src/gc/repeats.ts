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
 * What a lineage keeps is only ever digests already added, whatever became
 * of the read that delivered them (a read cut short, a retry): the set ends
 * the same with or without this. Lineages end with their group; what they
 * keep is bounded (KEEP_BYTES), past that entries are added as they come.
 */
import type { DigestSet } from './digest-set.js';
import type { DigestVisitor } from './index-file.js';

const DIGEST_BYTES = 32;
/** A lineage's first allocation, then doubled: 2,048 entries, an 8 GiB disk of 4 MiB chunks. */
const FIRST_BYTES = 64 * 1024;
/** What all lineages of a group keep together: 1,048,576 entries, a 4 TiB disk of 4 MiB chunks. */
const KEEP_BYTES = 32 * 1024 * 1024;

interface Lineage {
  /** Digests in entry order; the first `filled` slots hold one each. */
  bytes: Buffer;
  filled: number;
}

export class RepeatFilter {
  private group: string | undefined;
  private readonly lineages = new Map<string, Lineage>();
  private kept = 0;
  private current: Lineage | undefined;
  private position = 0;
  private skipped = 0;

  constructor(private readonly set: DigestSet) {}

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
      current = { bytes: Buffer.alloc(0), filled: 0 };
      this.lineages.set(lineage.name, current);
    }
    this.current = current;
    return this.visit;
  }

  private readonly addOnly: DigestVisitor = (bytes, offset) => void this.set.add(bytes, offset);

  private readonly visit: DigestVisitor = (bytes, offset) => {
    const lineage = this.current!;
    const at = this.position++ * DIGEST_BYTES;
    if (at < lineage.filled * DIGEST_BYTES && sameDigest(lineage.bytes, at, bytes, offset)) {
      this.skipped++;
      return;
    }
    this.set.add(bytes, offset);
    // Entries come in order from 0, so a slot past the filled ones is the next one.
    if (at + DIGEST_BYTES > lineage.bytes.length && !this.grow(lineage)) return;
    copyDigest(bytes, offset, lineage.bytes, at);
    if (at === lineage.filled * DIGEST_BYTES) lineage.filled++;
  };

  /** Doubles the lineage's room within the group's budget; false when there is none left. */
  private grow(lineage: Lineage): boolean {
    const size = Math.max(FIRST_BYTES, 2 * lineage.bytes.length);
    if (this.kept + size - lineage.bytes.length > KEEP_BYTES) return false;
    const bytes = Buffer.alloc(size);
    lineage.bytes.copy(bytes, 0, 0, lineage.filled * DIGEST_BYTES);
    this.kept += size - lineage.bytes.length;
    lineage.bytes = bytes;
    return true;
  }
}

/** 32 bytes compared in place: most differing digests differ in the first byte. */
function sameDigest(kept: Buffer, at: number, bytes: Buffer, offset: number): boolean {
  for (let byte = 0; byte < DIGEST_BYTES; byte++) if (kept[at + byte] !== bytes[offset + byte]) return false;
  return true;
}

function copyDigest(from: Buffer, offset: number, to: Buffer, at: number): void {
  for (let byte = 0; byte < DIGEST_BYTES; byte++) to[at + byte] = from[offset + byte]!;
}
