/**
 * What must not outlive the process (a temp chunk file, a probe directory, the
 * CLI's progress bar on the terminal):
 * removed in `finally` on the normal path, and by the exit handler on
 * SIGINT/SIGTERM/SIGHUP or process.exit (as write-file-atomic does).
 * Removals are closures over open directory descriptors, not paths, so a
 * path swapped for a symlink meanwhile cannot redirect them.
 */
import { onExit } from 'signal-exit';

const pending = new Set<() => void>();
let removeHandler: (() => void) | undefined;

function runAll(): void {
  for (const remove of pending) {
    try {
      remove();
    } catch {
      // Best effort on the way out.
    }
  }
  pending.clear();
}

/**
 * Register a synchronous removal; the returned function unregisters it. Register before
 * making what it removes: the first registration installs the signal handlers (until then
 * a signal kills the process outright), and a handler runs only where the thread yields,
 * so a synchronous make-and-note sequence after it is never cut in two.
 */
export function onExitRemove(remove: () => void): () => void {
  pending.add(remove);
  removeHandler ??= onExit(runAll, { alwaysLast: true });
  return () => {
    pending.delete(remove);
    if (pending.size === 0 && removeHandler) {
      removeHandler();
      removeHandler = undefined;
    }
  };
}
