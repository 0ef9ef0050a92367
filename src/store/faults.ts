/**
 * Deterministic fault injection for the tests of insert and check, through
 * one environment variable: CHUNKGUARD_TEST_FAULT=<step>:<action>, where
 * action is `kill` (SIGKILL this process: a crash at that exact step),
 * `eio` (the step fails with EIO) or `hold=<file>` (wait there until <file>
 * exists: a barrier that lines concurrent runs up on one step). The variable
 * is read once when a run starts (faultsFromEnv); unset, every point is a
 * no-op. It adds no capability: whoever sets a process's environment can
 * already kill it or make it wait.
 */
import { existsSync } from 'node:fs';
import { FsError } from '../fs/errors.js';

export type FaultStep = 'temp-created' | 'written' | 'chowned' | 'before-rename' | 'between-stat-and-touch';
export type Faults = (step: FaultStep) => void;

const ENV = 'CHUNKGUARD_TEST_FAULT';

export const NO_FAULTS: Faults = () => undefined;

function hold(release: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; !existsSync(release) && waited < 60_000; waited += 2) Atomics.wait(pause, 0, 0, 2);
}

/** The fault points the environment asks for, read now. */
export function faultsFromEnv(env: NodeJS.ProcessEnv = process.env): Faults {
  const value = env[ENV];
  if (!value) return NO_FAULTS;
  const colon = value.indexOf(':');
  const at = value.slice(0, colon);
  const action = value.slice(colon + 1);
  return (step) => {
    if (step !== at) return;
    if (action.startsWith('hold=')) hold(action.slice('hold='.length));
    if (action === 'kill') process.kill(process.pid, 'SIGKILL');
    if (action === 'eio') throw new FsError('EIO', step, ENV, { detail: `EIO: i/o error (injected at ${step})` });
  };
}
