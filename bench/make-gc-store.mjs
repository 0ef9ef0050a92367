#!/usr/bin/env node
/**
 * Generates (once, then reuses) a datastore for the GC preview's bench: the
 * chunks of bench/make-store.mjs (its own copy: the audit bench's store stays
 * as it is) and snapshots whose fixed indexes reference existing chunks, as
 * a few VMs backed up daily leave them: entry j of a group's snapshot is block
 * j of its disk, which keeps its chunk from one day to the next unless that
 * day's window of `churn` blocks changed it, and every 16th block is a hole
 * (the zero chunk, shared). Root-owned chunks of
 * the burst are never referenced: the store is clean, and the preview's
 * answer is SAFE. Everything is owned by backup (34:34) as the server writes it.
 *
 * The indexes are encoded as test/helpers/pbs-store.ts encodeIndex encodes
 * them (a header of magic, uuid, ctime, the entries' SHA-256, size and chunk
 * size; then bare digests), repeated here because the bench runs plain
 * JavaScript; the bench checks the preview read every one and counted the
 * distinct digests written. A marker beside the store records what was
 * generated, and when its chunks were.
 * Usage: node bench/make-gc-store.mjs   (root)
 */
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { BENCH_GID, BENCH_UID, chunkHex, FOREIGN_BURST, makeStore } from './make-store.mjs';

/** The preview's 1M bench: 1,000,000 chunks in 65,536 prefix dirs, 4 VMs x 25 daily snapshots of 16,384 entries (64 GiB disks). */
export const GC_STORE = { dir: '/var/tmp/chunkguard-bench/gc-store', files: 1_000_000, prefixes: 0x10000, foreign: FOREIGN_BURST, groups: 4, perGroup: 25, entries: 16_384, churn: 4096 };

const HEADER_SIZE = 4096;
const FIXED_MAGIC = [47, 127, 65, 237, 145, 253, 15, 205];
const UNCOMPRESSED_BLOB_MAGIC = [66, 171, 56, 7, 190, 131, 112, 161];
const CHUNK_SIZE = 4 * 1024 * 1024;
/** One entry in this many is the shared zero chunk. */
const ZERO_EVERY = 16;
const DAY = 86_400;
/** Changes with chunkNumber: snapshots written by another model are written again. */
const MODEL = 'vm-disk-1';
const FIRST_BACKUP = Date.parse('2026-08-01T02:00:00Z') / 1000;

const sha256 = (data) => createHash('sha256').update(data).digest();

/** A fixed index's bytes, as encodeIndex writes them. */
function fixedIndex(digests, ctime, uuid) {
  const area = Buffer.concat(digests);
  const header = Buffer.alloc(HEADER_SIZE);
  header.set(FIXED_MAGIC, 0);
  header.set(uuid, 8);
  header.writeBigInt64LE(BigInt(ctime), 24);
  header.set(sha256(area), 32);
  header.writeBigUInt64LE(BigInt(digests.length) * BigInt(CHUNK_SIZE), 64);
  header.writeBigUInt64LE(BigInt(CHUNK_SIZE), 72);
  return Buffer.concat([header, area]);
}

/** The snapshot's manifest, index.json.blob: JSON in an uncompressed blob (the GC never reads it; the server writes it). */
function manifest(type, id, time, file) {
  const json = Buffer.from(JSON.stringify({ 'backup-type': type, 'backup-id': id, 'backup-time': time, files: [{ ...file, 'crypt-mode': 'none' }], unprotected: {}, signature: null }));
  const header = Buffer.alloc(12);
  header.set(UNCOMPRESSED_BLOB_MAGIC, 0);
  header.writeUInt32LE(crc32(json), 8);
  return Buffer.concat([header, json]);
}

/** Where day d's changed blocks start (d >= 1): a window of `churn` blocks moved by a prime stride, wrapping. */
const windowStart = (spec, d) => (d * 7919) % spec.entries;
const inWindow = (spec, j, d) => (j - windowStart(spec, d) + spec.entries) % spec.entries < spec.churn;

/**
 * The chunk number of group g's snapshot s (day s), entry j, as a VM disk's
 * fixed index has it: block j keeps its chunk until a day's window changes it;
 * every 16th block is a hole (the shared zero chunk). Never one of the root-owned burst.
 */
function chunkNumber(spec, g, s, j) {
  const { foreign, entries, perGroup, churn } = spec;
  if (j % ZERO_EVERY === 0) return foreign;
  let day = s;
  while (day > 0 && !inWindow(spec, j, day)) day--;
  const version = day === 0 ? j : entries + (day - 1) * churn + ((j - windowStart(spec, day) + entries) % entries);
  return foreign + 1 + g * (entries + (perGroup - 1) * churn) + version;
}

const snapshotName = (time) => new Date(time * 1000).toISOString().replace('.000Z', 'Z');

/** Writes the snapshots into `store`; returns how many and the distinct chunks they reference. */
function writeSnapshots(store, spec) {
  const { files, prefixes, groups, perGroup, entries } = spec;
  const digests = new Map();
  const digestOf = (n) => digests.get(n) ?? digests.set(n, Buffer.from(chunkHex(n, prefixes), 'hex')).get(n);
  const written = [];
  const mkdir = (path) => (mkdirSync(path, { mode: 0o755 }), written.push(path));
  mkdir(join(store, 'vm'));
  for (let g = 0; g < groups; g++) {
    const id = String(100 + g);
    const group = join(store, 'vm', id);
    mkdir(group);
    writeFileSync(join(group, 'owner'), 'root@pam\n', { mode: 0o644 });
    written.push(join(group, 'owner'));
    for (let s = 0; s < perGroup; s++) {
      const time = FIRST_BACKUP + s * DAY;
      const dir = join(group, snapshotName(time));
      mkdir(dir);
      const list = [];
      for (let j = 0; j < entries; j++) list.push(digestOf(chunkNumber(spec, g, s, j)));
      const index = fixedIndex(list, time, sha256(`${id}/${s}`).subarray(0, 16));
      const name = 'drive-scsi0.img.fidx';
      writeFileSync(join(dir, name), index, { mode: 0o644 });
      writeFileSync(join(dir, 'index.json.blob'), manifest('vm', id, time, { filename: name, size: index.length, csum: sha256(index).toString('hex') }), { mode: 0o644 });
      written.push(join(dir, name), join(dir, 'index.json.blob'));
    }
  }
  for (const path of written) chownSync(path, BENCH_UID, BENCH_GID);
  if (digests.size > files) throw new Error('more digests than chunks');
  return { snapshots: groups * perGroup, distinct: digests.size };
}

/**
 * The store of `spec` (generated if its markers do not match) and what its
 * snapshots hold: `{ store, snapshots, distinct, entries }`, `entries` being
 * every path below and including the store (what find lists).
 */
export function makeGcStore(spec = GC_STORE) {
  const { dir, files, prefixes, foreign, groups, perGroup, entries, churn } = spec;
  if (foreign + 1 + groups * (entries + (perGroup - 1) * churn) > files) throw new Error(`makeGcStore: ${files} chunks are too few for these snapshots`);
  const store = makeStore(dir, files, { prefixes, foreign });
  const chunksMarker = join(dirname(store), `${store.split('/').pop()}.complete`);
  const marker = join(dirname(store), `${store.split('/').pop()}.snapshots.complete`);
  // The chunks' marker's mtime: a store regenerated under us gets its snapshots again.
  const wanted = JSON.stringify({ ...spec, model: MODEL, chunksAt: statSync(chunksMarker).mtimeMs });
  let facts;
  if (existsSync(marker) && JSON.parse(readFileSync(marker, 'utf8')).wanted === wanted) facts = JSON.parse(readFileSync(marker, 'utf8')).facts;
  else {
    rmSync(marker, { force: true });
    rmSync(join(store, 'vm'), { recursive: true, force: true });
    facts = writeSnapshots(store, spec);
    writeFileSync(marker, JSON.stringify({ wanted, facts }));
  }
  // The root, .chunks, the prefix dirs and chunks; vm, each group and its owner file; each snapshot and its two files.
  const listed = 2 + prefixes + files + 1 + 2 * groups + 3 * groups * perGroup;
  return { store, ...facts, entries: listed };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${JSON.stringify(makeGcStore())}\n`);
