/**
 * Child-process entry: runs the check with this process's credentials (the
 * GC user's, set by the parent through setpriv or spawn) and answers with
 * one JSON document on stdout. Options arrive as JSON on stdin.
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import { loadNative } from '../native/libc.js';
import { runCheck, type RunOptions } from './run.js';

async function main(): Promise<void> {
  // While the parent still builds the blob: load the binding, hash the chunk.
  try {
    loadNative();
    zeroChunkDigest();
  } catch {
    // runCheck reports it.
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const options = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RunOptions;
  try {
    const report = await runCheck(options);
    process.stdout.write(JSON.stringify({ report }));
  } catch (error) {
    const { code, message, path } = error as { code?: string; message: string; path?: string };
    process.stdout.write(JSON.stringify({ error: { code, message, path } }));
  }
}

void main();
