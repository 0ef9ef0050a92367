/**
 * The distinct chunk digests the indexes reference, for the GC preview:
 * filled from every index (with many duplicates: snapshots share most
 * chunks), sealed, then asked once for each chunk the sweep meets in
 * `.chunks`; what was never met is missing.
 *
 * Layout: the digests themselves, 32 bytes each, one after another in the
 * order they were first added (pages of PAGE_DIGESTS, never moved), so a
 * digest's number is its place there; and an open-addressing table of
 * 32-bit slots, linear probing, at most three quarters full, each slot
 * holding a digest's number + 1 above a few more bits of it (a tag: most
 * slots that are not the digest's are passed without reading a digest).
 * No string, object or Buffer per digest: 32 bytes a digest and 5.3 to 10.7
 * for the table (16 for a moment while it doubles). Measured by
 * bench/digest-set.mjs; the prefix-bucketed sorted blocks this replaced
 * cost 33.5 bytes a digest and took 2 to 3 times as long to add and to ask.
 *
 * A digest's slot is its first bytes (SHA-256 spreads them evenly): the
 * sweep asks prefix directory by prefix directory, so its questions fall in
 * one place of the table, not all over it (measured: a third less time
 * than slots from a hash of all 32 bytes). A crafted index (digests are
 * bytes in a file, not always SHA-256 of data) may hold many digests that
 * share their first bytes and so crowd the table: once an add or a question
 * probes past LONGEST_RUN slots, or probes average more than MEAN_PROBE_LIMIT
 * (many shorter crowds), the table is rebuilt with slots from a keyed hash:
 * each word xored with a random key drawn per set, mixed (murmur3's
 * finaliser), summed and mixed again, which such digests cannot foresee, so
 * they spread as random ones do; should they crowd it still, new keys are
 * drawn (at most MAX_RESEEDS times). Numbers stay: the digests never move.
 */
import { crypto } from '../runtime/builtins.js';
import { copyWords, DIGEST_BYTES, DIGEST_WORDS as WORDS, DigestWords, sameWords } from './digest-words.js';

/** Digests a page: 8,192 x 32 bytes, 256 KiB allocated at a time. */
const PAGE_SHIFT = 13;
const PAGE_DIGESTS = 1 << PAGE_SHIFT;
/**
 * The table's first size, in slots (a power of two), and the most `expected` may ask
 * for first: 1 M slots, 4 MiB. Past that it doubles as digests come: snapshots repeat
 * each other, so the entries overstate the digests many times over, and a table larger
 * than a core's cache costs every add a miss (measured: 1.6 M entries, 430,000 distinct,
 * phase 1 took 301 ms of CPU with 4 M slots, 228 ms with 1 M).
 */
const FIRST_SLOTS_SHIFT = 12;
const MAX_FIRST_SLOTS_SHIFT = 20;
/** Occupied slots in a row past which digests are taken to be crafted (SHA-256's leave runs of tens). */
const LONGEST_RUN = 1024;
/** Slots a probe passes on average, over PROBES_CHECKED probes or more, past which they are too (random digests: under 9 at three quarters full). */
const MEAN_PROBE_LIMIT = 32;
const PROBES_CHECKED = 4096;
/** New keys drawn at most this many times after the first: random keys leave crafted digests no way to crowd the table twice. */
const MAX_RESEEDS = 3;

export class DigestSet {
  /** The digests, as words in native order, PAGE_DIGESTS to a page. */
  private readonly pages: Uint32Array[] = [];
  private distinct = 0;
  /** Slots: 0 empty, else (number + 1) << tagBits | tag. */
  private table: Uint32Array;
  /** 32 - log2(slots): the slot is the hash's top bits, the tag its low `tagBits`. */
  private tagBits: number;
  /** The hash: the digest's first four bytes, or (`keyed`, once digests crowd) all eight words mixed with `keys`. */
  private keyed = false;
  /** The keyed hash's keys: one a word and one for the sum, drawn per set (and again on a reseed). */
  private readonly keys = new Uint32Array(WORDS + 1);
  private reseeds = 0;
  /** The last probe's length, in slots; probes and their slots since the table was last built. */
  private probed = 0;
  private probes = 0;
  private probeSlots = 0;
  /** After seal: one bit a digest, set for those the sweep found. */
  private found: Uint8Array | undefined;
  private foundCount = 0;
  /** The digest asked about. */
  private readonly asked = new DigestWords();
  /** What forEachMissing hands out. */
  private readonly visited = Buffer.alloc(DIGEST_BYTES);
  private readonly visitedWords = new Uint32Array(this.visited.buffer, this.visited.byteOffset, WORDS);

  /**
   * `expected`: how many digests are coming at most (an index's entries, repeats
   * included), so that the table need not double its way there; up to 1 M slots.
   */
  constructor(options: { expected?: number } = {}) {
    const wanted = Math.ceil(((options.expected ?? 0) * 4) / 3);
    const shift = Math.min(MAX_FIRST_SLOTS_SHIFT, Math.max(FIRST_SLOTS_SHIFT, Math.ceil(Math.log2(Math.max(1, wanted)))));
    this.table = new Uint32Array(1 << shift);
    this.tagBits = 32 - shift;
    crypto().randomFillSync(this.keys);
  }

  /** Distinct digests held. */
  get size(): number {
    return this.distinct;
  }

  /** Distinct digests marked found by the sweep (after seal). */
  get foundSize(): number {
    return this.foundCount;
  }

  /** Bytes this set has allocated for what it holds: pages, the table, after seal the bitmap. */
  bytesUsed(): number {
    return this.pages.length * PAGE_DIGESTS * DIGEST_BYTES + this.table.byteLength + (this.found?.byteLength ?? 0);
  }

  /** Adds the 32 bytes at `offset` of `digest` (copied); returns whether they were new. */
  add(digest: Buffer, offset = 0): boolean {
    const { words, at } = this.point(digest, offset);
    return this.addWords(words, at);
  }

  /** `add` for a digest held as eight native-order words from `at` (digest-words.ts), as index entries and chunk records are. */
  addWords(words: Uint32Array<ArrayBufferLike>, at: number): boolean {
    if (this.found) throw new Error('DigestSet: add after seal(); every digest must be added before the sweep asks');
    checkWords(words, at);
    const hash = this.hash(words, at);
    const slot = this.probe(words, at, hash);
    if (this.table[slot] !== 0) return false;
    const number = this.distinct++;
    if (wordIn(number) === 0) this.pages.push(new Uint32Array(PAGE_DIGESTS * WORDS));
    copyWords(words, at, this.pageOf(number), wordIn(number));
    this.table[slot] = this.slotValue(number, hash);
    // At most three quarters full: a probe that misses stays short.
    if (this.distinct * 4 > this.table.length * 3) this.rebuild(2 * this.table.length);
    else if (this.crowded()) this.rekey();
    return true;
  }

  /** Fixes the set: no more adds; `indexOf`, `markFound` and `forEachMissing` may be used from now on. */
  seal(): void {
    this.found ??= new Uint8Array(Math.ceil(this.distinct / 8));
  }

  has(digest: Buffer, offset = 0): boolean {
    return this.numberOf(digest, offset) >= 0;
  }

  /**
   * The digest's number in 0..size-1 (the order digests were first added),
   * or -1 when it is not in the set; after seal. A caller may keep facts per
   * referenced chunk in a typed array indexed by it.
   */
  indexOf(digest: Buffer, offset = 0): number {
    this.sealed();
    return this.numberOf(digest, offset);
  }

  /** `indexOf` for a digest held as words (see addWords). */
  indexOfWords(words: Uint32Array<ArrayBufferLike>, at: number): number {
    this.sealed();
    checkWords(words, at);
    return this.numberOfWords(words, at);
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
    const found = this.sealed();
    // A whole number in range (| 0 keeps it cheap: the sweep calls this for every referenced chunk).
    if (!(index >= 0 && index < this.distinct && (index | 0) === index)) throw new RangeError(`DigestSet: ${index} is not a digest's number (0..${this.distinct - 1})`);
    const bit = 1 << (index & 7);
    if ((found[index >>> 3]! & bit) === 0) {
      found[index >>> 3]! |= bit;
      this.foundCount++;
    }
  }

  /**
   * Calls `visit` for each digest not marked found, with its number and its
   * bytes (one reused Buffer: copy it to keep it), by number; after seal.
   */
  forEachMissing(visit: (index: number, digest: Buffer) => void): void {
    const found = this.sealed();
    for (let index = 0; index < this.distinct; index++) {
      if ((found[index >>> 3]! & (1 << (index & 7))) !== 0) continue;
      const start = wordIn(index);
      this.visitedWords.set(this.pageOf(index).subarray(start, start + WORDS));
      visit(index, this.visited);
    }
  }

  /** The page that holds digest `number` (at wordIn(number)). */
  private pageOf(number: number): Uint32Array {
    return this.pages[number >>> PAGE_SHIFT]!;
  }

  private sealed(): Uint8Array {
    if (!this.found) throw new Error('DigestSet: seal() first; the sweep asks only once every digest is added');
    return this.found;
  }

  private numberOf(digest: Buffer, offset: number): number {
    const { words, at } = this.point(digest, offset);
    return this.numberOfWords(words, at);
  }

  private numberOfWords(words: Uint32Array<ArrayBufferLike>, at: number): number {
    let slot = this.probe(words, at, this.hash(words, at));
    // Runs also grow by merging, which no add's probe saw: questions that meet crowds rekey too (numbers stay).
    if (this.crowded()) {
      this.rekey();
      slot = this.probe(words, at, this.hash(words, at));
    }
    const value = this.table[slot]!;
    return value === 0 ? -1 : (value >>> this.tagBits) - 1;
  }

  private point(digest: Buffer, offset: number): DigestWords {
    if (!(offset >= 0 && offset + DIGEST_BYTES <= digest.length)) {
      throw new RangeError(`DigestSet: no ${DIGEST_BYTES}-byte digest at offset ${offset} of a ${digest.length}-byte buffer`);
    }
    this.asked.point(digest, offset);
    return this.asked;
  }

  private hash(words: Uint32Array<ArrayBufferLike>, at: number): number {
    if (!this.keyed) return bigEndian(words[at]!);
    const keys = this.keys;
    let sum = 0;
    for (let word = 0; word < WORDS; word++) sum = (sum + mix(words[at + word]! ^ keys[word]!)) | 0;
    return mix(sum ^ keys[WORDS]!);
  }

  private slotValue(number: number, hash: number): number {
    const tagBits = this.tagBits;
    return (((number + 1) << tagBits) | (hash & ((1 << tagBits) - 1))) >>> 0;
  }

  /** The digest's slot, or the empty slot where it would go. */
  private probe(words: Uint32Array<ArrayBufferLike>, at: number, hash: number): number {
    const { table, tagBits } = this;
    const mask = table.length - 1;
    const tagMask = (1 << tagBits) - 1;
    const tag = hash & tagMask;
    const home = hash >>> tagBits;
    for (let slot = home; ; slot = (slot + 1) & mask) {
      const value = table[slot]!;
      if (value === 0 || ((value & tagMask) === tag && this.equals((value >>> tagBits) - 1, words, at))) {
        this.probed = (slot - home) & mask;
        this.probes++;
        this.probeSlots += this.probed;
        return slot;
      }
    }
  }

  private equals(number: number, words: Uint32Array<ArrayBufferLike>, at: number): boolean {
    return sameWords(this.pageOf(number), wordIn(number), words, at);
  }

  /** The last probe was too long, or probes have been too long on average, and something can still be done about it. */
  private crowded(): boolean {
    // Every property read on every call, none behind a short-circuit: one first read after thousands of calls would throw the optimised add back to the interpreter.
    const long = this.probed > LONGEST_RUN;
    const slow = this.probeSlots > MEAN_PROBE_LIMIT * this.probes;
    const checked = this.probes >= PROBES_CHECKED;
    const canRekey = this.reseeds < MAX_RESEEDS;
    return (long || (checked && slow)) && (!this.keyed || canRekey);
  }

  /** Digests crowd the table: from now on slots from the keyed hash, with new keys when it was keyed already. */
  private rekey(): void {
    if (this.keyed) {
      this.reseeds++;
      crypto().randomFillSync(this.keys);
    }
    this.keyed = true;
    this.rebuild(this.table.length);
  }

  /** A table of `slots` slots, every digest placed again from its words. */
  private rebuild(slots: number): void {
    const table = new Uint32Array(slots);
    this.table = table;
    this.tagBits = 32 - Math.log2(slots);
    this.probes = 0;
    this.probeSlots = 0;
    const mask = slots - 1;
    for (let number = 0; number < this.distinct; number++) {
      const hash = this.hash(this.pageOf(number), wordIn(number));
      let slot = hash >>> this.tagBits;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = this.slotValue(number, hash);
    }
  }
}

/** Where digest `number` starts in its page, in words. */
function wordIn(number: number): number {
  return (number & (PAGE_DIGESTS - 1)) * WORDS;
}

function checkWords(words: Uint32Array<ArrayBufferLike>, at: number): void {
  if (!(at >= 0 && at + WORDS <= words.length && (at | 0) === at)) throw new RangeError(`DigestSet: no ${WORDS}-word digest at word ${at} of ${words.length}`);
}

/** murmur3's 32-bit finaliser: every bit of the word moves every bit of the result. */
function mix(word: number): number {
  let x = word;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A word of digest bytes in native (little-endian) order, read as the big-endian number its bytes make: the digest's first bytes are its top bits. */
function bigEndian(word: number): number {
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}
