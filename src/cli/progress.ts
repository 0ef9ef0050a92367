/**
 * Audit progress on stderr, only when stderr is a terminal: a bar over the
 * prefix directories of a chunk store, a count and rate otherwise.
 * Drawn by cli-progress; redrawn at most every 100 ms. On Ctrl-C (or SIGTERM,
 * SIGHUP) the bar is stopped on the way out as at the end: its line cleared
 * and the cursor it hid shown again, so the shell's prompt starts on a clean line.
 */
import type cliProgressModule from 'cli-progress';
import { requirePackage } from '../runtime/embedded.js';
import type { AuditProgress } from '../audit/index.js';
import { onExitRemove } from '../store/cleanup.js';

// Loaded only when a bar is drawn: every other command starts without it.
const loadCliProgress = (): typeof cliProgressModule => requirePackage('cli-progress', import.meta.url) as typeof cliProgressModule;

export interface ProgressDisplay {
  update(progress: AuditProgress): void;
  stop(): void;
}

const NONE: ProgressDisplay = { update: () => undefined, stop: () => undefined };

export function auditProgress(stream: NodeJS.WriteStream, enabled: boolean): ProgressDisplay {
  if (!enabled || stream.isTTY !== true) return NONE;
  const cliProgress = loadCliProgress();
  const started = Date.now();
  let bar: cliProgressModule.SingleBar | undefined;
  let mode: 'prefix' | 'count' | undefined;
  let forget: (() => void) | undefined;
  return {
    update(progress) {
      const prefix = progress.prefixDirs && progress.prefixDirs.total > 0 ? progress.prefixDirs : undefined;
      const wanted = prefix ? 'prefix' : 'count';
      if (mode !== wanted) {
        bar?.stop();
        mode = wanted;
        // The exit handler first, then the bar (cleanup.ts): a Ctrl-C that comes as the bar's
        // first line is drawn, before a handler is there, would end the process by the signal's
        // default action, the cursor left hidden.
        forget ??= onExitRemove(() => bar?.stop());
        bar = new cliProgress.SingleBar(
          {
            stream,
            fps: 10,
            clearOnComplete: true,
            hideCursor: true,
            format:
              wanted === 'prefix'
                ? 'audit [{bar}] {percentage}% | {value}/{total} prefix dirs | {entries} entries | {rate}/s'
                : 'audit {entries} entries | {directories} dirs | {rate} entries/s',
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(prefix ? prefix.total : 0, 0, { entries: 0, directories: 0, rate: 0 });
      }
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      bar!.update(prefix ? prefix.done : 0, { entries: progress.entries, directories: progress.directories, rate: Math.round(progress.entries / seconds) });
    },
    stop() {
      bar?.stop();
      forget?.();
      forget = undefined;
    },
  };
}
