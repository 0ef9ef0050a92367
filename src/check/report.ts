import type { Finding } from '../findings.js';
import type { MountFacts } from '../system/mounts.js';
import type { InsertAction } from '../store/insert.js';
import type { StatSnapshot } from './snapshot.js';

export type CheckMode = 'adaptive' | 'fixed-sleep';

export interface TouchIdentity {
  uid: number;
  gid: number;
  groups: number[];
  /** From /etc/passwd; undefined when the uid has no entry. */
  name?: string;
  capFowner: boolean;
  /** Why the check ran as this user. */
  reason: 'current user' | 'store owner' | 'requested';
  /** How the identity was taken: this process, or a helper process started with setpriv/spawn. */
  via: 'self' | 'setpriv' | 'spawn';
}

export interface CheckReport {
  ok: boolean;
  command: 'check';
  /** The verdict in one line, as the CLI prints it. */
  summary: string;
  store: string;
  probe: boolean;
  mode: CheckMode;
  digest: string;
  chunkPath: string;
  /** What the insert did with the marker chunk (undefined when it did not get that far). */
  chunkAction?: InsertAction;
  touchedAs: TouchIdentity;
  filesystem?: MountFacts;
  /** Stats just before and after the touch that decided the verdict. */
  before?: StatSnapshot;
  after?: StatSnapshot;
  /** Milliseconds waited between touches (adaptive growth, or the fixed 1000 ms). */
  waits: number[];
  touches: number;
  clock?: { skewMs: number; hostNs: string; atimeNs: string };
  cutoffMinutes: number;
  durationMs: number;
  findings: Finding[];
}
