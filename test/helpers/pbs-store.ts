/**
 * Datastores in the backup server's on-disk format, written from the format's
 * facts (docs and shared design notes), for the GC preview's tests: chunks,
 * namespaces, groups, snapshots with fixed and dynamic indexes and a manifest,
 * and a record of everything written so a test compares exact counts and bytes.
 *
 * The index format is encoded here on its own, not with src/gc's constants: the
 * writer is a second witness of the format, so a wrong constant in the reader
 * fails the tests instead of agreeing with itself.
 */
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBlob, UNCOMPRESSED_BLOB_MAGIC } from '../../src/chunk/blob.js';

const HEADER_SIZE = 4096;
const FIXED_MAGIC = [47, 127, 65, 237, 145, 253, 15, 205];
const DYNAMIC_MAGIC = [28, 145, 78, 165, 25, 186, 179, 205];

/** The ways an index is broken on purpose, each one check of the server's reader. */
export type BrokenIndex =
  /** Cut inside the 4096-byte header. */
  | 'short'
  /** The last entry cut in half. */
  | 'truncated'
  /** A magic of neither kind. */
  | 'wrong-magic'
  /** Fixed: a chunk size that is not a power of two. */
  | 'bad-chunk-size'
  /** Fixed: the header's size claims one chunk more than the file holds; dynamic: 7 stray bytes after the entries. */
  | 'size-mismatch'
  /** A header and no entries. */
  | 'empty';

export interface IndexContent {
  kind: 'fixed' | 'dynamic';
  /** The digests in order (32 bytes each). */
  digests: Buffer[];
  /** Fixed: the chunk size (default 4 MiB). */
  chunkSize?: number;
  /** Fixed: the image size (default digests × chunk size). */
  size?: bigint;
  /** Dynamic: each entry's end offset (default: each chunk 4096 bytes long). */
  ends?: bigint[];
  ctime?: bigint;
  uuid?: Buffer;
  broken?: BrokenIndex;
}

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** The entry area: bare digests (fixed) or end offset u64 LE + digest (dynamic). */
function entryArea(content: IndexContent): Buffer {
  if (content.kind === 'fixed') return Buffer.concat(content.digests);
  return Buffer.concat(
    content.digests.map((digest, i) => {
      const end = Buffer.alloc(8);
      end.writeBigUInt64LE(content.ends?.[i] ?? BigInt((i + 1) * 4096));
      return Buffer.concat([end, digest]);
    }),
  );
}

/** An index file's bytes: header (magic, uuid, ctime, index_csum = SHA-256 of the entry area, fixed size and chunk size), then the entries. */
export function encodeIndex(content: IndexContent): Buffer {
  const { kind, broken } = content;
  const digests = broken === 'empty' ? [] : content.digests;
  const area = entryArea({ ...content, digests });
  const header = Buffer.alloc(HEADER_SIZE);
  header.set(broken === 'wrong-magic' ? [1, 2, 3, 4, 5, 6, 7, 8] : kind === 'fixed' ? FIXED_MAGIC : DYNAMIC_MAGIC, 0);
  header.set(content.uuid ?? Buffer.alloc(16, 0x5a), 8);
  header.writeBigInt64LE(content.ctime ?? 1_700_000_000n, 24);
  header.set(sha256(area), 32);
  if (kind === 'fixed') {
    const chunkSize = broken === 'bad-chunk-size' ? 3000 : (content.chunkSize ?? 4 * 1024 * 1024);
    const size = content.size ?? BigInt(digests.length) * BigInt(chunkSize);
    header.writeBigUInt64LE(broken === 'size-mismatch' ? size + BigInt(chunkSize) : size, 64);
    header.writeBigUInt64LE(BigInt(chunkSize), 72);
  }
  const file = Buffer.concat([header, area, broken === 'size-mismatch' && kind === 'dynamic' ? Buffer.alloc(7) : Buffer.alloc(0)]);
  if (broken === 'short') return file.subarray(0, 1000);
  if (broken === 'truncated') return file.subarray(0, file.length - (kind === 'fixed' ? 16 : 20));
  return file;
}

/** A chunk as the store holds it: an uncompressed blob of `data`, named by the SHA-256 of `data`. */
export function chunkOf(data: Buffer): { digest: Buffer; hex: string; blob: Buffer } {
  const digest = sha256(data);
  return { digest, hex: digest.toString('hex'), blob: encodeBlob(UNCOMPRESSED_BLOB_MAGIC, data) };
}

export interface IndexSpec {
  /** The file name in the snapshot, ending in .fidx or .didx. */
  name: string;
  /** The data of each chunk the index references, in order (repeats allowed). */
  chunks: Buffer[];
  chunkSize?: number;
  broken?: BrokenIndex;
}

export interface SnapshotSpec {
  /** Namespace path (`['a', 'b']` is `ns/a/ns/b`), none for the root namespace. */
  ns?: string[];
  type: 'vm' | 'ct' | 'host';
  id: string;
  /** `YYYY-MM-DDTHH:MM:SSZ`. */
  time: string;
  indexes: IndexSpec[];
}

/** An index where the scheme does not put one (`stray/a.didx`, `vm/100/notatime/x.fidx`): GC reads it too. */
export interface OutsideIndexSpec extends IndexSpec {
  /** Its directory, relative to the store root ('' for the root itself). */
  dir: string;
}

export interface PbsStoreSpec {
  snapshots: SnapshotSpec[];
  outside?: OutsideIndexSpec[];
  /** Chunks no index references. */
  unreferenced?: Buffer[];
  /** Hex digests of referenced chunks not written (missing chunks). */
  omit?: string[];
  /** Every prefix directory 0000..ffff, as the server makes them (slow: 65,536 directories). */
  allPrefixes?: boolean;
  /** chown everything written to this owner (root only). */
  owner?: { uid: number; gid: number };
}

export interface WrittenIndex {
  /** Relative to the store root. */
  rel: string;
  path: string;
  kind: 'fixed' | 'dynamic';
  /** Hex digests in file order, repeats included (none past a cut for a broken one). */
  digests: string[];
  /** The file's size. */
  bytes: number;
  broken?: BrokenIndex;
}

export interface WrittenChunk {
  rel: string;
  /** The chunk file's size (st_size). */
  bytes: number;
}

export interface PbsStoreRecord {
  root: string;
  /** Snapshot directories, relative to the root. */
  snapshots: string[];
  indexes: WrittenIndex[];
  /** Every chunk file written, by hex digest. */
  chunks: Map<string, WrittenChunk>;
  /** Referenced digests with no chunk file (from `omit`). */
  missing: string[];
  /** The indexes written outside the scheme (also in `indexes`), relative to the root. */
  outside: string[];
}

/** The directory of a snapshot, relative to the store root. */
export function snapshotRel(snapshot: Pick<SnapshotSpec, 'ns' | 'type' | 'id' | 'time'>): string {
  const ns = (snapshot.ns ?? []).flatMap((name) => ['ns', name]);
  return join(...ns, snapshot.type, snapshot.id, snapshot.time);
}

/** A manifest as index.json.blob holds it: JSON in an uncompressed blob. */
function manifest(snapshot: SnapshotSpec, files: Array<{ filename: string; size: number; csum: string }>): Buffer {
  const json = {
    'backup-type': snapshot.type,
    'backup-id': snapshot.id,
    'backup-time': Math.floor(Date.parse(snapshot.time) / 1000),
    files: files.map((file) => ({ ...file, 'crypt-mode': 'none' })),
    unprotected: {},
    signature: null,
  };
  return encodeBlob(UNCOMPRESSED_BLOB_MAGIC, Buffer.from(JSON.stringify(json)));
}

/** Write a datastore at `root` (which may exist) and return what was written. */
export function writePbsStore(root: string, spec: PbsStoreSpec): PbsStoreRecord {
  const record: PbsStoreRecord = { root, snapshots: [], indexes: [], chunks: new Map(), missing: [], outside: [] };
  const written: string[] = [root];
  const mkdir = (path: string) => {
    const first = mkdirSync(path, { recursive: true, mode: 0o755 });
    if (first) for (let dir = path; dir.length >= first.length; dir = join(dir, '..')) written.push(dir);
  };
  const chunksDir = join(root, '.chunks');
  mkdir(chunksDir);
  if (spec.allPrefixes) for (let prefix = 0; prefix < 0x10000; prefix++) mkdir(join(chunksDir, prefix.toString(16).padStart(4, '0')));
  writeFileSync(join(root, '.lock'), '', { mode: 0o644 });
  written.push(join(root, '.lock'));
  const omit = new Set(spec.omit ?? []);

  const writeChunk = (data: Buffer): Buffer => {
    const chunk = chunkOf(data);
    if (omit.has(chunk.hex)) {
      if (!record.missing.includes(chunk.hex)) record.missing.push(chunk.hex);
      return chunk.digest;
    }
    if (!record.chunks.has(chunk.hex)) {
      const rel = join('.chunks', chunk.hex.slice(0, 4), chunk.hex);
      mkdir(join(root, '.chunks', chunk.hex.slice(0, 4)));
      writeFileSync(join(root, rel), chunk.blob, { mode: 0o644 });
      written.push(join(root, rel));
      record.chunks.set(chunk.hex, { rel, bytes: chunk.blob.length });
    }
    return chunk.digest;
  };

  /** One index in the directory `dirRel`, recorded. */
  const writeIndex = (dirRel: string, index: IndexSpec): { bytes: number; csum: string } => {
    const kind = index.name.endsWith('.fidx') ? 'fixed' : 'dynamic';
    const digests = index.chunks.map(writeChunk);
    let end = 0n;
    const ends = index.chunks.map((data) => (end += BigInt(data.length)));
    const bytes = encodeIndex({ kind, digests, ends, broken: index.broken, ...(index.chunkSize ? { chunkSize: index.chunkSize } : {}) });
    const path = join(root, dirRel, index.name);
    writeFileSync(path, bytes, { mode: 0o644 });
    written.push(path);
    const whole = Math.max(0, Math.floor((bytes.length - HEADER_SIZE) / (kind === 'fixed' ? 32 : 40)));
    const kept = index.broken === 'empty' || index.broken === 'short' ? 0 : Math.min(whole, digests.length);
    record.indexes.push({
      rel: join(dirRel, index.name),
      path,
      kind,
      digests: digests.slice(0, kept).map((digest) => digest.toString('hex')),
      bytes: bytes.length,
      ...(index.broken ? { broken: index.broken } : {}),
    });
    return { bytes: bytes.length, csum: sha256(bytes).toString('hex') };
  };

  for (const snapshot of spec.snapshots) {
    const rel = snapshotRel(snapshot);
    const dir = join(root, rel);
    mkdir(dir);
    const ownerFile = join(dir, '..', 'owner');
    writeFileSync(ownerFile, 'root@pam\n');
    written.push(ownerFile);
    record.snapshots.push(rel);
    const files: Array<{ filename: string; size: number; csum: string }> = [];
    for (const index of snapshot.indexes) {
      const file = writeIndex(rel, index);
      files.push({ filename: index.name, size: file.bytes, csum: file.csum });
    }
    const manifestPath = join(dir, 'index.json.blob');
    writeFileSync(manifestPath, manifest(snapshot, files), { mode: 0o644 });
    written.push(manifestPath);
  }
  for (const index of spec.outside ?? []) {
    mkdir(join(root, index.dir));
    writeIndex(index.dir, index);
    record.outside.push(join(index.dir, index.name));
  }
  for (const data of spec.unreferenced ?? []) writeChunk(data);
  if (spec.owner) for (const path of written) chownSync(path, spec.owner.uid, spec.owner.gid);
  return record;
}
