/**
 * The names the server's GC sweep looks at (pbs-datastore chunk_store.rs,
 * get_chunk_store_iterator, 4.2.3): it opens the prefix directories
 * `.chunks/0000` to `ffff` by name, and in each takes only
 *   `<64 hex>`          a chunk,
 *   `<64 hex>.<d>.bad`  a chunk verify found corrupt (d a decimal digit),
 *   `<64 hex>.using`    an S3 cache marker,
 * where hex is either case (is_ascii_hexdigit). Every other name is ignored;
 * among those, a crashed insert's `<64 hex>.tmp_XXXXXX` (mkostemp) is told
 * apart here, as it stays forever. Names are read as bytes from a listing
 * buffer, NUL-terminated, without a string or an object per name.
 */
import type { RelPath } from '../fs/rel-path.js';

/** What a name is to the sweep; IGNORED for every name it skips. */
export const NAME_KIND = { IGNORED: 0, CHUNK: 1, BAD: 2, USING: 3, TEMP: 4 } as const;
export type NameKind = (typeof NAME_KIND)[keyof typeof NAME_KIND];

export const DIGEST_BYTES = 32;
const HEX_DIGITS = 2 * DIGEST_BYTES;
/** A prefix directory's name is exactly four lowercase hex digits (the server formats `{:04x}`). */
const PREFIX_DIGITS = 4;
export const NOT_A_PREFIX = -1;

/** A hex digit's value (either case), or -1. */
const HEX_VALUE = new Int8Array(256).fill(-1);
/** Set for A-F: such a name is another file than the lowercase one the mark touches. */
const UPPER = new Uint8Array(256);
/** The 22 hex digits, either case. */
const HEX_CHARS: number[] = [];
for (let digit = 0; digit < 16; digit++) {
  const lower = '0123456789abcdef'.charCodeAt(digit);
  const upper = '0123456789ABCDEF'.charCodeAt(digit);
  HEX_VALUE[lower] = digit;
  HEX_VALUE[upper] = digit;
  if (upper !== lower) UPPER[upper] = 1;
  HEX_CHARS.push(...(upper !== lower ? [lower, upper] : [lower]));
}
/**
 * Two name bytes (first << 8 | second) to the byte they spell, UPPERCASE_PAIR
 * added when either digit is A-F, or -1: 128 KiB a thread. Four name bytes
 * read at once and two look-ups a pair of digest bytes take 50 ns a name,
 * a byte at a time 120 (measured): the walk parses a million.
 */
const UPPERCASE_PAIR = 0x100;
const PAIR_VALUE = new Int16Array(1 << 16).fill(-1);
// The 484 pairs of digits only: every start of every command builds this table (the 65,536 took ~3 ms).
for (const first of HEX_CHARS) {
  for (const second of HEX_CHARS) PAIR_VALUE[(first << 8) | second] = (HEX_VALUE[first]! << 4) | HEX_VALUE[second]! | (UPPER[first]! | UPPER[second]! ? UPPERCASE_PAIR : 0);
}
/** mkostemp's XXXXXX: letters and digits. */
const TEMP_CHAR = new Uint8Array(256);
for (const range of ['09', 'AZ', 'az']) for (let c = range.charCodeAt(0); c <= range.charCodeAt(1); c++) TEMP_CHAR[c] = 1;

const DOT = 0x2e;
const ZERO = 0x30;
const BAD = Buffer.from('.bad');
const USING = Buffer.from('.using');
const TEMP = Buffer.from('.tmp_');
const TEMP_RANDOM = 6;

/** The parsed name: its kind, whether every letter in it is lowercase, the digit of a `.bad` name. */
export interface ParsedName {
  kind: NameKind;
  lowercase: boolean;
  badIndex: number;
}

function matches(name: DataView, at: number, literal: Buffer): boolean {
  for (let i = 0; i < literal.length; i++) if (name.getUint8(at + i) !== literal[i]) return false;
  return true;
}

/** The length of the NUL-terminated name at `start`. */
function nameLength(name: DataView, start: number): number {
  let end = start;
  while (end < name.byteLength && name.getUint8(end) !== 0) end++;
  return end - start;
}

/** The host's byte order: a digest's four bytes go into one word in the order memory holds them. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The NUL-terminated name at `start` of `name` (a listing buffer), judged as
 * the sweep judges it; its 64 hex digits are decoded into `digest` from word
 * `digestWord` (eight words, the digest's bytes in memory order; only
 * meaningful when the kind is not IGNORED). Fills and returns `out`.
 */
export function parseChunkName(name: DataView, start: number, digest: Uint32Array, digestWord: number, out: ParsedName): ParsedName {
  out.kind = NAME_KIND.IGNORED;
  out.lowercase = true;
  out.badIndex = -1;
  // The name and its NUL lie inside the buffer: with less room left it is shorter than a digest (and the reads below stay inside).
  if (start + HEX_DIGITS >= name.byteLength) return out;
  let seen = 0;
  // Eight name bytes, four digest bytes, one word written.
  for (let word = 0; word < DIGEST_BYTES / 4; word++) {
    const front = name.getUint32(start + 8 * word);
    const back = name.getUint32(start + 8 * word + 4);
    const b0 = PAIR_VALUE[front >>> 16]!;
    const b1 = PAIR_VALUE[front & 0xffff]!;
    const b2 = PAIR_VALUE[back >>> 16]!;
    const b3 = PAIR_VALUE[back & 0xffff]!;
    // A NUL before 64 digits is not a digit: shorter names stop here.
    if ((b0 | b1 | b2 | b3) < 0) return out;
    seen |= b0 | b1 | b2 | b3;
    digest[digestWord + word] = LITTLE_ENDIAN
      ? (b0 & 0xff) | ((b1 & 0xff) << 8) | ((b2 & 0xff) << 16) | ((b3 & 0xff) << 24)
      : ((b0 & 0xff) << 24) | ((b1 & 0xff) << 16) | ((b2 & 0xff) << 8) | (b3 & 0xff);
  }
  out.lowercase = (seen & UPPERCASE_PAIR) === 0;
  const rest = start + HEX_DIGITS;
  const length = nameLength(name, rest);
  const digit = length > 1 ? name.getUint8(rest + 1) - ZERO : -1;
  if (length === 0) out.kind = NAME_KIND.CHUNK;
  else if (length === 2 + BAD.length && name.getUint8(rest) === DOT && digit >= 0 && digit <= 9 && matches(name, rest + 2, BAD)) {
    out.kind = NAME_KIND.BAD;
    out.badIndex = digit;
  } else if (length === USING.length && matches(name, rest, USING)) out.kind = NAME_KIND.USING;
  else if (length === TEMP.length + TEMP_RANDOM && matches(name, rest, TEMP) && isTempRandom(name, rest + TEMP.length)) out.kind = NAME_KIND.TEMP;
  return out;
}

function isTempRandom(name: DataView, at: number): boolean {
  for (let i = 0; i < TEMP_RANDOM; i++) if (!TEMP_CHAR[name.getUint8(at + i)]) return false;
  return true;
}

/** The number of the prefix directory named by the NUL-terminated name at `start` (`0000`..`ffff`), or NOT_A_PREFIX. */
export function prefixAt(name: Buffer, start: number): number {
  let prefix = 0;
  for (let i = 0; i < PREFIX_DIGITS; i++) {
    const byte = name[start + i]!;
    const value = HEX_VALUE[byte]!;
    if (value < 0 || UPPER[byte]) return NOT_A_PREFIX;
    prefix = (prefix << 4) | value;
  }
  return name[start + PREFIX_DIGITS] === 0 ? prefix : NOT_A_PREFIX;
}

const SLASH = 0x2f;

/** The same for the last component of a path (raw bytes when it is not UTF-8, never a prefix then). */
export function prefixOfPath(rel: RelPath): number {
  if (typeof rel !== 'string') return NOT_A_PREFIX;
  // The last component is four characters: the path is that, or ends in `/` and that.
  // (Char codes, not lastIndexOf: that is a call into the runtime, once per prefix directory.)
  const start = rel.length - PREFIX_DIGITS;
  if (start < 0 || (start > 0 && rel.charCodeAt(start - 1) !== SLASH)) return NOT_A_PREFIX;
  let prefix = 0;
  for (let at = start; at < rel.length; at++) {
    const code = rel.charCodeAt(at);
    // Past 0xff a code would wrap around in the byte tables.
    const value = code < 0x100 && !UPPER[code] ? HEX_VALUE[code]! : -1;
    if (value < 0) return NOT_A_PREFIX;
    prefix = (prefix << 4) | value;
  }
  return prefix;
}

/** `0000`..`ffff`: the name of a prefix directory, as the server formats it. */
export function prefixName(prefix: number): string {
  return prefix.toString(16).padStart(PREFIX_DIGITS, '0');
}
