/**
 * How long to wait before touching again when atime did not move: it may be
 * the same timestamp tick. Waits grow from 5 ms; on a filesystem that stores
 * whole seconds (ext4 -I 128) the wait jumps straight to the next second.
 * The total is capped just past 2 s, the coarsest granularity we accept.
 */
/** The timestamps of a stat, in ns (BigIntStats and NsStat both have them). */
type Times = { atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint };

export const FIRST_WAIT_MS = 5;
export const WAIT_CAP_MS = 2_500;
export const FIXED_SLEEP_MS = 1_000;
const SECOND_MARGIN_MS = 15;

export function storesWholeSeconds(stat: Times): boolean {
  return stat.atimeNs % 1_000_000_000n === 0n && stat.mtimeNs % 1_000_000_000n === 0n && stat.ctimeNs % 1_000_000_000n === 0n;
}

/** The next wait in ms, or undefined when the cap is reached. */
export function nextWait(previous: readonly number[], stat: Times, nowMs: number): number | undefined {
  const waited = previous.reduce((sum, wait) => sum + wait, 0);
  const remaining = WAIT_CAP_MS - waited;
  if (remaining <= 0) return undefined;
  const wait = storesWholeSeconds(stat)
    ? 1000 - (nowMs % 1000) + SECOND_MARGIN_MS
    : FIRST_WAIT_MS * 2 ** previous.length;
  return Math.min(wait, remaining);
}
