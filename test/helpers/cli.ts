/** Run the built CLI the way an operator or a CI job does. */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli.cjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { uid?: number; gid?: number; prefix?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliResult {
  const [command, ...rest] = [...(options.prefix ?? []), process.execPath, CLI, ...args];
  const result = spawnSync(command!, rest, {
    encoding: 'utf8',
    uid: options.uid,
    gid: options.gid,
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function runJson(args: string[], options?: Parameters<typeof runCli>[1]) {
  const result = runCli([...args, '--json'], options);
  let report: any;
  try {
    report = JSON.parse(result.stdout);
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
  return { ...result, report };
}

/** Run the CLI without blocking, so several can run at once; resolves with its exit code or signal. */
export function runCliAsync(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; onSpawn?: (child: import('node:child_process').ChildProcess) => void } = {},
): Promise<CliResult & { signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (data: string) => (stdout += data));
    child.stderr.setEncoding('utf8').on('data', (data: string) => (stderr += data));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    options.onSpawn?.(child);
  });
}

/**
 * Run a printed remedy as an operator pastes it: in a shell, `chunkguard` being this
 * build's CLI. Returns the shell's result; the caller asserts it worked.
 */
export function pasteRemedy(remedy: string): CliResult {
  const script = `chunkguard() { ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"; }\n${remedy}`;
  const result = spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
