/**
 * The distinct chunk digests the indexes reference, for the GC preview:
 * filled from every index (with many duplicates: snapshots share most
 * chunks), sealed, then asked once for each chunk the sweep meets in
 * `.chunks`, prefix directory by prefix directory in any order; what was
 * never met is missing.
 *
 * Layout: 65,536 buckets, one a prefix directory (a digest's first two
 * bytes), each holding the other 30 bytes of its digests sorted and
 * distinct, in a chain of fixed blocks of 32 records; every block of a
 * bucket but its last is full. Blocks are cut from 7.5 MiB slabs and never
 * moved (nor freed, but for a crowded bucket's, below, which other buckets
 * reuse), so a digest costs its 30 bytes and, in all, a bucket's
 * half-empty last block (31 MiB for 65,536 buckets): no string, object or
 * Buffer per digest or per bucket. The floor is a block a prefix: 63 MiB
 * once every prefix has a digest (from about 300,000 digests on). SHA-256 spreads digests evenly, so
 * buckets stay short (about 150 digests, 5 blocks, at ten million): an add
 * is a search and, when the digest is new, a shift of the records after it
 * by one, block by block; a duplicate costs the search alone and no memory.
 * A block keeps its records' first four key bytes (heads) apart from the
 * other 26 (tails), so a search reads 128 contiguous bytes of heads and
 * one tail. Sealing numbers the digests so that one bit each records what
 * the sweep found.
 *
 * Measured by bench/digest-set.mjs; one Buffer per bucket cost 175 bytes a
 * digest (allocator and ArrayBuffer overhead), these blocks 35.
 *
 * A crafted index (digests are bytes in a file, not always SHA-256 of data)
 * may put any number of digests under one prefix, and an add shifts what
 * its bucket holds. So a bucket that reaches LONG_RECORDS (2,048; SHA-256
 * puts about 150 in one at ten million, 600 at forty million) gives its
 * blocks back and keeps its digests in sorted runs (sorted-runs.ts) until
 * seal puts them back in blocks, in order: an add costs O(log² n) whatever
 * the digests are, and a search in such a bucket bisects its records.
 * (1,000,000 digests under one prefix add in 3-5 s; one sorted bucket
 * took 61 s for 200,000.)
 */

import { SortedRuns } from './sorted-runs.js';

const DIGEST_BYTES = 32;
const PREFIX_BYTES = 2;
/** What a bucket stores of a digest: all but the prefix its bucket stands for. */
const KEY_BYTES = DIGEST_BYTES - PREFIX_BYTES;
const BUCKETS = 1 << (8 * PREFIX_BYTES);
/** Records a block; a block is their heads (4 bytes each), then their tails. */
const BLOCK_SHIFT = 5;
const BLOCK_RECORDS = 1 << BLOCK_SHIFT;
const HEAD_BYTES = 4;
const TAIL_BYTES = KEY_BYTES - HEAD_BYTES;
const BLOCK_BYTES = BLOCK_RECORDS * KEY_BYTES;
const BLOCK_WORDS = BLOCK_BYTES / HEAD_BYTES;
/** Blocks a slab: 8,192 x 960 bytes, 7.5 MiB allocated at a time. */
const SLAB_SHIFT = 13;
const SLAB_BLOCKS = 1 << SLAB_SHIFT;
const NO_BLOCK = -1;
/** A bucket that reaches this many digests (64 blocks) moves to sorted runs until seal. */
const LONG_RECORDS = 64 * BLOCK_RECORDS;

/** A hex digit's value, or -1. Lowercase only: the server's GC touches `.chunks/<lowercase hex>`, so another spelling is another file. */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let digit = 0; digit < 16; digit++) HEX_VALUE['0123456789abcdef'.charCodeAt(digit)] = digit;

export class DigestSet {
  /**
   * Block storage: block b is at byte (b mod SLAB_BLOCKS) x BLOCK_BYTES of
   * slab b / SLAB_BLOCKS, seen as bytes (tails) and as words (heads, in
   * native order). `next` chains a bucket's blocks; `firstHeads` holds each
   * block's first head, so that a search picks its block without reading
   * the others.
   */
  private readonly slabBytes: Buffer[] = [];
  private readonly slabWords: Uint32Array[] = [];
  private next = new Int32Array(SLAB_BLOCKS);
  private firstHeads = new Uint32Array(SLAB_BLOCKS);
  private blocks = 0;
  /** Blocks of buckets that went long, chained by `next`, for reuse. */
  private freeBlock = NO_BLOCK;
  /** Each bucket's first block (NO_BLOCK while empty) and how many digests it holds; all its blocks but the last are full. */
  private readonly firstBlock = new Int32Array(BUCKETS).fill(NO_BLOCK);
  private readonly counts = new Uint32Array(BUCKETS);
  /** Until seal, the digests of each bucket that has held LONG_RECORDS or more: such a bucket has no blocks. */
  private readonly long = new Map<number, SortedRuns>();
  private distinct = 0;
  /**
   * The blocks of the bucket being searched, in order, and their first
   * heads, from `chainBase` (see `chain`). After seal, every bucket's in a
   * directory, bucket after bucket from `directoryStart[bucket]`: a search
   * then reads them in one place instead of following the chain.
   */
  private chainBlocks = new Int32Array(64);
  private chainHeads = new Uint32Array(64);
  private chainBase = 0;
  private directoryStart: Uint32Array | undefined;
  /** After seal: the number of each bucket's first digest (and the total last), and one bit a digest for those found. */
  private starts: Uint32Array | undefined;
  private found: Uint8Array | undefined;
  private foundCount = 0;
  private readonly nameDigest = Buffer.alloc(DIGEST_BYTES);
  private readonly visited = Buffer.alloc(DIGEST_BYTES);

  /** Distinct digests held. */
  get size(): number {
    return this.distinct;
  }

  /** Distinct digests marked found by the sweep (after seal). */
  get foundSize(): number {
    return this.foundCount;
  }

  /** Bytes this set has allocated for what it holds: blocks, their chains, the buckets, after seal the numbering and bitmap. */
  bytesUsed(): number {
    const arrays = [this.next, this.firstHeads, this.firstBlock, this.counts, this.chainBlocks, this.chainHeads, this.directoryStart, this.starts, this.found];
    let bytes = this.slabBytes.length * SLAB_BLOCKS * BLOCK_BYTES + arrays.reduce((sum, array) => sum + (array?.byteLength ?? 0), 0);
    for (const runs of this.long.values()) bytes += runs.bytesUsed();
    return bytes;
  }

  /** Adds the 32 bytes at `offset` of `digest` (copied); returns whether they were new. */
  add(digest: Buffer, offset = 0): boolean {
    if (this.starts) throw new Error('DigestSet: add after seal(); every digest must be added before the sweep asks');
    checkDigest(digest, offset);
    const bucket = bucketOf(digest, offset);
    const count = this.counts[bucket]!;
    if (count >= LONG_RECORDS) {
      if (!this.long.get(bucket)!.add(digest, offset + PREFIX_BYTES)) return false;
    } else {
      const found = this.search(bucket, digest, offset + PREFIX_BYTES);
      if (found >= 0) return false;
      if (count % BLOCK_RECORDS === 0) this.appendBlock(bucket, count >>> BLOCK_SHIFT);
      this.insert(~found, count, digest, offset + PREFIX_BYTES);
      if (count + 1 === LONG_RECORDS) this.long.set(bucket, new SortedRuns(KEY_BYTES, this.release(bucket, count + 1)));
    }
    this.counts[bucket] = count + 1;
    this.distinct++;
    return true;
  }

  /** Fixes the set: no more adds; `indexOf`, `markFound` and `missingIn` may be used from now on. */
  seal(): void {
    if (this.starts) return;
    const starts = new Uint32Array(BUCKETS + 1);
    for (let bucket = 0; bucket < BUCKETS; bucket++) starts[bucket + 1] = starts[bucket]! + this.counts[bucket]!;
    this.starts = starts;
    for (const [bucket, runs] of this.long) this.refill(bucket, runs.drain());
    this.long.clear();
    this.makeDirectory();
    this.found = new Uint8Array(Math.ceil(this.distinct / 8));
  }

  has(digest: Buffer, offset = 0): boolean {
    checkDigest(digest, offset);
    const bucket = bucketOf(digest, offset);
    if (!this.starts && this.counts[bucket]! >= LONG_RECORDS) return this.long.get(bucket)!.has(digest, offset + PREFIX_BYTES);
    return this.search(bucket, digest, offset + PREFIX_BYTES) >= 0;
  }

  /**
   * The digest's number in 0..size-1 (byte order), or -1 when it is not in
   * the set; after seal. A caller may keep facts per referenced chunk in a
   * typed array indexed by it.
   */
  indexOf(digest: Buffer, offset = 0): number {
    const starts = this.sealed();
    checkDigest(digest, offset);
    const bucket = bucketOf(digest, offset);
    const at = this.search(bucket, digest, offset + PREFIX_BYTES);
    return at < 0 ? -1 : starts[bucket]! + at;
  }

  /** Records that the sweep found this digest's chunk; returns whether it is referenced (in the set). */
  markFound(digest: Buffer, offset = 0): boolean {
    const index = this.indexOf(digest, offset);
    if (index < 0) return false;
    this.markFoundAt(index);
    return true;
  }

  /** `markFound` for the number `indexOf` gave: the sweep has it already, and a second search would cost as much as the first. */
  markFoundAt(index: number): void {
    const found = this.found;
    if (!found) throw new Error('DigestSet: seal() first; the sweep asks only once every digest is added');
    if (!(Number.isInteger(index) && index >= 0 && index < this.distinct)) throw new RangeError(`DigestSet: ${index} is not a digest's number (0..${this.distinct - 1})`);
    const bit = 1 << (index & 7);
    if ((found[index >>> 3]! & bit) === 0) {
      found[index >>> 3]! |= bit;
      this.foundCount++;
    }
  }

  /**
   * `markFound` for an entry named `name` (its bytes, e.g. a view of a
   * getdents buffer) in prefix directory `prefix` (0..65535, `.chunks/0000`
   * is 0). The server's GC touches `.chunks/<first 4 hex>/<64 lowercase
   * hex>` for each referenced digest, so any other name, or a digest's name
   * in another prefix directory, is never referenced: false.
   */
  markFoundName(prefix: number, name: Buffer): boolean {
    this.sealed();
    if (!parseHexName(name, this.nameDigest) || bucketOf(this.nameDigest, 0) !== prefix) return false;
    return this.markFound(this.nameDigest, 0);
  }

  /**
   * Calls `visit` for each digest of prefix directory `prefix` not marked
   * found, in byte order; after seal. `visit` gets one reused 32-byte
   * Buffer: copy it to keep it.
   */
  missingIn(prefix: number, visit: (digest: Buffer) => void): void {
    const starts = this.sealed();
    if (!Number.isInteger(prefix) || prefix < 0 || prefix >= BUCKETS) throw new RangeError(`DigestSet: prefix ${prefix} is not in 0..${BUCKETS - 1}`);
    const found = this.found!;
    const digest = this.visited;
    digest[0] = prefix >>> 8;
    digest[1] = prefix & 0xff;
    this.chain(prefix);
    const { chainBlocks, chainBase } = this;
    for (let at = 0, index = starts[prefix]!; index < starts[prefix + 1]!; at++, index++) {
      if ((found[index >>> 3]! & (1 << (index & 7))) !== 0) continue;
      this.readKey(chainBlocks[chainBase + (at >>> BLOCK_SHIFT)]!, at & (BLOCK_RECORDS - 1), digest, PREFIX_BYTES);
      visit(digest);
    }
  }

  private sealed(): Uint32Array {
    if (!this.starts) throw new Error('DigestSet: seal() first; the sweep asks only once every digest is added');
    return this.starts;
  }

  /**
   * The `count` keys of the bucket whose blocks are in `chainBlocks`, in
   * order in one Buffer; its blocks go to the free list, for other buckets
   * and for `refill`.
   */
  private release(bucket: number, count: number): Buffer {
    const keys = Buffer.allocUnsafeSlow(count * KEY_BYTES);
    for (let at = 0; at < count; at++) this.readKey(this.chainBlocks[at >>> BLOCK_SHIFT]!, at & (BLOCK_RECORDS - 1), keys, at * KEY_BYTES);
    for (let ordinal = 0; ordinal << BLOCK_SHIFT < count; ordinal++) {
      const block = this.chainBlocks[ordinal]!;
      this.next[block] = this.freeBlock;
      this.freeBlock = block;
    }
    this.firstBlock[bucket] = NO_BLOCK;
    return keys;
  }

  /** Puts a long bucket's keys (sorted, distinct, all of them) back in blocks, at seal. */
  private refill(bucket: number, keys: Buffer): void {
    for (let at = 0; at * KEY_BYTES < keys.length; at++) {
      const slot = at & (BLOCK_RECORDS - 1);
      if (slot === 0) this.appendBlock(bucket, at >>> BLOCK_SHIFT);
      const block = this.chainBlocks[at >>> BLOCK_SHIFT]!;
      this.writeKey(block, slot, keys, at * KEY_BYTES);
      if (slot === 0) this.firstHeads[block] = keys.readUInt32BE(at * KEY_BYTES);
    }
  }

  /** Copies the key of a block's record `slot` to `out` at `outAt`. */
  private readKey(block: number, slot: number, out: Buffer, outAt: number): void {
    out.writeUInt32BE(this.slabWords[block >>> SLAB_SHIFT]![headIndex(block, slot)]!, outAt);
    copyTail(this.slabBytes[block >>> SLAB_SHIFT]!, tailStart(block, slot), out, outAt + HEAD_BYTES);
  }

  /** Copies the key at `keyAt` of `key` into a block's record `slot`. */
  private writeKey(block: number, slot: number, key: Buffer, keyAt: number): void {
    this.slabWords[block >>> SLAB_SHIFT]![headIndex(block, slot)] = key.readUInt32BE(keyAt);
    copyTail(key, keyAt + HEAD_BYTES, this.slabBytes[block >>> SLAB_SHIFT]!, tailStart(block, slot));
  }

  /** Every bucket's blocks and their first heads, in `chainBlocks` and `chainHeads`; the chains are no longer needed. */
  private makeDirectory(): void {
    const directoryStart = new Uint32Array(BUCKETS + 1);
    for (let bucket = 0; bucket < BUCKETS; bucket++) directoryStart[bucket + 1] = directoryStart[bucket]! + Math.ceil(this.counts[bucket]! / BLOCK_RECORDS);
    const blocks = new Int32Array(directoryStart[BUCKETS]!);
    const heads = new Uint32Array(directoryStart[BUCKETS]!);
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (let at = directoryStart[bucket]!, block = this.firstBlock[bucket]!; at < directoryStart[bucket + 1]!; at++, block = this.next[block]!) {
        blocks[at] = block;
        heads[at] = this.firstHeads[block]!;
      }
    }
    this.chainBlocks = blocks;
    this.chainHeads = heads;
    this.directoryStart = directoryStart;
    this.next = new Int32Array(0);
    this.firstHeads = new Uint32Array(0);
  }

  /** Puts the bucket's blocks in order in `chainBlocks`, and their first heads in `chainHeads`, from `chainBase`. */
  private chain(bucket: number): void {
    if (this.directoryStart) {
      this.chainBase = this.directoryStart[bucket]!;
      return;
    }
    const length = Math.ceil(this.counts[bucket]! / BLOCK_RECORDS);
    if (length > this.chainBlocks.length) this.growChain(2 * length);
    const { chainBlocks, chainHeads } = this;
    for (let at = 0, block = this.firstBlock[bucket]!; at < length; at++, block = this.next[block]!) {
      chainBlocks[at] = block;
      chainHeads[at] = this.firstHeads[block]!;
    }
    this.chainBase = 0;
  }

  private growChain(length: number): void {
    this.chainBlocks = grownCopy(this.chainBlocks, new Int32Array(length));
    this.chainHeads = grownCopy(this.chainHeads, new Uint32Array(length));
  }

  /**
   * The position of the key at `keyAt` of `key` in the bucket, or ~(where
   * it would be inserted); leaves the bucket's blocks where `chain` puts them. The
   * first four bytes decide almost every comparison (digests are uniformly
   * random): the blocks' heads choose the block, whose records are then
   * searched; a tie falls back to comparing all 30 bytes. A sealed bucket
   * from sorted runs (crafted) has too many blocks to scan: its records are
   * bisected from the first.
   */
  private search(bucket: number, key: Buffer, keyAt: number): number {
    this.chain(bucket);
    const { chainBlocks, chainHeads, chainBase } = this;
    const count = this.counts[bucket]!;
    const head = key.readUInt32BE(keyAt);
    let low = 0;
    let high = count;
    // Records before block `first` are below the key (its first record is); from block `last` + 1 on, above it.
    if (count <= LONG_RECORDS) {
      let first = 0;
      let last = 0;
      for (let ordinal = 1; ordinal << BLOCK_SHIFT < count; ordinal++) {
        const blockHead = chainHeads[chainBase + ordinal]!;
        if (blockHead > head) break;
        if (blockHead < head) first = ordinal;
        last = ordinal;
      }
      low = first << BLOCK_SHIFT;
      high = Math.min(count, (last + 1) << BLOCK_SHIFT);
    }
    while (low < high) {
      const middle = (low + high) >>> 1;
      const block = chainBlocks[chainBase + (middle >>> BLOCK_SHIFT)]!;
      const slot = middle & (BLOCK_RECORDS - 1);
      const word = this.slabWords[block >>> SLAB_SHIFT]![headIndex(block, slot)]!;
      const order = word !== head ? word - head : compareTail(this.slabBytes[block >>> SLAB_SHIFT]!, tailStart(block, slot), key, keyAt + HEAD_BYTES);
      if (order < 0) low = middle + 1;
      else if (order > 0) high = middle;
      else return middle;
    }
    return ~low;
  }

  /** Chains a new block as the bucket's `ordinal`th (its last), in `chainBlocks` too. */
  private appendBlock(bucket: number, ordinal: number): void {
    const block = this.takeBlock();
    if (ordinal === 0) this.firstBlock[bucket] = block;
    else this.next[this.chainBlocks[ordinal - 1]!] = block;
    if (ordinal === this.chainBlocks.length) this.growChain(2 * ordinal);
    this.chainBlocks[ordinal] = block;
  }

  /** A block from the free list, else a new one (and a new slab every SLAB_BLOCKS). */
  private takeBlock(): number {
    if (this.freeBlock !== NO_BLOCK) {
      const block = this.freeBlock;
      this.freeBlock = this.next[block]!;
      return block;
    }
    const block = this.blocks++;
    if (block >>> SLAB_SHIFT === this.slabBytes.length) {
      const slab = Buffer.allocUnsafeSlow(SLAB_BLOCKS * BLOCK_BYTES);
      this.slabBytes.push(slab);
      this.slabWords.push(new Uint32Array(slab.buffer, slab.byteOffset, slab.length / HEAD_BYTES));
    }
    if (block === this.next.length) {
      this.next = grownCopy(this.next, new Int32Array(2 * block));
      this.firstHeads = grownCopy(this.firstHeads, new Uint32Array(2 * block));
    }
    return block;
  }

  /**
   * Puts the key at position `at` of the bucket whose `count` records are in
   * `chainBlocks` (with room for one more): each block from the last back to
   * `at`'s moves up by one record, taking the last record of the block before.
   */
  private insert(at: number, count: number, key: Buffer, keyAt: number): void {
    const blocks = this.chainBlocks;
    const target = at >>> BLOCK_SHIFT;
    for (let ordinal = count >>> BLOCK_SHIFT; ordinal >= target; ordinal--) {
      const block = blocks[ordinal]!;
      const from = ordinal === target ? at & (BLOCK_RECORDS - 1) : 0;
      const end = ordinal === count >>> BLOCK_SHIFT ? count & (BLOCK_RECORDS - 1) : BLOCK_RECORDS - 1;
      const words = this.slabWords[block >>> SLAB_SHIFT]!;
      const bytes = this.slabBytes[block >>> SLAB_SHIFT]!;
      words.copyWithin(headIndex(block, from + 1), headIndex(block, from), headIndex(block, end));
      bytes.copyWithin(tailStart(block, from + 1), tailStart(block, from), tailStart(block, end));
      if (ordinal > target) {
        const previous = blocks[ordinal - 1]!;
        const tail = tailStart(previous, BLOCK_RECORDS - 1);
        words[headIndex(block, 0)] = this.slabWords[previous >>> SLAB_SHIFT]![headIndex(previous, BLOCK_RECORDS - 1)]!;
        copyTail(this.slabBytes[previous >>> SLAB_SHIFT]!, tail, bytes, tailStart(block, 0));
      } else {
        this.writeKey(block, from, key, keyAt);
      }
      this.firstHeads[block] = words[headIndex(block, 0)]!;
    }
  }
}

function grownCopy<T extends Int32Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Where a block's record `slot` has its head, in its slab's words. */
function headIndex(block: number, slot: number): number {
  return (block & (SLAB_BLOCKS - 1)) * BLOCK_WORDS + slot;
}

/** Where a block's record `slot` has its tail, in its slab's bytes. */
function tailStart(block: number, slot: number): number {
  return (block & (SLAB_BLOCKS - 1)) * BLOCK_BYTES + BLOCK_RECORDS * HEAD_BYTES + slot * TAIL_BYTES;
}

/** Copies 26 bytes: a loop costs less than Buffer's copy() for so few. */
function copyTail(from: Buffer, fromAt: number, to: Buffer, toAt: number): void {
  for (let byte = 0; byte < TAIL_BYTES; byte++) to[toAt + byte] = from[fromAt + byte]!;
}

/** Orders a stored tail against the key's (the bytes after its head). */
function compareTail(bytes: Buffer, at: number, key: Buffer, keyAt: number): number {
  for (let byte = 0; byte < TAIL_BYTES; byte++) {
    const order = bytes[at + byte]! - key[keyAt + byte]!;
    if (order !== 0) return order;
  }
  return 0;
}

function checkDigest(digest: Buffer, offset: number): void {
  if (!(offset >= 0 && offset + DIGEST_BYTES <= digest.length)) {
    throw new RangeError(`DigestSet: no ${DIGEST_BYTES}-byte digest at offset ${offset} of a ${digest.length}-byte buffer`);
  }
}

function bucketOf(digest: Buffer, offset: number): number {
  return (digest[offset]! << 8) | digest[offset + 1]!;
}

/** Parses a 64-character lowercase hex name into `out`; false for any other name. */
function parseHexName(name: Buffer, out: Buffer): boolean {
  if (name.length !== 2 * DIGEST_BYTES) return false;
  for (let byte = 0; byte < DIGEST_BYTES; byte++) {
    const high = HEX_VALUE[name[2 * byte]!]!;
    const low = HEX_VALUE[name[2 * byte + 1]!]!;
    if ((high | low) < 0) return false;
    out[byte] = (high << 4) | low;
  }
  return true;
}
