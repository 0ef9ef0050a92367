/**
 * Paths that must not outlive the process: temp chunk files and probe
 * directories. Removed in `finally` on the normal path, and by the exit
 * handler on SIGINT/SIGTERM/SIGHUP or process.exit (as write-file-atomic does).
 */
import { rmSync, unlinkSync } from 'node:fs';
import { onExit } from 'signal-exit';

const files = new Set<string>();
const directories = new Set<string>();
let removeHandler: (() => void) | undefined;

function removeAll(): void {
  for (const file of files) {
    try {
      unlinkSync(file);
    } catch {
      // Already gone.
    }
  }
  for (const directory of directories) {
    // rm does not follow symlinks inside the tree.
    rmSync(directory, { recursive: true, force: true });
  }
  files.clear();
  directories.clear();
}

function arm(): void {
  removeHandler ??= onExit(removeAll, { alwaysLast: true });
}

function disarmIfIdle(): void {
  if (files.size === 0 && directories.size === 0 && removeHandler) {
    removeHandler();
    removeHandler = undefined;
  }
}

export function trackTempFile(path: string): void {
  files.add(path);
  arm();
}

export function untrackTempFile(path: string): void {
  files.delete(path);
  disarmIfIdle();
}

export function trackTempDirectory(path: string): void {
  directories.add(path);
  arm();
}

export function untrackTempDirectory(path: string): void {
  directories.delete(path);
  disarmIfIdle();
}
