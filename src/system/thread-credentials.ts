/**
 * Run a synchronous-free stretch of work on this thread as another user,
 * without a second process: the raw setgroups/setresgid/setresuid syscalls
 * change only the calling thread (libuv's worker threads stay as they were).
 * The saved ids stay 0, so the thread can come back; while switched, its
 * effective capabilities are empty (the kernel clears them when the effective
 * uid leaves 0), so CAP_FOWNER cannot mask what the GC user may not do. Every
 * switch is checked in /proc/thread-self/status, the kernel's own account.
 */
import { readFileSync } from 'node:fs';
import { ChunkguardError } from '../errors.js';
import { errnoName } from '../fs/errors.js';
import { libc } from '../native/libc.js';

export interface ThreadCredentials {
  uid: number;
  gid: number;
  groups: number[];
}

/** This thread's real, effective, saved uids and gids, groups and effective capabilities, as the kernel reports them. */
export function threadStatus(): { uids: number[]; gids: number[]; groups: number[]; capEff: bigint } {
  const status = readFileSync('/proc/thread-self/status', 'utf8');
  const lines = status.split('\n');
  const field = (name: string) => lines.find((line) => line.startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? '';
  const ids = (name: string) => field(name).split(/\s+/).filter(Boolean).map(Number);
  return { uids: ids('Uid'), gids: ids('Gid'), groups: ids('Groups'), capEff: BigInt(`0x${field('CapEff') || '0'}`) };
}

function fail(what: string): never {
  throw new ChunkguardError('EINTERNAL', `cannot switch this thread's credentials: ${what}`);
}

function call(name: string, result: number): void {
  if (result !== 0) fail(`${name} failed with ${errnoName(libc().errno())}`);
}

const sameSet = (a: number[], b: number[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * Switch this thread to `target` (this process must be root) and return the
 * function that switches it back. Each direction is verified; a thread that
 * cannot be switched back is a fatal error of chunkguard's, never ignored.
 */
export function switchThreadTo(target: ThreadCredentials): () => void {
  const before = threadStatus();
  if (before.uids[1] !== 0) fail(`it runs as uid ${before.uids[1]}, not root`);
  const { threadSetgroups, threadSetresgid, threadSetresuid } = libc();
  call('setgroups', threadSetgroups(target.groups));
  call('setresgid', threadSetresgid(target.gid, target.gid, -1));
  call('setresuid', threadSetresuid(target.uid, target.uid, -1));
  const now = threadStatus();
  if (now.uids[0] !== target.uid || now.uids[1] !== target.uid || now.gids[1] !== target.gid || !sameSet(now.groups, target.groups) || (target.uid !== 0 && now.capEff !== 0n)) {
    restore(before);
    fail(`the kernel reports uid ${now.uids.join(' ')}, gid ${now.gids.join(' ')}, groups ${now.groups.join(',')}, CapEff ${now.capEff.toString(16)}`);
  }
  const back = (): void => {
    if (switchedBack !== back) return;
    switchedBack = undefined;
    restore(before);
  };
  switchedBack = back;
  return back;
}

/** The switch back of the switch in force on this thread, if any. */
let switchedBack: (() => void) | undefined;

/**
 * Switch back now, if switched: for exit handlers, which run on this thread whatever
 * it was doing (a probe directory root made is removed as root).
 */
export function switchBackIfSwitched(): void {
  switchedBack?.();
}

function restore(before: ReturnType<typeof threadStatus>): void {
  const { threadSetgroups, threadSetresgid, threadSetresuid } = libc();
  call('setresuid back', threadSetresuid(before.uids[0]!, before.uids[1]!, -1));
  call('setresgid back', threadSetresgid(before.gids[0]!, before.gids[1]!, -1));
  call('setgroups back', threadSetgroups(before.groups));
  const now = threadStatus();
  if (now.uids[1] !== before.uids[1] || now.gids[1] !== before.gids[1] || !sameSet(now.groups, before.groups) || now.capEff !== before.capEff) {
    fail('the thread did not come back to its own credentials');
  }
}
