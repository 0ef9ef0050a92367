/**
 * Chunk records: what a scan with ScanSettings#chunkRecords hands the main
 * thread for the GC preview, instead of offenders, for every entry of a
 * prefix directory and every entry of `.chunks`. Fixed-size records in one
 * ArrayBuffer a batch (transferred from a worker, not copied), written in
 * the scanning thread with the name already decoded to the digest's 32
 * bytes, read in the main thread through one reused view: no object or
 * string per chunk on either side.
 *
 * A record is 20 words (80 bytes, native order; it never leaves the process):
 *   0      type | name kind << 8 | LOWERCASE | badIndex << 24 | LISTING
 *   1      prefix number (0..0xffff), or NOT_A_PREFIX
 *   2..9   digest (entries)
 *   10..11 atime, whole seconds (float64)
 *   12..13 size, st_size (float64)
 *   14..18 uid, gid, mode, stx_attributes (low word), classify bits
 *   19     errno of the listing (PREFIX_DONE; 0: listed)
 * Three types: ENTRY (an entry of a prefix directory whose name the sweep
 * takes, or a crashed insert's temp file), PREFIX_STAT (an entry of
 * `.chunks`: its stat, and whether it will be listed), PREFIX_DONE (a prefix
 * directory announced for listing has been listed, or could not be).
 * Words a type does not use are left as they were (buffers are reused).
 */
import { constants } from 'node:os';
import { errnoName } from '../fs/errors.js';
import type { StatWords } from '../fs/stat.js';
import { DIGEST_BYTES, NAME_KIND, type NameKind, parseChunkName, type ParsedName } from '../store/chunk-names.js';

export const RECORD_TYPE = { ENTRY: 1, PREFIX_STAT: 2, PREFIX_DONE: 3 } as const;
export type RecordType = (typeof RECORD_TYPE)[keyof typeof RECORD_TYPE];

const RECORD_WORDS = 20;
export const RECORD_BYTES = RECORD_WORDS * 4;
const WORD = { head: 0, prefix: 1, digest: 2, atime: 10, size: 12, uid: 14, gid: 15, mode: 16, attributes: 17, issues: 18, errno: 19 } as const;
const LOWERCASE = 1 << 16;
const LISTING = 1 << 17;
const BAD_INDEX_SHIFT = 24;
/** The first batch's room; a batch holds what 64 directories hold (worker batches), so this rarely grows. */
const INITIAL_RECORDS = 1024;
/** Buffers read and handed back (recycle), kept for the next batches: a million records make no garbage. */
const SPARES = 4;
/** An errno slot for an open refused as unsafe (EUNSAFEPATH has no number). */
const ERRNO_UNSAFE = 0xffff;

/** One batch of records: `count` of them at the start of `buffer`, and the names the sweep ignores, counted only. */
export interface ChunkRecordBatch {
  buffer: ArrayBuffer;
  count: number;
  ignored: number;
}

function errnoNumber(code: string): number {
  if (code === 'EUNSAFEPATH') return ERRNO_UNSAFE;
  const known = (constants.errno as Record<string, number>)[code];
  if (known !== undefined) return known;
  const numbered = /^E(\d+)$/.exec(code);
  return numbered ? Number(numbered[1]) : ERRNO_UNSAFE;
}

function errnoCode(errno: number): string {
  return errno === ERRNO_UNSAFE ? 'EUNSAFEPATH' : errnoName(errno);
}

/** The scanning thread's side: records appended as stats come back, handed over a batch at a time. */
export class ChunkRecordWriter {
  private words!: Uint32Array;
  private floats!: Float64Array;
  private count = 0;
  private ignored = 0;
  private readonly spares: ArrayBuffer[] = [];
  /** The scanner's name buffer (the same one entry after entry), seen as a DataView once. */
  private names: Buffer | undefined;
  private namesView: DataView = new DataView(new ArrayBuffer(0));
  private readonly parsed: ParsedName = { kind: NAME_KIND.IGNORED, lowercase: true, badIndex: -1 };

  constructor() {
    this.allocate(INITIAL_RECORDS);
  }

  /**
   * An entry of prefix directory `prefix`, its name NUL-terminated at `start`
   * of `name`: a record when the sweep takes the name (or it is a temp file),
   * else counted as ignored.
   */
  entry(prefix: number, name: Buffer, start: number, stat: StatWords, issues: number): void {
    const at = this.room();
    if (name !== this.names) {
      this.names = name;
      this.namesView = new DataView(name.buffer, name.byteOffset, name.byteLength);
    }
    const { kind, lowercase, badIndex } = parseChunkName(this.namesView, start, this.words, at + WORD.digest, this.parsed);
    if (kind === NAME_KIND.IGNORED) {
      this.ignored++;
      return;
    }
    this.words[at + WORD.head] = RECORD_TYPE.ENTRY | (kind << 8) | (lowercase ? LOWERCASE : 0) | (badIndex >= 0 ? badIndex << BAD_INDEX_SHIFT : 0);
    this.words[at + WORD.prefix] = prefix;
    this.floats[(at + WORD.atime) / 2] = stat.atimeSeconds;
    this.owner(at, stat, issues);
    this.count++;
  }

  /** An entry of `.chunks` (`prefix`: NOT_A_PREFIX for any other name); `listing`: it will be listed, and a PREFIX_DONE follow. */
  prefixStat(prefix: number, stat: StatWords, issues: number, listing: boolean): void {
    const at = this.room();
    this.words[at + WORD.head] = RECORD_TYPE.PREFIX_STAT | (listing ? LISTING : 0);
    this.words[at + WORD.prefix] = prefix;
    this.owner(at, stat, issues);
    this.count++;
  }

  /** Prefix directory `prefix` listed, or not (`error`: the errno name of the failed open or listing). */
  prefixDone(prefix: number, error: string | undefined): void {
    const at = this.room();
    this.words[at + WORD.head] = RECORD_TYPE.PREFIX_DONE;
    this.words[at + WORD.prefix] = prefix;
    this.words[at + WORD.errno] = error === undefined ? 0 : errnoNumber(error);
    this.count++;
  }

  /** A buffer of a batch read and done with, to write the next batches in. */
  recycle(buffer: ArrayBuffer): void {
    if (this.spares.length < SPARES && buffer.byteLength >= INITIAL_RECORDS * RECORD_WORDS * 4) this.spares.push(buffer);
  }

  /** The records so far, to send (the buffer is the receiver's now), or undefined when there are none. */
  drain(): ChunkRecordBatch | undefined {
    if (this.count === 0 && this.ignored === 0) return undefined;
    const batch = { buffer: this.words.buffer as ArrayBuffer, count: this.count, ignored: this.ignored };
    this.allocate(INITIAL_RECORDS);
    this.count = 0;
    this.ignored = 0;
    return batch;
  }

  private owner(at: number, stat: StatWords, issues: number): void {
    const { words } = this;
    this.floats[(at + WORD.size) / 2] = stat.size;
    words[at + WORD.uid] = stat.uid;
    words[at + WORD.gid] = stat.gid;
    words[at + WORD.mode] = stat.mode;
    words[at + WORD.attributes] = stat.attributes;
    words[at + WORD.issues] = issues;
  }

  /** The word index of the next record, the buffer grown when it is full. */
  private room(): number {
    if ((this.count + 1) * RECORD_WORDS > this.words.length) {
      const old = this.words;
      this.allocate(2 * (old.length / RECORD_WORDS));
      this.words.set(old);
      this.recycle(old.buffer as ArrayBuffer);
    }
    return this.count * RECORD_WORDS;
  }

  private allocate(records: number): void {
    const bytes = records * RECORD_WORDS * 4;
    // Not zeroed: every word a record's type uses is written.
    const buffer = this.spares.length > 0 && this.spares.at(-1)!.byteLength >= bytes ? this.spares.pop()! : (Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer);
    this.words = new Uint32Array(buffer);
    this.floats = new Float64Array(buffer);
  }
}

const KINDS = ['ignored', 'chunk', 'bad', 'using', 'temp'] as const;
export type ChunkKind = Exclude<(typeof KINDS)[number], 'ignored'>;

/**
 * The main thread's side: one reused view over a batch, moved from record
 * to record. What it returns is valid until it moves.
 */
export class ChunkRecordReader {
  private recordWords = new Uint32Array(0);
  private floats = new Float64Array(0);
  /** The batch's bytes; a digest is at `digestOffset` in it. */
  bytes = Buffer.alloc(0);
  private at = 0;
  private readonly digestCopy = Buffer.alloc(DIGEST_BYTES);

  /** Read `batch` from its first record. */
  load(batch: ChunkRecordBatch): void {
    this.recordWords = new Uint32Array(batch.buffer, 0, batch.count * RECORD_WORDS);
    this.floats = new Float64Array(batch.buffer, 0, (batch.count * RECORD_WORDS) / 2);
    this.bytes = Buffer.from(batch.buffer, 0, batch.count * RECORD_WORDS * 4);
    this.at = 0;
  }

  select(index: number): void {
    this.at = index * RECORD_WORDS;
  }

  get type(): RecordType {
    return (this.recordWords[this.at + WORD.head]! & 0xff) as RecordType;
  }
  /** 0..0xffff, or NOT_A_PREFIX. */
  get prefix(): number {
    return this.recordWords[this.at + WORD.prefix]! | 0;
  }
  get kind(): ChunkKind {
    return KINDS[((this.recordWords[this.at + WORD.head]! >> 8) & 0xff) as NameKind] as ChunkKind;
  }
  get lowercase(): boolean {
    return (this.recordWords[this.at + WORD.head]! & LOWERCASE) !== 0;
  }
  /** The digit of a `<digest>.<d>.bad` name, -1 for other names. */
  get badIndex(): number {
    return this.kind === 'bad' ? this.recordWords[this.at + WORD.head]! >>> BAD_INDEX_SHIFT : -1;
  }
  /** PREFIX_STAT: the directory will be listed. */
  get listing(): boolean {
    return (this.recordWords[this.at + WORD.head]! & LISTING) !== 0;
  }
  get digestOffset(): number {
    return (this.at + WORD.digest) * 4;
  }
  /** The batch as native-order words; the digest is the eight from `digestWord`. */
  get words(): Uint32Array {
    return this.recordWords;
  }
  get digestWord(): number {
    return this.at + WORD.digest;
  }
  /** The 32 digest bytes, copied into one reused Buffer. */
  get digest(): Buffer {
    this.bytes.copy(this.digestCopy, 0, this.digestOffset, this.digestOffset + DIGEST_BYTES);
    return this.digestCopy;
  }
  get atime(): number {
    return this.floats[(this.at + WORD.atime) / 2]!;
  }
  get size(): number {
    return this.floats[(this.at + WORD.size) / 2]!;
  }
  get uid(): number {
    return this.recordWords[this.at + WORD.uid]!;
  }
  get gid(): number {
    return this.recordWords[this.at + WORD.gid]!;
  }
  get mode(): number {
    return this.recordWords[this.at + WORD.mode]!;
  }
  get attributes(): number {
    return this.recordWords[this.at + WORD.attributes]!;
  }
  get issues(): number {
    return this.recordWords[this.at + WORD.issues]!;
  }
  /** PREFIX_DONE: the errno name of the failed open or listing, undefined when it was listed. */
  get errno(): string | undefined {
    const errno = this.recordWords[this.at + WORD.errno]!;
    return errno === 0 ? undefined : errnoCode(errno);
  }
}
