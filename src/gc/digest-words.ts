/**
 * A 32-byte digest inside a Buffer, seen as eight words in native order:
 * compared, hashed and copied a word at a time (a byte at a time, or a
 * Buffer call per digest, cost most of phase 1's time outside the set).
 * The words are the buffer's own memory when the digest is 4-byte aligned
 * (index entries and chunk records are), else a copy. One per reader: it
 * keeps a view of the memory it saw last, as readers hand over one buffer
 * digest after digest.
 */
import { DIGEST_BYTES } from '../store/chunk-names.js';

export { DIGEST_BYTES };
export const DIGEST_WORDS = DIGEST_BYTES / 4;

export class DigestWords {
  /** After `point`: the digest is words[at] to words[at + 7]. */
  words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  at = 0;
  private memory: ArrayBufferLike | undefined;
  private memoryWords: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  private readonly scratch = new Uint32Array(DIGEST_WORDS);
  private readonly scratchBytes = new Uint8Array(this.scratch.buffer);

  /**
   * Points at the first of digests one every `stride` bytes from `offset`: true when
   * all of them are in `words` (the nth from `at + n * stride / 4`), false when each
   * must be pointed at alone (not 4-byte aligned).
   */
  pointRun(bytes: Buffer, offset: number, stride: number): boolean {
    this.point(bytes, offset);
    return this.words !== this.scratch && (stride & 3) === 0;
  }

  /** Calls `sink` for `count` digests one every `stride` bytes from `offset` of `bytes`. */
  forEach(bytes: Buffer, offset: number, count: number, stride: number, sink: DigestSink): void {
    if (this.pointRun(bytes, offset, stride)) {
      const { words, at } = this;
      for (let entry = 0; entry < count; entry++) sink(words, at + entry * (stride >>> 2));
      return;
    }
    for (let entry = 0; entry < count; entry++) {
      this.point(bytes, offset + entry * stride);
      sink(this.words, this.at);
    }
  }

  /** Points `words` and `at` at the digest at `offset` of `bytes` (the caller checked that it fits). */
  point(bytes: Buffer, offset: number): void {
    const start = bytes.byteOffset + offset;
    if ((start & 3) !== 0) {
      for (let byte = 0; byte < DIGEST_BYTES; byte++) this.scratchBytes[byte] = bytes[offset + byte]!;
      this.words = this.scratch;
      this.at = 0;
      return;
    }
    // A new view only for new memory (a records buffer that came back from a worker is new memory).
    if (bytes.buffer !== this.memory) {
      this.memory = bytes.buffer;
      this.memoryWords = new Uint32Array(bytes.buffer, 0, bytes.buffer.byteLength >>> 2);
    }
    this.words = this.memoryWords;
    this.at = start >>> 2;
  }
}

/** One digest as words: `words[at]` to `words[at + 7]`, valid only during the call. */
export type DigestSink = (words: Uint32Array<ArrayBufferLike>, at: number) => void;

/**
 * 8 words compared in place: most differing digests differ in the first. Written out, not
 * a loop: the repeat filter, which compares every index entry, ran ~1.4x as long warm with the loop.
 */
export function sameWords(a: Uint32Array<ArrayBufferLike>, aAt: number, b: Uint32Array<ArrayBufferLike>, bAt: number): boolean {
  return (
    a[aAt] === b[bAt] &&
    a[aAt + 1] === b[bAt + 1] &&
    a[aAt + 2] === b[bAt + 2] &&
    a[aAt + 3] === b[bAt + 3] &&
    a[aAt + 4] === b[bAt + 4] &&
    a[aAt + 5] === b[bAt + 5] &&
    a[aAt + 6] === b[bAt + 6] &&
    a[aAt + 7] === b[bAt + 7]
  );
}

export function copyWords(from: Uint32Array<ArrayBufferLike>, fromAt: number, to: Uint32Array<ArrayBufferLike>, toAt: number): void {
  for (let word = 0; word < DIGEST_WORDS; word++) to[toAt + word] = from[fromAt + word]!;
}
