/**
 * What every step of a measurement shares: the plan, who is touching, the
 * diagnosis context, the one touch counter, the waits, the host clock and
 * the fault points (read once when the measurement starts).
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import type { Finding } from '../findings.js';
import { chunkPath } from '../store/layout.js';
import type { CallResult, Dir } from '../fs/dir.js';
import type { WireIdentity } from '../fs/identity.js';
import { type Faults, faultsFromEnv } from '../store/faults.js';
import type { FilesystemKnowledge } from '../system/filesystems.js';
import { mountFacts, type MountInfo } from '../system/mounts.js';
import { Accounts } from '../system/passwd.js';
import { CAP_FOWNER, hasCapability, userNamespace } from '../system/process.js';
import type { DiagnosisContext } from './diagnose.js';
import type { CheckMode, ChunkAction, Measurement } from './report.js';

/** What the measuring process is told (JSON-safe: it crosses to the helper process). */
export interface MeasurePlan {
  /** Absolute, validated store (or, with probe, the directory to probe). */
  store: string;
  probe: boolean;
  mode: CheckMode;
  /** The owner the store's files should have: new chunks and prefix directories get it when root inserts. */
  storeOwner: { uid: number; gid: number };
  /** Device and inode of the store root as validated: a root replaced since is refused. */
  rootIdentity: WireIdentity;
  /** Test seam: added to the host clock, to test skew (a decimal string: it crosses JSON). */
  clockOffsetNs?: string;
  /**
   * The mount and what is known of its filesystem, read by the caller: the GC
   * user may not be able to resolve the path (FUSE without allow_other), nor read a fuseblk device.
   */
  mount?: MountInfo;
  filesystem?: FilesystemKnowledge;
}

/** A step's value, or the finding that ends the measurement. */
export type Step<T> = { ok: true; value: T } | { ok: false; finding: Finding };

export const fail = (finding: Finding): { ok: false; finding: Finding } => ({ ok: false, finding });

/** The chunk, as its open prefix directory and its name (`path` is for messages). */
export interface ChunkAt {
  dir: Dir;
  name: string;
  path: string;
}

export interface MeasureContext {
  plan: MeasurePlan;
  diagnosis: DiagnosisContext;
  mount: MountInfo | undefined;
  faults: Faults;
  signal: AbortSignal | undefined;
  /** Host wall clock in ns since the epoch. */
  clock(): bigint;
  /** Every touch goes through here, so it is counted once. */
  touch(chunk: ChunkAt): CallResult;
  touches: number;
  /** Milliseconds waited, in order. */
  waits: number[];
  /** Findings of steps that went on (stale leftovers removed, a prefix directory created). */
  notes: Finding[];
  /** Where the marker chunk is, and what the insert did with it, once known. */
  chunkPath: string;
  chunkAction?: ChunkAction;
}

export function measureContext(plan: MeasurePlan, signal: AbortSignal | undefined): MeasureContext {
  const uid = process.geteuid!();
  const { mount } = plan;
  const offset = BigInt(plan.clockOffsetNs ?? '0');
  const context: MeasureContext = {
    plan,
    diagnosis: {
      accounts: new Accounts(),
      uid,
      gid: process.getegid!(),
      capFowner: hasCapability(CAP_FOWNER),
      namespace: userNamespace(),
      mount,
      storeOwner: plan.storeOwner,
      store: plan.store,
      known: plan.filesystem,
    },
    mount,
    faults: faultsFromEnv(),
    signal,
    clock: () => BigInt(Date.now()) * 1_000_000n + offset,
    touch(chunk) {
      context.touches++;
      return chunk.dir.touch(chunk.name);
    },
    touches: 0,
    waits: [],
    notes: [],
    chunkPath: chunkPath(plan.store, zeroChunkDigest()),
  };
  return context;
}

/** The mount and what is known of its filesystem, as a measurement reports them. */
export function filesystemFacts(plan: MeasurePlan): Measurement['filesystem'] {
  return plan.mount && { ...mountFacts(plan.mount), ...(plan.filesystem ? { known: plan.filesystem } : {}) };
}
