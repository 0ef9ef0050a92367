/**
 * The one error type of the public API. Every rejection of checkAtime,
 * auditStore, fixOwnership, undoJournal, inspectEnvironment and decodeBlob is
 * a ChunkguardError with one of these codes:
 *   EBADINPUT  the caller asked for something impossible (a bad path or option);
 *   EABORT     the AbortSignal fired (also when it had fired before the call);
 *   EHELPER    the helper process or an audit worker could not run;
 *   ENATIVE    this platform is not supported, or the native binding cannot load;
 *   EBADBLOB   decodeBlob: the bytes are not a valid chunk blob (BlobError);
 *   EINTERNAL  anything else: a failure chunkguard did not expect (`cause` has it).
 * Messages speak the library's terms (`runAs`, `cutoffMinutes`); the CLI renders
 * its flag names from `option`.
 */
export type ChunkguardErrorCode = 'EBADINPUT' | 'EABORT' | 'EHELPER' | 'ENATIVE' | 'EBADBLOB' | 'EINTERNAL';

export interface ChunkguardErrorOptions {
  path?: string;
  /** The option that was wrong (library name, e.g. `runAs`). */
  option?: string;
  /** The value given for `option`, as text. */
  value?: string;
  /** The reason without the option or path. */
  reason?: string;
  cause?: unknown;
}

export class ChunkguardError extends Error {
  readonly code: ChunkguardErrorCode;
  readonly path: string | undefined;
  readonly option: string | undefined;
  readonly value: string | undefined;
  readonly reason: string | undefined;

  constructor(code: ChunkguardErrorCode, message: string, options: ChunkguardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChunkguardError';
    this.code = code;
    this.path = options.path;
    this.option = options.option;
    this.value = options.value;
    this.reason = options.reason;
  }
}

/** A path that cannot be used: `<path>: <reason>`. */
export function badInput(path: string, reason: string): ChunkguardError {
  return new ChunkguardError('EBADINPUT', `${path}: ${reason}`, { path, reason });
}

/** An option that cannot be used: `<option> <value>: <reason>`. */
export function badOption(option: string, value: unknown, reason: string): ChunkguardError {
  const text = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  return new ChunkguardError('EBADINPUT', optionMessage(option, text, reason), { option, value: text, reason });
}

/** `<option> <value>: <reason>` (library or flag name), an empty or blank value quoted: it would vanish between the two. */
export function optionMessage(option: string, value: string, reason: string): string {
  return `${option} ${value.trim() === '' ? `'${value}'` : value}: ${reason}`;
}

export function aborted(signal: AbortSignal | undefined, what: string): ChunkguardError {
  return new ChunkguardError('EABORT', `${what} was aborted`, { cause: signal?.reason });
}

/** Reject at once when the signal fired before the call (with its reason as `cause`). */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw aborted(signal, what);
}

/** The errno name of a Node fs error or an FsError, or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/**
 * What leaves the public API: a ChunkguardError as it is, an abort as EABORT,
 * anything else as EINTERNAL with the original as `cause`.
 */
export function publicError(error: unknown, signal: AbortSignal | undefined, what: string): ChunkguardError {
  if (error instanceof ChunkguardError) return error;
  const abortError = errnoCode(error) === 'ABORT_ERR' || (error instanceof Error && error.name === 'AbortError');
  if (signal?.aborted || abortError) return aborted(signal, what);
  const path = error && typeof error === 'object' && 'path' in error && typeof error.path === 'string' ? error.path : undefined;
  // A filesystem failure names its path and errno already ("<path>: cannot write the journal (ENOSPC)").
  const filesystem = error instanceof Error && error.name === 'FsError';
  return new ChunkguardError('EINTERNAL', `${what} ${filesystem ? 'stopped' : 'failed unexpectedly'}: ${(error as Error)?.message ?? String(error)}`, { path, cause: error });
}

/** Run a public entry point: every rejection becomes a ChunkguardError. */
export async function publicCall<T>(what: string, signal: AbortSignal | undefined, run: () => Promise<T> | T): Promise<T> {
  try {
    throwIfAborted(signal, what);
    return await run();
  } catch (error) {
    throw publicError(error, signal, what);
  }
}
