/**
 * Spreads directory scans over worker threads. The main thread keeps the
 * queue of directories still to visit (a stack, so it stays as small as the
 * tree is wide along one path) and hands each idle worker a batch. Each
 * thread scans with its own io_uring when there is a ring plan (many stats
 * in flight), else one statx at a time (see concurrency.ts).
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { workerThreads } from '../runtime/builtins.js';
import { aborted as abortError, ChunkguardError } from '../errors.js';
import { DirTree } from '../fs/dir-tree.js';
import { isUnsafePath } from '../fs/errors.js';
import type { Identity } from '../fs/identity.js';
import { reviveRel } from '../fs/rel-path.js';
import { libc } from '../native/libc.js';
import { embedded } from '../runtime/embedded.js';
import type { RingPlan } from './concurrency.js';
import { addToBatch, emptyBatch, openScanner, type ScanBatch, type ScanSettings } from './scan-dir.js';
import { reviveRun, type RootTask, runOf, TaskStack } from './task-runs.js';

const MAX_BATCH = 64;
// Workers make little garbage that lives: a small young generation keeps peak RSS
// ~20 MiB lower on the 1M-chunk bench at the same speed.
const WORKER_YOUNG_GENERATION_MB = 4;
// Batches queued per worker: the next one waits in the worker while the main thread handles the last result.
const IN_FLIGHT = 2;

/** The tree to scan: its root as validated, the first task, the classification settings. */
export interface ScanRoot {
  path: string;
  identity: Identity;
  task: RootTask;
  settings: ScanSettings;
}

export interface PoolOptions {
  /** Worker threads; 0 scans in this thread. */
  workers: number;
  /** Each thread's io_uring; without it, one statx at a time. */
  ring?: RingPlan;
  signal?: AbortSignal;
  /**
   * Called once, before any batch reaches the sink: when the workers have their first
   * task (they start up and scan while it runs), or before a scan in this thread. What
   * it throws ends the scan.
   */
  started?: () => void;
}

export type ResultSink = (batch: ScanBatch) => void;

/** Directories merged into one batch for the collector when scanning in this thread. */
const INLINE_BATCH = 64;

/** The worker's code: the executable's own (run with eval, with what it passes in workerData), else dist/audit-worker.cjs. */
function workerScript(): { script: string; eval: boolean; embedded?: unknown } {
  const inside = embedded()?.worker();
  if (inside) return { script: inside.source, eval: true, embedded: inside.data };
  return { script: workerPath(), eval: false };
}

function workerPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Built: dist/audit-worker.cjs beside this bundle. From source (tests): the built one.
  const candidates = [join(here, 'audit-worker.cjs'), join(here, '..', '..', 'dist', 'audit-worker.cjs')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new ChunkguardError('EHELPER', `chunkguard audit worker not found (looked in ${candidates.join(', ')}): run "npm run build"`);
  return found;
}

function aborted(signal?: AbortSignal): ChunkguardError {
  return abortError(signal, 'the audit');
}

function reviveBatch(batch: ScanBatch): ScanBatch {
  for (const items of [batch.offenders, batch.problems]) for (const item of items) item.rel = reviveRel(item.rel);
  for (const run of batch.subdirs) reviveRun(run);
  return batch;
}

/** The tree, opened again where the scan runs; a root replaced since the audit validated it ends the audit. */
function openTree(root: ScanRoot): DirTree {
  try {
    return DirTree.open(root.path, root.identity);
  } catch (error) {
    if (isUnsafePath(error)) throw new ChunkguardError('EABORT', `${root.path} was replaced while the audit started`, { path: root.path, cause: error });
    throw error;
  }
}

/** Scan in this thread: small trees, or where worker threads are unwanted. */
function scanInline(root: ScanRoot, sink: ResultSink, ring: RingPlan | undefined, signal?: AbortSignal): void {
  const tree = openTree(root);
  const scanner = openScanner(tree, root.settings, ring);
  try {
    const queue = new TaskStack();
    queue.push(runOf(root.task));
    let batch = emptyBatch();
    const flush = (): void => {
      scanner.drainInto(batch);
      sink(batch);
      if (batch.chunkRecords) scanner.recycle([batch.chunkRecords.buffer]);
      batch = emptyBatch();
    };
    scanner.run(
      () => {
        if (signal?.aborted) throw aborted(signal);
        return queue.pop();
      },
      (result) => {
        queue.pushAll(result.subdirs);
        addToBatch(batch, result);
        if (batch.directories >= INLINE_BATCH) flush();
      },
    );
    flush();
  } finally {
    scanner.close();
    tree.close();
  }
}

export async function scanTree(root: ScanRoot, sink: ResultSink, options: PoolOptions): Promise<void> {
  const count = options.workers;
  if (options.signal?.aborted) throw aborted(options.signal);
  if (count === 0) {
    options.started?.();
    scanInline(root, sink, options.ring, options.signal);
    return;
  }
  const queue = new TaskStack();
  queue.push(runOf(root.task));
  libc(); // before any worker: they must not declare koffi functions alongside this thread
  const { script, eval: isCode, embedded: carried } = workerScript();
  const loadLock = new SharedArrayBuffer(4);
  const workerData = { root: root.path, settings: root.settings, rootIdentity: root.identity, ring: options.ring, loadLock, embedded: carried };
  const workers = Array.from({ length: count }, () => new (workerThreads().Worker)(script, { eval: isCode, workerData, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } }));
  const inFlight = new Map<Worker, number>(workers.map((worker) => [worker, 0]));
  // Chunk records' buffers read here, to go back with the worker's next tasks (ScanBatch#chunkRecords).
  const spares = new Map<Worker, ArrayBuffer[]>(workers.map((worker) => [worker, []]));
  let pending = 0;

  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (error: unknown): void => {
      if (failed) return;
      failed = true;
      reject(error);
    };
    const dispatch = (): void => {
      for (let round = 0; round < IN_FLIGHT; round++) {
        for (const worker of workers) {
          if (inFlight.get(worker)! > round || queue.size === 0) continue;
          // Share what is queued between the workers, a bounded batch each.
          const size = Math.max(1, Math.min(MAX_BATCH, Math.ceil(queue.size / (count * IN_FLIGHT))));
          const runs = queue.take(size);
          inFlight.set(worker, inFlight.get(worker)! + 1);
          pending++;
          const spare = spares.get(worker)!.splice(0);
          worker.postMessage(spare.length > 0 ? { type: 'scan', runs, spare } : { type: 'scan', runs }, spare);
        }
      }
      if (pending === 0 && queue.size === 0 && !failed) resolve();
    };
    const onAbort = (): void => fail(aborted(options.signal));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    for (const worker of workers) {
      worker.on('message', (message: { batch: ScanBatch; partial?: boolean }) => {
        // A part of a large directory: the batch is still running in that worker.
        if (!message.partial) {
          inFlight.set(worker, inFlight.get(worker)! - 1);
          pending--;
        }
        if (failed) return;
        try {
          const batch = reviveBatch(message.batch);
          queue.pushAll(batch.subdirs);
          sink(batch);
          if (batch.chunkRecords) spares.get(worker)!.push(batch.chunkRecords.buffer);
        } catch (error) {
          fail(error);
          return;
        }
        dispatch();
      });
      worker.on('error', (error) => fail(new ChunkguardError('EHELPER', `audit worker failed: ${error.message}`, { cause: error })));
      worker.on('exit', (code) => {
        if (code !== 0 && !failed) fail(new ChunkguardError('EHELPER', `audit worker exited with code ${code}`));
      });
    }
    dispatch();
    try {
      options.started?.();
    } catch (error) {
      fail(error);
    }
  }).finally(async () => {
    // Ask each worker to stop after its current batch rather than terminate() it:
    // a worker still starting up (loading koffi) aborts the process when terminated.
    await Promise.all(
      workers.map(async (worker) => {
        if (worker.threadId === -1) return; // exited already
        const exited = once(worker, 'exit');
        worker.postMessage({ type: 'close' });
        await exited;
      }),
    );
  });
}
