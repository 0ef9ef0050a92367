/**
 * Worker thread of the audit: holds its own descriptors of the audited tree
 * and scans the directories the main thread hands it, a batch at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DirTree } from '../fs/dir-tree.js';
import type { Identity } from '../fs/identity.js';
import { reviveRel } from '../fs/rel-path.js';
import { libc } from '../native/libc.js';
import { DirScanner, type DirTask, type ScanSettings } from './scan-dir.js';

interface WorkerInput {
  root: string;
  settings: ScanSettings;
  rootIdentity: Identity;
  /** One Int32 on shared memory: 0 free, 1 taken. */
  loadLock: SharedArrayBuffer;
}

const { root, settings, rootIdentity, loadLock } = workerData as WorkerInput;

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
const scanner = new DirScanner(tree, settings, (part) => parentPort!.postMessage({ results: [part], tallies: scanner.tallies.drain(), partial: true }));

parentPort!.on('message', (message: { type: 'scan'; tasks: DirTask[] } | { type: 'close' }) => {
  if (message.type === 'close') {
    tree.close();
    parentPort!.close();
    return;
  }
  const results = message.tasks.map((task) => scanner.scan({ ...task, rel: reviveRel(task.rel) }));
  parentPort!.postMessage({ results, tallies: scanner.tallies.drain() });
});
