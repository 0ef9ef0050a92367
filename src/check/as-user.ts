/**
 * Run the check as another user. Credentials are per process, so the check
 * runs in a helper child started with the GC user's uid, gid and
 * supplementary groups (setpriv; plain spawn, which drops supplementary
 * groups, when setpriv is missing). A uid change from root clears the
 * capabilities, so CAP_FOWNER cannot mask an ownership problem.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from 'signal-exit';
import { ChunkguardError } from '../errors.js';
import type { CheckReport } from './report.js';
import type { RunOptions } from './run.js';
import { zeroChunkBlob } from '../chunk/zero-chunk.js';

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

export async function runCheckAs(credentials: Credentials, options: Omit<RunOptions, 'via' | 'signal' | 'clock' | 'blob'>, signal?: AbortSignal): Promise<CheckReport> {
  const helper = helperPath();
  const setpriv = SETPRIV_CANDIDATES.find((candidate) => existsSync(candidate));
  const via = setpriv ? 'setpriv' : 'spawn';
  const { uid, gid, groups } = credentials;
  const child = setpriv
    ? spawn(
        setpriv,
        [
          `--reuid=${uid}`,
          `--regid=${gid}`,
          groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups',
          '--',
          process.execPath,
          helper,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      )
    : spawn(process.execPath, [helper], { uid, gid, stdio: ['pipe', 'pipe', 'pipe'] });

  // If this process is killed, the helper must still clean up its temp files.
  const removeExitHandler = onExit(() => {
    child.kill('SIGTERM');
  });
  const abort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', abort, { once: true });

  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (data: Buffer) => stdout.push(data));
  child.stderr.on('data', (data: Buffer) => stderr.push(data));
  const answer = new Promise<CheckReport>((resolve, reject) => {
    child.on('error', (error) => {
      reject(new ChunkguardError('EHELPER', `cannot run the check as uid ${uid}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, killedBy) => {
      removeExitHandler();
      signal?.removeEventListener('abort', abort);
      if (signal?.aborted) {
        reject(new ChunkguardError('EABORT', 'the check was aborted', { cause: signal.reason }));
        return;
      }
      const text = Buffer.concat(stdout).toString('utf8');
      let answer: { report?: CheckReport; error?: { code?: string; message: string; path?: string } } | undefined;
      try {
        answer = JSON.parse(text);
      } catch {
        const why = Buffer.concat(stderr).toString('utf8').trim().split('\n').find(Boolean) ?? `exit ${code ?? killedBy}`;
        reject(new ChunkguardError('EHELPER', `cannot run the check as uid ${uid}: ${why}`));
        return;
      }
      if (answer?.report) resolve(answer.report);
      else {
        const error = answer?.error;
        const known = error?.code === 'EBADINPUT' || error?.code === 'ENATIVE';
        reject(new ChunkguardError(known ? (error.code as 'EBADINPUT') : 'EHELPER', error?.message ?? 'helper gave no answer', { path: error?.path }));
      }
    });
  });
  // Build the blob here while the child starts on the other core, so the child never loads zstd.
  const blob = await zeroChunkBlob();
  child.stdin.on('error', () => undefined); // a child that died early is reported by 'close'
  child.stdin.end(JSON.stringify({ ...options, via, blob: blob.toString('base64') }));
  return answer;
}
