/**
 * Deterministic fault injection for the tests of insert and check, through
 * one environment variable: CHUNKGUARD_TEST_FAULT=<step>:<action>, where
 * action is `kill` (SIGKILL this process: a crash at that exact step) or
 * `eio` (the step fails with EIO). Unset, faultPoint() does nothing.
 */
export type FaultStep = 'temp-created' | 'written' | 'chowned' | 'before-rename' | 'between-stat-and-touch';

const ENV = 'CHUNKGUARD_TEST_FAULT';

export function faultPoint(step: FaultStep): void {
  const value = process.env[ENV];
  if (!value) return;
  const [at, action] = value.split(':');
  if (at !== step) return;
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'eio') {
    throw Object.assign(new Error(`EIO: i/o error (injected by ${ENV} at ${step})`), { code: 'EIO', errno: -5 });
  }
}
