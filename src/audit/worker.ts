/**
 * Worker thread of the audit: holds its own descriptor of the audited root
 * and scans the directories the main thread hands it, a batch at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadNative } from '../native/libc.js';
import { DirOpener, type DirIdentity } from './dir-opener.js';
import { reviveRel } from './rel-path.js';
import { DirScanner, type DirTask, type ScanSettings } from './scan-dir.js';

interface WorkerInput {
  settings: ScanSettings;
  rootIdentity: DirIdentity;
  /** One Int32 on shared memory: 0 free, 1 taken. */
  loadLock: SharedArrayBuffer;
}

const { settings, rootIdentity, loadLock } = workerData as WorkerInput;

// koffi does not document its declarations (libc.func, a named koffi.struct)
// as safe from two threads at once. The main thread has loaded already; the
// workers take turns.
const lock = new Int32Array(loadLock);
while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1, 100);
try {
  loadNative({ at: true });
} finally {
  Atomics.store(lock, 0, 0);
  Atomics.notify(lock, 0);
}

const opener = DirOpener.openRoot(settings.root, rootIdentity);
const scanner = new DirScanner(opener, settings, (part) => parentPort!.postMessage({ results: [part], tallies: scanner.tallies.drain(), partial: true }));

parentPort!.on('message', (message: { type: 'scan'; tasks: DirTask[] } | { type: 'close' }) => {
  if (message.type === 'close') {
    opener.close();
    parentPort!.close();
    return;
  }
  const results = message.tasks.map((task) => scanner.scan({ ...task, rel: reviveRel(task.rel) }));
  parentPort!.postMessage({ results, tallies: scanner.tallies.drain() });
});
