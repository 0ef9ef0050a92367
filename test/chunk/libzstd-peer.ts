/**
 * An independent zstd encoder: test/fixtures/zstd-oneshot.c, libzstd's one-shot
 * ZSTD_compress (the server's call) built with gcc against the system's libzstd
 * (Debian: libzstd-dev, installed by .ci/run). Under CI=true a missing compiler or
 * header is a failure; elsewhere the tests that need it skip with the reason.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = join(import.meta.dirname, '..', 'fixtures', 'zstd-oneshot.c');
// Named by the source's hash, so an edited fixture is rebuilt.
const BINARY = join(tmpdir(), `chunkguard-zstd-oneshot-${createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12)}`);

function build(): { binary: string } | { missing: string } {
  if (existsSync(BINARY)) return { binary: BINARY };
  const partial = `${BINARY}.${process.pid}`;
  try {
    execFileSync('gcc', ['-Wall', '-Wextra', '-Werror', '-O1', '-o', partial, SOURCE, '-lzstd'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message).trim().split('\n')[0];
    return { missing: `cannot build test/fixtures/zstd-oneshot.c with gcc and libzstd (apt-get install gcc libzstd-dev): ${stderr}` };
  }
  renameSync(partial, BINARY);
  return { binary: BINARY };
}

const built = build();

/** Why the peer is not available here, or undefined when it is. */
export const libzstdMissing = 'missing' in built && process.env.CI !== 'true' ? built.missing : undefined;

/** libzstd's frame for `data` at `level` (with `noContentSize`, one that does not declare its size). */
export function libzstdCompress(data: Uint8Array, level: number, { noContentSize = false } = {}): Buffer {
  if ('missing' in built) throw new Error(built.missing);
  return execFileSync(built.binary, [String(level), ...(noContentSize ? ['no-content-size'] : [])], { input: data, maxBuffer: 64 * 1024 * 1024 });
}

