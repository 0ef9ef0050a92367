/**
 * Measure as another user. Credentials are per process, so the measurement
 * runs in a helper child started with the GC user's uid, gid and
 * supplementary groups (setpriv; plain spawn, which drops supplementary
 * groups, when setpriv is missing). A uid change from root clears the
 * capabilities, so CAP_FOWNER cannot mask an ownership problem.
 */
import type { ChildProcess } from 'node:child_process';
import { childProcess } from '../runtime/builtins.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from 'signal-exit';
import { ChunkguardError } from '../errors.js';
import { embedded } from '../runtime/embedded.js';
import type { MeasurePlan } from './context.js';
import type { HelperRequest } from './helper.js';
import type { Measurement, TouchIdentity } from './report.js';

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'];

function helperPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Built: dist/helper.cjs beside this bundle. From source (tests): the built one.
  const candidates = [join(here, 'helper.cjs'), join(here, '..', '..', 'dist', 'helper.cjs')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new ChunkguardError('EHELPER', `chunkguard helper not found (looked in ${candidates.join(', ')}): run "npm run build"`);
  return found;
}

export interface Credentials {
  uid: number;
  gid: number;
  groups: number[];
}

/** The helper's command line: the executable in its helper role, else Node with dist/helper.cjs. */
function helperCommand(): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  return embedded()?.helperCommand() ?? { file: process.execPath, args: [helperPath()], env: process.env };
}

function start(credentials: Credentials): { child: ChildProcess & { stdin: NonNullable<ChildProcess['stdin']> }; via: TouchIdentity['via'] } {
  const { file, args, env } = helperCommand();
  const setpriv = SETPRIV_CANDIDATES.find((candidate) => existsSync(candidate));
  const { uid, gid, groups } = credentials;
  const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
  const child = setpriv
    ? childProcess().spawn(setpriv, [`--reuid=${uid}`, `--regid=${gid}`, groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups', '--', file, ...args], { stdio, env })
    : childProcess().spawn(file, args, { uid, gid, stdio, env });
  return { child, via: setpriv ? 'setpriv' : 'spawn' };
}

type Answer = { measurement?: Measurement; error?: { code?: string; message: string; path?: string } };

/** The helper's answer, or the ChunkguardError that says why there is none. */
function readAnswer(child: ChildProcess, uid: number, signal: AbortSignal | undefined): Promise<Measurement> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (data: Buffer) => stdout.push(data));
  child.stderr!.on('data', (data: Buffer) => stderr.push(data));
  return new Promise<Measurement>((resolve, reject) => {
    child.on('error', (error) => reject(new ChunkguardError('EHELPER', `cannot run the check as uid ${uid}: ${error.message}`, { cause: error })));
    child.on('close', (code, killedBy) => {
      if (signal?.aborted) return reject(new ChunkguardError('EABORT', 'the check was aborted', { cause: signal.reason }));
      let answer: Answer;
      try {
        answer = JSON.parse(Buffer.concat(stdout).toString('utf8')) as Answer;
      } catch {
        const why = Buffer.concat(stderr).toString('utf8').trim().split('\n').find(Boolean) ?? `exit ${code ?? killedBy}`;
        return reject(new ChunkguardError('EHELPER', `cannot run the check as uid ${uid}: ${why}`));
      }
      if (answer.measurement) return resolve(answer.measurement);
      const known = answer.error?.code === 'EBADINPUT' || answer.error?.code === 'ENATIVE';
      reject(new ChunkguardError(known ? (answer.error!.code as 'EBADINPUT') : 'EHELPER', answer.error?.message ?? 'the helper gave no answer', { path: answer.error?.path }));
    });
  });
}

export async function measureAs(credentials: Credentials, plan: MeasurePlan, blob: Buffer, signal?: AbortSignal): Promise<{ measurement: Measurement; via: TouchIdentity['via'] }> {
  const { child, via } = start(credentials);
  // If this process is killed or the caller aborts, the helper must still clean up its temp files.
  const stop = (): void => void child.kill('SIGTERM');
  const removeExitHandler = onExit(stop);
  signal?.addEventListener('abort', stop, { once: true });
  const answer = readAnswer(child, credentials.uid, signal);
  answer.catch(() => undefined);
  try {
    child.stdin.on('error', () => undefined); // a child that died early is reported by 'close'
    const request: HelperRequest = { plan, blob: blob.toString('base64') };
    child.stdin.end(JSON.stringify(request));
    return { measurement: await answer, via };
  } finally {
    removeExitHandler();
    signal?.removeEventListener('abort', stop);
  }
}
