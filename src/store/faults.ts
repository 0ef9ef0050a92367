/**
 * Deterministic fault injection for the tests of insert and check, through
 * one environment variable: CHUNKGUARD_TEST_FAULT=<step>:<action>, where
 * action is `kill` (SIGKILL this process: a crash at that exact step),
 * `eio` (the step fails with EIO) or `hold=<file>` (wait there until <file>
 * exists: a barrier that lines concurrent runs up on one step). Unset,
 * faultPoint() does nothing.
 */
import { existsSync } from 'node:fs';

export type FaultStep = 'temp-created' | 'written' | 'chowned' | 'before-rename' | 'between-stat-and-touch';

const ENV = 'CHUNKGUARD_TEST_FAULT';

export function faultPoint(step: FaultStep): void {
  const value = process.env[ENV];
  if (!value) return;
  const colon = value.indexOf(':');
  const at = value.slice(0, colon);
  const action = value.slice(colon + 1);
  if (at !== step) return;
  if (action.startsWith('hold=')) {
    const release = action.slice('hold='.length);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let waited = 0; !existsSync(release) && waited < 60_000; waited += 2) Atomics.wait(pause, 0, 0, 2);
  }
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'eio') {
    throw Object.assign(new Error(`EIO: i/o error (injected by ${ENV} at ${step})`), { code: 'EIO', errno: -5 });
  }
}
