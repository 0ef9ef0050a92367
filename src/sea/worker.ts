/** The audit worker inside the single executable: run with `eval: true` (provider.workerSource), what it carries set first. */
import { setEmbedded } from '../runtime/embedded.js';
import { provider } from './provider.js';

setEmbedded(provider);
void import('../audit/worker.js');
