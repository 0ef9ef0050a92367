/**
 * Errors thrown by chunkguard carry a stable `code`.
 * `EBADINPUT` means the caller asked for something impossible (CLI exit 2);
 * anything else is an environment failure.
 */
export type ChunkguardErrorCode =
  | 'EBADINPUT'
  | 'ENATIVE'
  | 'EHELPER'
  | 'EABORT';

export class ChunkguardError extends Error {
  readonly code: ChunkguardErrorCode;
  readonly path: string | undefined;

  constructor(code: ChunkguardErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChunkguardError';
    this.code = code;
    this.path = options.path;
  }
}

export function badInput(path: string, reason: string): ChunkguardError {
  return new ChunkguardError('EBADINPUT', `${path}: ${reason}`, { path });
}

/** The errno name of a Node fs error, or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}
