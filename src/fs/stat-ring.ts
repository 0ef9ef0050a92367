/**
 * statx calls in batches through io_uring (IORING_OP_STATX): many stats in
 * flight from one thread, and one crossing into native code per batch
 * instead of one per entry. The kernel runs each statx on its own worker
 * threads (io-wq: statx is always punted there), so on a network or FUSE
 * filesystem, where every stat is a round trip, as many round trips overlap
 * as there are workers, without a thread of ours per stat.
 *
 * Each slot holds a copy of the entry's name and its struct statx, so the
 * caller's listing buffer can be reused at once, and the name is still there
 * when the result comes back. The directory descriptor is only read when the
 * kernel runs the statx: the caller keeps it open until the result is in.
 *
 * Memory ordering: the ring is set up SINGLE_ISSUER | DEFER_TASKRUN (Linux
 * 6.1), so the kernel reads the submission queue and writes completions only
 * inside this thread's io_uring_enter. Plain typed-array reads and writes
 * before and after that call need no barriers, on arm64 too. Older kernels,
 * io_uring disabled (sysctl kernel.io_uring_disabled, a container's seccomp
 * profile) or no memory for it: open() says why not, and callers stat one at
 * a time instead.
 */
import { libc, type NativePointer } from '../native/libc.js';
import { errnoName, FsError } from './errors.js';
import { STATX_SIZE, StatWords } from './stat.js';

const SETUP_SUBMIT_ALL = 1 << 7;
const SETUP_SINGLE_ISSUER = 1 << 12;
const SETUP_DEFER_TASKRUN = 1 << 13;
const FEAT_SINGLE_MMAP = 1 << 0;
const OFF_SQES = 0x10000000;
const ENTER_GETEVENTS = 1;
const REGISTER_IOWQ_MAX_WORKERS = 19;
const OP_STATX = 21;
const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;

/** struct io_uring_params: 120 bytes; the offsets of the rings' fields inside the mapping come back in it. */
const PARAMS_SIZE = 120;
const PARAMS = { sqEntries: 0, cqEntries: 4, flags: 8, features: 20, sqOff: 40, cqOff: 80 } as const;
/** io_sqring_offsets and io_cqring_offsets, as 32-bit words from sqOff and cqOff. */
const SQ_OFF = { head: 0, tail: 1, mask: 2, array: 6 } as const;
const CQ_OFF = { head: 0, tail: 1, mask: 2, cqes: 5 } as const;
/** struct io_uring_sqe (64 bytes) as 32-bit words, for IORING_OP_STATX. */
const SQE_WORDS = 16;
const SQE = { opcode: 0, fd: 1, statxBuf: 2, path: 4, mask: 6, statxFlags: 7, userData: 8 } as const;
/** struct io_uring_cqe (16 bytes) as 32-bit words: user_data, res, flags. */
const CQE_WORDS = 4;
const CQE = { userData: 0, res: 2 } as const;
/** A name as the kernel takes it: NAME_MAX bytes and the NUL. */
const NAME_SIZE = 256;
const SLOT_SIZE = STATX_SIZE + NAME_SIZE;

/**
 * Slot memory of rings closed with stats still in flight (only when io_uring_enter
 * itself failed): kept for the life of the process, as the kernel may still write there.
 */
const abandoned: Buffer[] = [];

/** Why io_uring cannot be used here: the errno of the setup, for the report. */
export type RingUnavailable = { reason: string };

/** A shared mapping of the ring's memory, unmapped once. */
interface Mapping {
  pointer: NativePointer;
  length: number;
  words: Uint32Array;
}

function mapRing(fd: number, length: number, offset: number): Mapping | undefined {
  const pointer = libc().mmap(length, PROT_READ_WRITE, MAP_SHARED_POPULATE, fd, offset);
  return pointer ? { pointer, length, words: new Uint32Array(libc().view(pointer, length)) } : undefined;
}

export class StatRing {
  /** The statx in flight or queued, by slot: what the caller tagged each with, the name's length. */
  private readonly tags: Int32Array;
  private readonly nameLengths: Int32Array;
  private readonly freeSlots: Int32Array;
  private freeCount: number;
  private queued = 0;
  private closed = false;
  /** One struct statx and one name per slot, at addresses the kernel is given. */
  private readonly slots: Buffer;
  private readonly stats: StatWords[];
  private readonly slotAddress: [number, number][];

  private constructor(
    private readonly fd: number,
    private readonly ring: Mapping,
    private readonly sqes: Mapping,
    private readonly sq: { head: number; tail: number; mask: number },
    private readonly cq: { head: number; tail: number; mask: number; cqes: number },
    /** Stats in flight at most (the submission queue's size). */
    readonly depth: number,
  ) {
    this.tags = new Int32Array(depth);
    this.nameLengths = new Int32Array(depth);
    this.freeSlots = Int32Array.from({ length: depth }, (_, index) => depth - 1 - index);
    this.freeCount = depth;
    // Off the V8 heap and held until close(): the kernel writes here while a statx is in flight.
    this.slots = Buffer.alloc(depth * SLOT_SIZE);
    const base = libc().address(this.slots);
    this.stats = Array.from({ length: depth }, (_, slot) => new StatWords(this.slots.subarray(slot * SLOT_SIZE, slot * SLOT_SIZE + STATX_SIZE)));
    this.slotAddress = Array.from({ length: depth }, (_, slot) => {
      const address = base + BigInt(slot * SLOT_SIZE);
      return [Number(address & 0xffffffffn), Number(address >> 32n)];
    });
  }

  /**
   * A ring for `depth` stats in flight, run by at most `kernelWorkers` io-wq
   * threads of this thread; why not, when io_uring cannot be used here.
   */
  static open(depth: number, kernelWorkers: number): StatRing | RingUnavailable {
    const params = Buffer.alloc(PARAMS_SIZE);
    params.writeUInt32LE(SETUP_SUBMIT_ALL | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN, PARAMS.flags);
    const fd = libc().ioUringSetup(depth, params);
    if (fd < 0) return { reason: `io_uring_setup failed with ${errnoName(libc().errno())}` };
    const word = (offset: number) => params.readUInt32LE(offset);
    const entries = word(PARAMS.sqEntries);
    const sqOff = (field: number) => word(PARAMS.sqOff + field * 4);
    const cqOff = (field: number) => word(PARAMS.cqOff + field * 4);
    const mappings: Mapping[] = [];
    const fail = (reason: string): RingUnavailable => {
      for (const mapping of mappings) libc().munmap(mapping.pointer, mapping.length);
      libc().close(fd);
      return { reason };
    };
    if (!(word(PARAMS.features) & FEAT_SINGLE_MMAP)) return fail('io_uring without IORING_FEAT_SINGLE_MMAP (Linux 5.4)');
    const length = Math.max(sqOff(SQ_OFF.array) + entries * 4, cqOff(CQ_OFF.cqes) + word(PARAMS.cqEntries) * CQE_WORDS * 4);
    for (const [size, offset] of [[length, 0], [entries * SQE_WORDS * 4, OFF_SQES]] as const) {
      const mapping = mapRing(fd, size, offset);
      if (!mapping) return fail(`mmap of the ring failed with ${errnoName(libc().errno())}`);
      mappings.push(mapping);
    }
    const [ring, sqes] = mappings as [Mapping, Mapping];
    const workers = Buffer.alloc(8);
    workers.writeUInt32LE(kernelWorkers, 0); // bounded workers (statx is bounded work); 0 leaves the unbounded ones as they are
    if (libc().ioUringRegister(fd, REGISTER_IOWQ_MAX_WORKERS, workers, 2) < 0) return fail(`IORING_REGISTER_IOWQ_MAX_WORKERS failed with ${errnoName(libc().errno())}`);
    // Submission queue entry i is always SQE i.
    const array = sqOff(SQ_OFF.array) / 4;
    for (let index = 0; index < entries; index++) ring.words[array + index] = index;
    const sq = { head: sqOff(SQ_OFF.head) / 4, tail: sqOff(SQ_OFF.tail) / 4, mask: ring.words[sqOff(SQ_OFF.mask) / 4]! };
    const cq = { head: cqOff(CQ_OFF.head) / 4, tail: cqOff(CQ_OFF.tail) / 4, mask: ring.words[cqOff(CQ_OFF.mask) / 4]!, cqes: cqOff(CQ_OFF.cqes) / 4 };
    return new StatRing(fd, ring, sqes, sq, cq, entries);
  }

  /** Stats queued or in flight. */
  get inFlight(): number {
    return this.depth - this.freeCount;
  }

  get full(): boolean {
    return this.freeCount === 0;
  }

  /**
   * Queue a statx of the NUL-terminated name in `names` at `start` (copied
   * here: `names` may be reused at once) relative to the open directory
   * `dirFd`, which must stay open until the result is collected. Returns the
   * slot; the ring must not be full.
   */
  queue(dirFd: number, names: Buffer, start: number, flags: number, mask: number, tag: number): number {
    // After close() the ring's memory is unmapped: writing there would crash the process.
    if (this.closed) throw new FsError('EBADF', 'io_uring_enter', 'the stat ring', { detail: 'used after it was closed' });
    const slot = this.freeSlots[this.freeCount - 1]!;
    // A byte loop: names are short, and a copy call would cost more than it moves.
    const { slots } = this;
    const base = slot * SLOT_SIZE + STATX_SIZE;
    let length = 0;
    for (let byte = names[start]!; byte !== 0; byte = names[start + length]!) {
      if (length === NAME_SIZE - 1) throw new FsError('ENAMETOOLONG', 'statx', names.subarray(start, start + length).toString());
      slots[base + length++] = byte;
    }
    slots[base + length] = 0;
    this.freeCount--;
    this.tags[slot] = tag;
    this.nameLengths[slot] = length;
    const [statLow, statHigh] = this.slotAddress[slot]!;
    const sqes = this.sqes.words;
    const ring = this.ring.words;
    const tail = ring[this.sq.tail]!;
    const at = (tail & this.sq.mask) * SQE_WORDS;
    sqes.fill(0, at, at + SQE_WORDS);
    sqes[at + SQE.opcode] = OP_STATX;
    sqes[at + SQE.fd] = dirFd;
    sqes[at + SQE.statxBuf] = statLow;
    sqes[at + SQE.statxBuf + 1] = statHigh;
    // The name sits STATX_SIZE after the statx: below 2^32 from it, so a carry into the high word is all there is.
    const pathLow = statLow + STATX_SIZE;
    sqes[at + SQE.path] = pathLow >>> 0;
    sqes[at + SQE.path + 1] = statHigh + (pathLow > 0xffffffff ? 1 : 0);
    sqes[at + SQE.mask] = mask;
    sqes[at + SQE.statxFlags] = flags;
    sqes[at + SQE.userData] = slot;
    ring[this.sq.tail] = tail + 1;
    this.queued++;
    return slot;
  }

  /** The NUL-terminated name a slot was queued with (valid until its result has been handed over). */
  nameOf(slot: number): Buffer {
    const start = this.nameStart(slot);
    return this.slots.subarray(start, start + this.nameLengths[slot]! + 1);
  }

  /** The buffer that holds every slot's name, for a reader that makes no Buffer per name (nameStart). */
  get nameBuffer(): Buffer {
    return this.slots;
  }

  /** Where in nameBuffer the NUL-terminated name of a slot starts (valid as nameOf). */
  nameStart(slot: number): number {
    return slot * SLOT_SIZE + STATX_SIZE;
  }

  /**
   * Submit what is queued and hand every finished statx to `done` (its tag,
   * 0 or the errno, its struct statx, its slot for nameOf): with `wait`, after
   * at least one has finished. The slot is free again once `done` returns.
   */
  collect(wait: boolean, done: (tag: number, errno: number, stat: StatWords, slot: number) => void): void {
    if (this.closed) throw new FsError('EBADF', 'io_uring_enter', 'the stat ring', { detail: 'used after it was closed' });
    this.enter(wait && this.inFlight > 0 ? 1 : 0);
    const ring = this.ring.words;
    const { head: headAt, tail: tailAt, mask, cqes } = this.cq;
    const tail = ring[tailAt]!;
    for (let head = ring[headAt]!; head !== tail; head = (head + 1) >>> 0) {
      const at = cqes + (head & mask) * CQE_WORDS;
      const slot = ring[at + CQE.userData]!;
      const res = ring[at + CQE.res]! | 0;
      // Consumed before `done` runs: it may throw, and the slot's result is read by then.
      ring[headAt] = (head + 1) >>> 0;
      this.freeSlots[this.freeCount++] = slot;
      done(this.tags[slot]!, res < 0 ? -res : 0, this.stats[slot]!, slot);
    }
  }

  /** io_uring_enter: submit the queued ones, run the completions the kernel deferred to this thread. */
  private enter(minComplete: number): void {
    for (;;) {
      const submitted = libc().ioUringEnter(this.fd, this.queued, minComplete, ENTER_GETEVENTS);
      if (submitted >= 0) {
        // SUBMIT_ALL: every queued one is taken, or the call failed as a whole.
        this.queued -= submitted;
        if (this.queued === 0) return;
        continue;
      }
      const code = errnoName(libc().errno());
      // A signal while waiting, or no memory for requests just now: nothing was lost, go again.
      if (code === 'EINTR' || code === 'EAGAIN') continue;
      throw new FsError(code, 'io_uring_enter', 'the stat ring');
    }
  }

  /**
   * Waits for the stats still in flight (the kernel writes into this ring's
   * memory until they finish), then closes the ring. A second call does nothing.
   */
  close(): void {
    if (this.closed) return;
    try {
      while (this.inFlight > 0) this.collect(true, () => {});
    } finally {
      this.closed = true;
      if (this.inFlight > 0) abandoned.push(this.slots);
      libc().munmap(this.ring.pointer, this.ring.length);
      libc().munmap(this.sqes.pointer, this.sqes.length);
      libc().close(this.fd);
    }
  }
}
