/**
 * Child-process entry: measures with this process's credentials (the GC
 * user's, set by the parent through setpriv or spawn) and answers with one
 * JSON document on stdout: { measurement } or { error }. The request (the
 * plan and the zero-chunk blob the parent sends) arrives as JSON on stdin.
 */
import { libc } from '../native/libc.js';
import type { MeasurePlan } from './context.js';
import { measureAtime } from './measure.js';

export interface HelperRequest {
  plan: MeasurePlan;
  /** The zero-chunk blob, base64. */
  blob: string;
}

async function main(): Promise<void> {
  // While the request is on its way: load the binding.
  try {
    libc();
  } catch {
    // measureAtime reports it.
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  try {
    const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HelperRequest;
    const measurement = await measureAtime(request.plan, Buffer.from(request.blob, 'base64'));
    process.stdout.write(JSON.stringify({ measurement }));
  } catch (error) {
    const { code, message, path } = error as { code?: string; message: string; path?: string };
    process.stdout.write(JSON.stringify({ error: { code, message, path } }));
  }
}

void main();
