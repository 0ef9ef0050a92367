import type { Finding } from '../findings.js';
import type { GcUserChoice } from '../system/gc-user.js';
import type { Concurrency } from './concurrency.js';
import type { Burst } from './tally.js';

export interface Window {
  from: string;
  to: string;
}

export interface OwnerSummary {
  uid: number;
  gid: number;
  /** From /etc/passwd and /etc/group; undefined when there is no entry. */
  user?: string;
  group?: string;
  /** uid:gid is the expected owner. */
  expected: boolean;
  entries: number;
  directories: number;
  /** Bytes of regular files (apparent size). */
  bytes: number;
  mtime: Window;
  ctime: Window;
  /** For unexpected owners: when their entries were written (mtime) and last chowned or chmodded (ctime). */
  bursts?: { mtime: Burst[]; ctime: Burst[]; complete: boolean };
  /** A few of their paths, as find prints them. */
  examples: string[];
}

export interface AuditIdentity {
  uid: number;
  gid: number;
  user?: string;
  group?: string;
}

export interface AuditReport {
  ok: boolean;
  command: 'audit';
  /** The verdict in one line, as the CLI prints it. */
  summary: string;
  /** The directory, absolute (a symlink given as the directory: the link's own path, resolved once). */
  dir: string;
  /** 'chunk-store': holds .chunks (server layout); 'repository': any other tree (kopia, restic, borg...). */
  layout: 'chunk-store' | 'repository';
  /** Who every entry should belong to: `--owner`, else the GC user. */
  expectedOwner: AuditIdentity & { from: 'option' | 'gc user' };
  /** Who GC runs as, and why (docs/design.md). */
  gcUser: GcUserChoice;
  crossFilesystems: boolean;
  scanned: { entries: number; directories: number; bytes: number };
  /** Entries with at least one problem (what --list prints). */
  offending: number;
  owners: OwnerSummary[];
  /** How many stats were in flight at most, in how many threads, and why (chosen from the filesystem). */
  concurrency: Concurrency;
  durationMs: number;
  findings: Finding[];
}
