/**
 * Runs the chunk walk's prelude (chunk-walk.ts `Prelude`: the GC preview's
 * phase 1) beside the walk's worker threads. They ask this thread for every
 * task, so a prelude run in one go would leave them idle until it ends:
 * here it runs in slices of SLICE_MS, the event loop turning between them.
 * `finish` runs what is left at once: when the walk is over, or when what
 * waits for the prelude has grown too big to keep.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Prelude } from './chunk-walk.js';

/** Long enough that the turns between slices cost little, short enough that a worker's queued tasks (two batches) last it. */
const SLICE_MS = 4;

export class PreludeRunner {
  private complete: boolean;
  private failure: { error: unknown } | undefined;
  private stopped = false;

  constructor(private readonly prelude: Prelude | undefined) {
    this.complete = prelude === undefined;
  }

  get done(): boolean {
    return this.complete;
  }

  /** Runs the prelude in slices, the first now, the others a turn of the event loop apart; `finish` or `stop` ends it. */
  start(): void {
    void this.slices();
  }

  /** Runs what is left now; throws what a step threw, now or in a slice. */
  finish(): void {
    if (!this.failure) this.run(Infinity);
    this.rethrow();
  }

  /** Throws what a slice's step threw. */
  rethrow(): void {
    if (this.failure) throw this.failure.error;
  }

  /** The walk failed: no more steps. */
  stop(): void {
    this.stopped = true;
  }

  private async slices(): Promise<void> {
    while (!this.complete && !this.failure && !this.stopped) {
      this.run(performance.now() + SLICE_MS);
      await nextTurn();
    }
  }

  private run(until: number): void {
    try {
      while (!this.complete && performance.now() < until) this.complete = this.prelude!.step();
    } catch (error) {
      this.failure = { error };
    }
  }
}
