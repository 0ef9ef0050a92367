/**
 * Worker thread of the audit: holds its own descriptors of the audited tree
 * and scans the directories the main thread hands it, a batch at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DirTree } from '../fs/dir-tree.js';
import type { Identity } from '../fs/identity.js';
import { libc } from '../native/libc.js';
import type { RingPlan } from './concurrency.js';
import { addToBatch, emptyBatch, openScanner, type ScanBatch, type ScanSettings } from './scan-dir.js';
import { reviveRun, type TaskRun, TaskStack } from './task-runs.js';

interface WorkerInput {
  root: string;
  settings: ScanSettings;
  rootIdentity: Identity;
  ring?: RingPlan;
  /** One Int32 on shared memory: 0 free, 1 taken. */
  loadLock: SharedArrayBuffer;
}

const { root, settings, rootIdentity, ring, loadLock } = workerData as WorkerInput;

// koffi does not document its declarations (libc.func, a named koffi.struct)
// as safe from two threads at once. The main thread has loaded already; the
// workers take turns.
const lock = new Int32Array(loadLock);
while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1, 100);
try {
  libc();
} finally {
  Atomics.store(lock, 0, 0);
  Atomics.notify(lock, 0);
}

const tree = DirTree.open(root, rootIdentity);

/** Results, merged into one batch with the tallies so far, to the main thread. */
function post(batch: ScanBatch, partial?: boolean): void {
  scanner.drainInto(batch);
  // The records' buffer moves to the main thread: no copy of a million records.
  const transfer = batch.chunkRecords ? [batch.chunkRecords.buffer] : [];
  parentPort!.postMessage({ batch, ...(partial ? { partial } : {}) }, transfer);
}

const scanner = openScanner(tree, settings, ring, (part) => {
  const batch = emptyBatch();
  addToBatch(batch, part);
  post(batch, true);
});

/**
 * The descriptors and the ring go before the thread does: a ring's stats still
 * in flight would write into memory this thread's heap frees on exit.
 */
function close(): void {
  try {
    scanner.close();
  } finally {
    tree.close();
  }
}

parentPort!.on('message', (message: { type: 'scan'; runs: TaskRun[]; spare?: ArrayBuffer[] } | { type: 'close' }) => {
  if (message.type === 'close') {
    close();
    parentPort!.close();
    return;
  }
  if (message.spare) scanner.recycle(message.spare);
  const tasks = new TaskStack();
  for (const run of message.runs) tasks.push(reviveRun(run));
  const batch = emptyBatch();
  try {
    scanner.run(
      () => tasks.pop(),
      (result) => addToBatch(batch, result),
    );
  } catch (error) {
    close();
    throw error;
  }
  post(batch);
});
