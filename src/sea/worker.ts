/** The audit worker inside the single executable: run with `eval: true` (provider.worker), koffi adopted from the main thread and what it carries set first. */
import { workerData } from 'node:worker_threads';
import { setEmbedded } from '../runtime/embedded.js';
import { adoptNative, provider, type SeaWorkerData } from './provider.js';

adoptNative((workerData as { embedded: SeaWorkerData }).embedded);
setEmbedded(provider);
void import('../audit/worker.js');
