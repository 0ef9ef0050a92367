/**
 * How many stats the audit keeps in flight, chosen from the filesystem under
 * the tree. On a local filesystem a stat is CPU work in the kernel: the cores
 * bound it, and what is left to win is crossings and JavaScript per entry.
 * On a network or FUSE filesystem every stat is a round trip (to a server, to
 * a daemon), and concurrency, not CPU, is the lever: many more stats in
 * flight than cores, and several directories listed at once.
 * The numbers were measured on the bench (docs/benchmarks.md, docs/design.md).
 */
import { availableParallelism } from 'node:os';
import { badOption } from '../errors.js';
import { StatRing } from '../fs/stat-ring.js';
import { isFuse, isNetwork } from '../system/filesystems.js';

/** What the audit chose, shown in the report as `concurrency`. */
export interface Concurrency {
  /** Threads listing directories and stat'ing their entries (0: the calling thread). */
  workers: number;
  /** Stats in flight at most, all threads together. */
  statsInFlight: number;
  /** io_uring (many stats in flight per thread), or one synchronous statx at a time per thread. */
  via: 'io_uring' | 'statx';
  /** The filesystem type the numbers were chosen for (as mountinfo names it), and why, in words. */
  filesystem: string;
  reason: string;
}

/** Each scanning thread's io_uring: stats in flight through it, and the kernel threads (io-wq) it may run them on. */
export interface RingPlan {
  depth: number;
  kernelWorkers: number;
}

interface Plan {
  workers: number;
  ring?: RingPlan;
  why: string;
}

/**
 * A round trip per stat: threads to list directories at once (a listing is
 * round trips too, which io_uring cannot overlap), and stats in flight well
 * past the cores through each thread's ring. On the sshfs bench 4, 6 and 8
 * threads (64, 48, 32 in flight each) were as fast; more threads list more
 * directories at once where round trips are slower than there, and each costs
 * an isolate (~20 MiB), so 6.
 */
function roundTripPlan(fsType: string): Plan {
  const kind = isFuse(fsType) ? 'a FUSE filesystem' : 'a network filesystem';
  return { workers: 6, ring: { depth: 48, kernelWorkers: 48 }, why: `${fsType} is ${kind}: every stat is a round trip, so many are kept in flight` };
}

/**
 * Kernel work per stat: a thread per core, one synchronous statx at a time.
 * io_uring would save the crossing per entry but costs more in the kernel
 * (each statx goes to an io-wq thread and back): measured slower (docs/benchmarks.md).
 */
function localPlan(fsType: string, cores: number): Plan {
  return { workers: Math.min(cores, 4), why: `${fsType} is local: a stat is CPU work, so a thread per core (at most 4), one stat at a time each` };
}

/** Where io_uring cannot be used: threads are the only concurrency left. */
function withoutRing(plan: Plan, unavailable: string): Plan {
  return { workers: 16, why: `${plan.why}; ${unavailable}, so 16 threads, one stat at a time each` };
}

/**
 * The concurrency for a tree on `fsType`; `workers` (the option) overrides the
 * thread count, `ring` (a test seam) the filesystem's choice of io_uring. A
 * network or FUSE filesystem probes io_uring (a ring opened and closed).
 */
export function chooseConcurrency(fsType: string | undefined, workers: number | undefined, ring?: RingPlan): { concurrency: Concurrency; ring?: RingPlan } {
  const type = fsType ?? 'unknown';
  const cores = availableParallelism();
  let plan = isNetwork(type) || isFuse(type) ? roundTripPlan(type) : localPlan(type, cores);
  if (ring) plan = { ...plan, ring, why: `${plan.why}; io_uring as a test asked` };
  if (plan.ring) {
    const probe = StatRing.open(plan.ring.depth, plan.ring.kernelWorkers);
    if (probe instanceof StatRing) probe.close();
    else plan = withoutRing(plan, `io_uring cannot be used here (${probe.reason})`);
  }
  const threads = workers ?? plan.workers;
  const perThread = plan.ring?.depth ?? 1;
  return {
    concurrency: {
      workers: threads,
      statsInFlight: Math.max(threads, 1) * perThread,
      via: plan.ring ? 'io_uring' : 'statx',
      filesystem: type,
      reason: workers === undefined ? plan.why : `${plan.why}; ${threads} worker threads as asked (--workers)`,
    },
    ...(plan.ring ? { ring: plan.ring } : {}),
  };
}

/** The `workers` option, checked: undefined (chosen from the filesystem), or 0 to 64 threads. */
export function workersOption(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 64)) throw badOption('workers', value, 'expected a whole number of worker threads, 0 to 64');
  return value;
}
