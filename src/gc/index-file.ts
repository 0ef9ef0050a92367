/**
 * One index file (`.fidx` or `.didx`) read the way the backup server's GC reads
 * it (pbs-datastore fixed_index.rs / dynamic_index.rs, 4.2.3): the kind from the
 * name, then the same checks in the same order, each failure a typed problem
 * instead of GC's abort. The digests go to a callback as they are read, in
 * bounded pieces, so a huge index never sits in memory whole and no string or
 * object is made per digest.
 *
 * Where chunkguard is stricter than the server, on purpose: the server opens
 * the name with a plain open(), so it follows a symlink and blocks on a FIFO;
 * here neither is opened (SYMLINK, NOT_REGULAR), and the caller decides what
 * the server would have made of it.
 */
import type { Hash } from 'node:crypto';
import { crypto } from '../runtime/builtins.js';
import { readSync } from 'node:fs';
import { closeFd, type Dir, type Name, statFd } from '../fs/dir.js';
import { errnoCode } from '../errors.js';
import { fileType, type Stat } from '../fs/stat.js';
import { plural } from '../findings.js';
import { DIGEST_BYTES } from '../store/chunk-names.js';

export type IndexKind = 'fixed' | 'dynamic';

/** The header both kinds share: one page on the server's platforms (x86_64, arm64). */
export const INDEX_HEADER_SIZE = 4096;
export const DIGEST_SIZE = DIGEST_BYTES;

/** The first 8 bytes of SHA-256 of "Proxmox Backup fixed/dynamic sized chunk index v1.0" (file_formats.rs). */
export const INDEX_MAGIC: Record<IndexKind, Buffer> = {
  fixed: Buffer.from([47, 127, 65, 237, 145, 253, 15, 205]),
  dynamic: Buffer.from([28, 145, 78, 165, 25, 186, 179, 205]),
};

/** Header offsets (little-endian). */
const CTIME_AT = 24;
const CSUM_AT = 32;
const FIXED_SIZE_AT = 64;
const FIXED_CHUNK_SIZE_AT = 72;

/** A fixed index holds bare digests; a dynamic one entries of end offset (u64) then digest. */
const ENTRY_SIZE: Record<IndexKind, number> = { fixed: DIGEST_SIZE, dynamic: 8 + DIGEST_SIZE };

/** How much of the entry area is read at a time: about 1 MiB, whole entries only. */
const READ_BYTES = 1024 * 1024;

export type IndexProblemCode =
  | 'VANISHED'
  | 'SYMLINK'
  | 'NOT_REGULAR'
  | 'READ_FAILED'
  | 'TOO_SHORT'
  | 'BAD_MAGIC'
  | 'BAD_CHUNK_SIZE'
  | 'SIZE_MISMATCH'
  | 'EMPTY'
  | 'CHANGED';

export interface IndexProblem {
  code: IndexProblemCode;
  /** One sentence about the file (the caller names its path). */
  reason: string;
  /** The errno of a failed open, stat or read. */
  errno?: string;
}

export interface IndexRead {
  ok: true;
  kind: IndexKind;
  /** Entries in the index, each delivered to the callback (repeats included). */
  digests: number;
  /** The file's size (st_size). */
  bytes: number;
  /**
   * The data the index describes, what the server adds to its index-data-bytes:
   * the header's size for a fixed index, the last entry's end offset for a dynamic one.
   */
  size: bigint;
  /** Fixed only: the header's chunk size. */
  chunkSize?: number;
  /** The header's ctime (Unix seconds). */
  ctime: bigint;
  /** With `{ checksum: true }`: whether index_csum matches the entries (GC never checks it; verify does). */
  checksumMatches?: boolean;
}

/** The reader's refusal: what the server's reader would have failed on (or, for VANISHED, skipped). */
export type IndexRefused = { ok: false; problem: IndexProblem };

export type IndexResult = IndexRead | IndexRefused;

/**
 * Called once per read of entries, in file order: `count` digests in `bytes`,
 * the first at `first`, one every `stride` bytes (the entry size). The bytes
 * are valid only during the call (every read shares one buffer): copy them,
 * and read no other index from inside the call.
 */
export type DigestVisitor = (bytes: Buffer, first: number, count: number, stride: number) => void;

const DOT = '.'.charCodeAt(0);

/** The entries an index of `size` bytes holds, by its kind's entry size (0 when it is too short for its header). */
export function entriesIn(kind: IndexKind, size: number): number {
  return Math.max(0, Math.floor((size - INDEX_HEADER_SIZE) / ENTRY_SIZE[kind]));
}

/**
 * The index kind of a name, as the server's ArchiveType::from_path decides it:
 * the extension after the last dot, and a name whose only dot is its first
 * character has none (`.fidx` is not an index; `a.b.fidx` is).
 */
export function indexKindOf(name: Name): IndexKind | undefined {
  const bytes = typeof name === 'string' ? Buffer.from(name) : name[name.length - 1] === 0 ? name.subarray(0, -1) : name;
  const dot = bytes.lastIndexOf(DOT);
  if (dot <= 0) return undefined;
  const extension = bytes.subarray(dot + 1).toString('latin1');
  return extension === 'fidx' ? 'fixed' : extension === 'didx' ? 'dynamic' : undefined;
}

function problem(code: IndexProblemCode, reason: string, errno?: string): IndexRefused {
  return { ok: false, problem: errno === undefined ? { code, reason } : { code, reason, errno } };
}

const GC_ABORTS = "the server's garbage collection stops at it";

/** What the name is before anything opens it: a FIFO, device or symlink is never opened. */
function checkEntry(dir: Dir, name: Name): IndexRefused | undefined {
  let stat: Stat | undefined;
  try {
    stat = dir.stat(name);
  } catch (error) {
    return failedCall(errnoOf(error), 'stat');
  }
  return stat ? checkType(stat) : vanished();
}

function vanished(): IndexRefused {
  return problem('VANISHED', "vanished while chunkguard read the store (a prune or a backup's rename removed it); the server's GC skips such a file too");
}

function checkType(stat: Stat): IndexRefused | undefined {
  const type = fileType(stat.mode);
  if (type === 'file') return undefined;
  if (type === 'symlink') return symlink();
  return problem('NOT_REGULAR', `is a ${type}, not a regular file: chunkguard never opens it (the server's GC would fail on it or, for a FIFO, wait forever); rename or remove it`);
}

function symlink(): IndexRefused {
  return problem('SYMLINK', "is a symlink, not an index file: chunkguard does not follow it (the server's GC would read its target); replace it with the file or remove it");
}

/** A failed stat, open or read of the index: the errno decides. */
function failedCall(code: string, syscall: string): IndexRefused {
  if (code === 'ENOENT') return vanished();
  // O_NOFOLLOW meeting a symlink swapped in after the stat.
  if (code === 'ELOOP') return symlink();
  const remedy = code === 'EACCES' || code === 'EPERM' ? 'give the GC user read access to it' : 'check the disk or filesystem that holds it';
  return problem('READ_FAILED', `cannot be read (${syscall} failed with ${code}): ${GC_ABORTS}; ${remedy}`, code);
}

/** The errno of a failed call; anything else is chunkguard's own bug and propagates. */
function errnoOf(error: unknown): string {
  const code = errnoCode(error);
  if (code === undefined) throw error;
  return code;
}

/** readSync until `length` bytes are in `buf` or the file ends: the count read, or the failed read's problem. */
function readBytes(fd: number, buf: Buffer, length: number, position: number): number | IndexRefused {
  let done = 0;
  try {
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
  } catch (error) {
    return failedCall(errnoOf(error), 'read');
  }
  return done;
}

function changed(): IndexRefused {
  return problem('CHANGED', 'changed while chunkguard read it (its size or modification time moved): read the store again when no backup or prune is writing it');
}

interface Header {
  kind: IndexKind;
  ctime: bigint;
  csum: Buffer;
  /** Fixed: the data size and chunk size from the header. */
  size: bigint;
  chunkSize: bigint;
}

/** The header's checks after the magic, in the server's order: chunk size, then the file's size. */
function checkLayout(header: Header, fileSize: bigint): IndexRefused | { entries: number } {
  const area = fileSize - BigInt(INDEX_HEADER_SIZE);
  if (header.kind === 'fixed') {
    const { size, chunkSize } = header;
    // The server's `chunk_size.is_power_of_two()` (false for 0 too).
    if (chunkSize === 0n || (chunkSize & (chunkSize - 1n)) !== 0n) {
      return problem('BAD_CHUNK_SIZE', `has a chunk size of ${chunkSize}, not a power of two: the index is corrupt and ${GC_ABORTS}`);
    }
    // The server's `size.div_ceil(chunk_size) * 32` against the bytes after the header.
    const entries = (size + chunkSize - 1n) / chunkSize;
    if (entries * BigInt(DIGEST_SIZE) !== area) {
      return problem('SIZE_MISMATCH', `describes ${size} bytes in ${plural(Number(entries), 'chunk')} of ${chunkSize} bytes but holds ${area} bytes of digests (${entries * 32n} expected): the index is truncated or corrupt and ${GC_ABORTS}`);
    }
    return entries === 0n ? empty() : { entries: Number(entries) };
  }
  // The server's `index_count * 40 != index_size`.
  if (area % 40n !== 0n) {
    return problem('SIZE_MISMATCH', `holds ${area} bytes after its header, not a whole number of 40-byte entries: the index is truncated or corrupt and ${GC_ABORTS}`);
  }
  return area === 0n ? empty() : { entries: Number(area / 40n) };
}

/** The server maps the entries with mmap, which refuses a length of zero: an index without entries stops its GC. */
function empty(): IndexRefused {
  return problem('EMPTY', `has no entries after its header: the server's reader cannot map an empty index, so ${GC_ABORTS}; remove the snapshot or file if it is not needed`);
}

/** The header's fields once the magic is the kind's (the server's "got unknown magic number" otherwise). */
function parseHeader(kind: IndexKind, buf: Buffer): Header | IndexRefused {
  if (!buf.subarray(0, 8).equals(INDEX_MAGIC[kind])) {
    const other: IndexKind = kind === 'fixed' ? 'dynamic' : 'fixed';
    const hint = buf.subarray(0, 8).equals(INDEX_MAGIC[other]) ? ` (it carries a ${other} index's magic: the name's extension is wrong)` : '';
    return problem('BAD_MAGIC', `does not start with the ${kind} index magic${hint}: it is not a ${kind} index and ${GC_ABORTS}`);
  }
  return {
    kind,
    ctime: buf.readBigInt64LE(CTIME_AT),
    csum: Buffer.from(buf.subarray(CSUM_AT, CSUM_AT + 32)),
    size: kind === 'fixed' ? buf.readBigUInt64LE(FIXED_SIZE_AT) : 0n,
    chunkSize: kind === 'fixed' ? buf.readBigUInt64LE(FIXED_CHUNK_SIZE_AT) : 0n,
  };
}

function isProblem(value: unknown): value is IndexRefused {
  return typeof value === 'object' && value !== null && 'ok' in value && value.ok === false;
}

let shared: Buffer | undefined;

/** One buffer for every read of entries (READ_BYTES): a hundred indexes read cost no hundred allocations, nor the collections they bring. */
function readBuffer(): Buffer {
  shared ??= Buffer.allocUnsafeSlow(READ_BYTES);
  return shared;
}

/**
 * Read the entry area: each digest to `onDigest`, the checksum fed when asked for.
 * The dynamic index's data size (the last end offset) is returned.
 */
function readEntries(fd: number, kind: IndexKind, entries: number, onDigest: DigestVisitor, hash: Hash | undefined): bigint | IndexRefused {
  const entrySize = ENTRY_SIZE[kind];
  const digestAt = entrySize - DIGEST_SIZE;
  const perRead = Math.max(1, Math.floor(READ_BYTES / entrySize));
  const buf = readBuffer();
  let lastEnd = 0n;
  for (let first = 0; first < entries; first += perRead) {
    const count = Math.min(perRead, entries - first);
    const length = count * entrySize;
    const read = readBytes(fd, buf, length, INDEX_HEADER_SIZE + first * entrySize);
    if (typeof read !== 'number') return read;
    if (read < length) return changed();
    hash?.update(buf.subarray(0, length));
    onDigest(buf, digestAt, count, entrySize);
    if (kind === 'dynamic') lastEnd = buf.readBigUInt64LE(length - entrySize);
  }
  return lastEnd;
}

/**
 * Read the index `name` in `dir`: its digests to `onDigest`, in file order,
 * then its facts, or the problem that made the server's reader refuse it (or
 * would have). Digests delivered before a problem (CHANGED, READ_FAILED) came
 * from a file that then failed: the caller decides what they count for.
 * Never throws for anything the file holds; closes what it opens.
 */
export function readIndex(dir: Dir, name: Name, onDigest: DigestVisitor, options: { checksum?: boolean } = {}): IndexResult {
  const kind = indexKindOf(name);
  if (!kind) throw new Error(`readIndex: ${dir.pathOf(name)} does not end in .fidx or .didx`);
  const refused = checkEntry(dir, name);
  if (refused) return refused;
  let fd: number;
  try {
    fd = dir.openFile(name);
  } catch (error) {
    return failedCall(errnoOf(error), 'open');
  }
  try {
    return readOpen(fd, kind, onDigest, options.checksum === true);
  } finally {
    closeFd(fd);
  }
}

/**
 * The server's order: fstat, the size against the header, the header read whole,
 * the magic, (fixed) the chunk size, the file's size against the entries, the
 * entries mapped (none is an error there). Then, ours: the file did not change.
 */
function readOpen(fd: number, kind: IndexKind, onDigest: DigestVisitor, checksum: boolean): IndexResult {
  // The server's fstat of the open file: what is checked is what is read.
  const before = statFd(fd);
  if (!before) return problem('READ_FAILED', `cannot be stat'ed through its descriptor: ${GC_ABORTS}`, 'EIO');
  const wrongType = checkType(before);
  if (wrongType) return wrongType;
  // The server's "index too small".
  if (before.size < BigInt(INDEX_HEADER_SIZE)) {
    return problem('TOO_SHORT', `is ${plural(Number(before.size), 'byte')}, shorter than the ${INDEX_HEADER_SIZE}-byte header of an index: it is truncated and ${GC_ABORTS}`);
  }
  const headerBytes = Buffer.alloc(INDEX_HEADER_SIZE);
  const read = readBytes(fd, headerBytes, INDEX_HEADER_SIZE, 0);
  if (typeof read !== 'number') return read;
  // The server's read of the whole header fails the same way on a file cut since the fstat.
  if (read < INDEX_HEADER_SIZE) return changed();
  const header = parseHeader(kind, headerBytes);
  if (isProblem(header)) return header;
  const layout = checkLayout(header, before.size);
  if (isProblem(layout)) return layout;
  const hash = checksum ? crypto().createHash('sha256') : undefined;
  const lastEnd = readEntries(fd, kind, layout.entries, onDigest, hash);
  if (typeof lastEnd !== 'bigint') return lastEnd;
  const after = statFd(fd);
  if (!after || after.size !== before.size || after.mtimeNs !== before.mtimeNs) return changed();
  return {
    ok: true,
    kind,
    digests: layout.entries,
    bytes: Number(before.size),
    size: kind === 'fixed' ? header.size : lastEnd,
    ...(kind === 'fixed' ? { chunkSize: Number(header.chunkSize) } : {}),
    ctime: header.ctime,
    ...(hash ? { checksumMatches: hash.digest().equals(header.csum) } : {}),
  };
}
