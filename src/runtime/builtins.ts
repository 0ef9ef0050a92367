/**
 * Node's built-in modules that only some runs need, loaded on first use. A bundle
 * loads every built-in it imports when it starts, used or not: crypto ~2 ms,
 * child_process with the streams and net it pulls in ~4 ms, zlib, worker_threads,
 * each on every run of every command (docs/design.md, "Start-up").
 */
export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');
export const workerThreads = (): typeof import('node:worker_threads') => process.getBuiltinModule('node:worker_threads');
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const tty = (): typeof import('node:tty') => process.getBuiltinModule('node:tty');

/** A monotonic clock in milliseconds, as performance.now() gives, without loading perf_hooks behind that global. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
