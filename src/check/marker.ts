/**
 * Step 2: the marker chunk, the 4 MiB zero chunk at its digest's place in
 * `.chunks/<prefix>/`, inserted with the server's semantics as the GC user.
 * A chunk that was kept (same size or smaller) is what every zero block of
 * every snapshot points to: it is read back and verified.
 */
import { readSync } from 'node:fs';
import { zeroChunkDigest, zeroChunkProblem } from '../chunk/zero-chunk.js';
import { errnoCode } from '../errors.js';
import type { Finding } from '../findings.js';
import { type CallResult, closeFd, Dir, inodeFlags, type OwnerNotSet } from '../fs/dir.js';
import { fromWire } from '../fs/identity.js';
import { mountFacts } from '../system/mounts.js';
import { isUnsafePath } from '../fs/errors.js';
import { insertChunk } from '../store/insert.js';
import { CHUNKS_DIR, PREFIX_DIR_MODE } from '../store/layout.js';
import { chunkCorrupt, chunkReplaced, chunkUnverified, noFileOwners, prefixDirCreated, staleLeftovers } from './check-findings.js';
import { type ChunkAt, fail, type MeasureContext, type MeasurePlan, type Step } from './context.js';
import { diagnoseTouch, diagnoseWrite } from './diagnose.js';

/** Open `.chunks` and the prefix directory (created when missing) below the work directory; `opened` collects them for closing. */
export function openPrefixDir(ctx: MeasureContext, work: Dir, opened: Dir[]): Step<Dir> {
  const chunks = work.openChild(CHUNKS_DIR).dir;
  opened.push(chunks);
  const owner = ctx.diagnosis.uid === 0 ? ctx.plan.storeOwner : undefined;
  let prefix;
  try {
    prefix = chunks.openChild(zeroChunkDigest().slice(0, 4), { mode: PREFIX_DIR_MODE, owner });
  } catch (error) {
    const syscall = (error as { syscall?: string }).syscall;
    if (syscall === 'mkdir' || syscall === 'fchown') return fail(diagnoseWrite(ctx.diagnosis, chunks.path, error));
    throw error;
  }
  opened.push(prefix.dir);
  if (prefix.created && !ctx.plan.probe) ctx.notes.push(prefixDirCreated(prefix.dir.path));
  if (prefix.ownerNotSet) noteNoOwners(ctx, prefix.dir.path, prefix.ownerNotSet);
  return { ok: true, value: prefix.dir };
}

/** The marker chunk in place (what the insert did is in ctx.chunkAction), or the finding that ends the check. */
export async function placeMarker(ctx: MeasureContext, prefix: Dir, blob: Buffer): Promise<Step<ChunkAt>> {
  const name = zeroChunkDigest();
  const chunk: ChunkAt = { dir: prefix, name, path: prefix.pathOf(name) };
  let inserted;
  try {
    inserted = insertChunk(prefix, name, blob, {
      owner: ctx.diagnosis.uid === 0 ? ctx.plan.storeOwner : undefined,
      backdateSeconds: ctx.plan.mode === 'adaptive' ? 2 : 0,
      signal: ctx.signal,
      faults: ctx.faults,
      touch: () => ctx.touch(chunk),
    });
  } catch (error) {
    if (isUnsafePath(error) || ctx.signal?.aborted) throw error;
    return fail(diagnoseWrite(ctx.diagnosis, prefix.path, error));
  }
  ctx.chunkAction = inserted.touch && !inserted.touch.ok ? 'kept-untouched' : inserted.action;
  if (inserted.ownerNotSet) noteNoOwners(ctx, chunk.path, inserted.ownerNotSet);
  if (inserted.staleTempsRemoved > 0) ctx.notes.push(staleLeftovers(inserted.staleTempsRemoved, 'temp file', prefix.path));
  if (inserted.touch && !inserted.touch.ok) return fail(touchFailure(ctx, chunk, inserted.touch));
  if (inserted.action === 'replaced') ctx.notes.push(chunkReplaced(chunk.path, inserted.existingSize!, blob.length));
  if (inserted.preExisting && inserted.action !== 'replaced') {
    const problem = await verifyKept(chunk, blob);
    if (problem) ctx.notes.push(problem);
  }
  return { ok: true, value: chunk };
}

/** Once per check: the prefix directory and the chunk both meet it on a filesystem without owners. */
function noteNoOwners(ctx: MeasureContext, path: string, notSet: OwnerNotSet): void {
  if (ctx.notes.some((note) => note.code === 'NO_FILE_OWNERS')) return;
  ctx.notes.push(noFileOwners(path, notSet, ctx.plan.storeOwner, { known: ctx.plan.filesystem, mount: ctx.mount && mountFacts(ctx.mount) }));
}

/** Why a touch failed, from the chunk's stat and inode flags read through its open directory. */
export function touchFailure(ctx: MeasureContext, chunk: ChunkAt, result: Extract<CallResult, { ok: false }>): Finding {
  let stat;
  let flags: number | undefined;
  try {
    stat = chunk.dir.stat(chunk.name);
    const fd = chunk.dir.openFile(chunk.name);
    try {
      flags = inodeFlags(fd);
    } finally {
      closeFd(fd);
    }
  } catch {
    // Diagnosed with what is known.
  }
  return diagnoseTouch(ctx.diagnosis, chunk.path, result, { stat, flags });
}

/**
 * Up to `limit` bytes of a kept chunk (one more than ours: kept chunks are never bigger, more
 * means it grew meanwhile); with `noAtime`, without changing its atime.
 */
function readKept(dir: Dir, name: string, limit: number, noAtime = false): Buffer {
  const fd = dir.openFile(name, { noAtime });
  try {
    const bytes = Buffer.alloc(limit);
    let length = 0;
    for (let read = -1; read !== 0 && length < limit; length += read) read = readSync(fd, bytes, length, limit - length, null);
    return bytes.subarray(0, length);
  } finally {
    closeFd(fd);
  }
}

/**
 * The store already holds a zero chunk the insert keeps (the same size or smaller) that is
 * not byte for byte `blob` (another encoder's, or a damaged one): verifying it will decode
 * it. Looked at with this process's credentials before the thread switches to the GC user,
 * so that a decoder still to be loaded from disk is loaded first; read without changing its
 * atime (O_NOATIME; where that is refused, assumed). Missing or unreadable: false (the
 * measurement reports what it meets); a chunk changed past this look costs only a later load.
 */
export function keptChunkNeedsDecoder(plan: MeasurePlan, blob: Buffer): boolean {
  if (plan.probe) return false; // a fresh probe directory holds none
  const opened: Dir[] = [];
  try {
    opened.push(Dir.open(plan.store, fromWire(plan.rootIdentity)));
    for (const name of [CHUNKS_DIR, zeroChunkDigest().slice(0, 4)]) opened.push(opened.at(-1)!.openChild(name).dir);
    const dir = opened.at(-1)!;
    const name = zeroChunkDigest();
    const size = dir.stat(name)?.size ?? 0;
    if (size === 0 || size > blob.length) return false; // none, or replaced: nothing to decode
    if (size < blob.length) return true;
    return !readKept(dir, name, blob.length + 1, true).equals(blob);
  } catch (error) {
    return errnoCode(error) === 'EPERM'; // O_NOATIME refused: read it the GC user's way later, decoder ready
  } finally {
    for (const dir of opened.reverse()) dir.close();
  }
}

/** A kept chunk is intact, or the finding that says it is not (or could not be checked). */
async function verifyKept(chunk: ChunkAt, blob: Buffer): Promise<Finding | undefined> {
  let bytes: Buffer;
  try {
    bytes = readKept(chunk.dir, chunk.name, blob.length + 1);
  } catch (error) {
    const code = errnoCode(error) ?? (error as Error).message;
    return chunkUnverified(chunk.path, `could not read the existing zero chunk to verify it (${code})`, { errno: code });
  }
  // Byte for byte what chunkguard writes: valid without loading the decoder.
  if (bytes.equals(blob)) return undefined;
  if (bytes.length > blob.length) return chunkUnverified(chunk.path, 'the existing zero chunk grew while it was read (something rewrites it): not verified');
  let problem;
  try {
    problem = await zeroChunkProblem(bytes);
  } catch (error) {
    // Not the data's fault (a decoder that could not be loaded): unverified, never called corrupt.
    return chunkUnverified(chunk.path, `the existing zero chunk was kept but not verified: the zstd decoder failed (${String((error as Error).message).split('\n')[0]})`);
  }
  if (!problem) return undefined;
  if (problem.unverifiable) return chunkUnverified(chunk.path, `the existing zero chunk was kept but not verified: ${problem.reason}`);
  return chunkCorrupt(chunk.path, bytes.length, problem.reason);
}
