/**
 * The GC preview's report: what the server's next garbage collection would do
 * to the store, counted in distinct chunks and st_size bytes. Lists name paths
 * relative to the store root, complete and sorted; everything else is absolute.
 */
import type { Concurrency } from '../audit/concurrency.js';
import type { CheckReport } from '../check/report.js';
import type { Finding } from '../findings.js';
import type { FilesystemKnowledge } from '../system/filesystems.js';
import type { GcUserChoice } from '../system/gc-user.js';
import type { MountFacts } from '../system/mounts.js';
import type { Amount, LastGc } from './last-gc.js';
import type { CutoffSource } from './settings.js';
import type { BackupWriters } from './writers.js';

export type { Amount };

/** Why the server's GC would stop, in the order it meets them. */
export type AbortCause =
  | 'NESTED_DATASTORE'
  | 'TUNING_INVALID'
  | 'ATIME_CHECK'
  | 'WALK_DENIED'
  | 'WALK_FAILED'
  | 'SCHEME_STOP'
  | 'INDEX_UNREADABLE'
  | 'INDEX_MALFORMED'
  | 'INDEX_BLOCKS'
  | 'CHUNK_UNMARKABLE'
  | 'PREFIX_DIR_UNREADABLE'
  | 'CHUNK_NOT_REMOVABLE';

/** The server's phase a cause stops: start, atime safety check, phase 1 (mark) or phase 2 (sweep). */
export type GcPhase = 'start' | 'atime check' | 'mark' | 'sweep';

export interface GcAbort {
  code: AbortCause;
  phase: GcPhase;
  /** Absolute. */
  path: string;
  reason: string;
  remedy?: string;
}

export interface GcPreviewReport {
  ok: boolean;
  command: 'gc-preview';
  summary: string;
  store: string;
  /** The datastore.cfg entry the store is, when it is one. */
  datastore?: string;
  gcUser: GcUserChoice;
  filesystem?: MountFacts & { known?: FilesystemKnowledge };
  /** Unix seconds. */
  now: number;
  cutoffMinutes: number;
  cutoffFrom: CutoffSource;
  minAtime: number;
  /** The server's oldest_writer: the oldest running backup's start, else `now`. */
  oldestWriter: number;
  writers: BackupWriters;
  /** The atime safety check as `check` ran it (the same zero chunk the server's GC inserts and touches); undefined with skipAtimeCheck. */
  atimeCheck?: { ok: boolean; summary: string; touchIgnored: boolean; findings: string[]; report: CheckReport };
  snapshots: { total: number; broken: string[] };
  indexes: { files: number; bytes: number; outsideScheme: string[]; unreadable: string[] };
  referenced: { chunks: number; bytes: number; missing: number; unmarkable: number; unmarkablePaths: string[] };
  /** What phase 2 would do once nothing stops it; `bad` counts `<digest>.N.bad` files (removed ones in `removed`). */
  sweep: { removed: Amount; pending: Amount; inUse: Amount; bad: Amount & { removed: number } };
  /** Referenced chunks whose atime is older than minAtime: only the mark's touch keeps them. */
  atRisk: Amount & { snapshots: string[] };
  /** Crashed inserts' temp files (`<digest>.tmp_XXXXXX`): never swept. */
  leftovers: { files: number; bytes: number };
  abort: GcAbort | null;
  /** `.gc-status`: the last GC that completed. */
  lastGc?: LastGc;
  /** How `.chunks` was walked: the audit's choice for the filesystem. */
  concurrency: Concurrency;
  /** What chunkguard read that the GC user could not (run as root). */
  readBeyondGcUser: string[];
  durationMs: number;
  findings: Finding[];
}

export interface GcPreviewProgress {
  phase: 'atime check' | 'indexes' | 'chunks' | 'snapshots';
  /** Index files read, or prefix directories walked. */
  done: number;
  total?: number;
}
