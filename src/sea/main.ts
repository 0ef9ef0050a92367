/**
 * The single executable's entry (scripts/sea.mjs builds it): the CLI, or,
 * started by the check with HELPER_ROLE set, the helper that measures as the
 * GC user. What it carries is set before either is loaded.
 */
import { setEmbedded } from '../runtime/embedded.js';
import { HELPER_ROLE, provider } from './provider.js';

setEmbedded(provider);
if (process.env[HELPER_ROLE] === 'helper') {
  delete process.env[HELPER_ROLE];
  void import('../check/helper.js');
} else {
  void import('../cli/main.js');
}
