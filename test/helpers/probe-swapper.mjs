// A hostile user beside `check --probe` in a directory it can write: every probe
// directory that appears is renamed away and, in turn, replaced by a symlink to
// `outside`, by a directory of its own (made in `decoys`, moved back there
// afterwards) or by `rootdata`, a directory of root's beside it in the parent
// (a rename within a directory needs no right on the directory moved), then put back. Runs until `stop` exists; prints how many swaps it made and how many
// probe directories it saw (in a sticky directory the kernel refuses every swap).
// Usage: node probe-swapper.mjs <parent> <outside> <decoys> <rootdata name> <stop-file>
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const [parent, outside, decoys, rootdata, stop] = process.argv.slice(2);
let swaps = 0;
let seen = 0;
const attempt = (step) => {
  try {
    step();
    return true;
  } catch {
    return false;
  }
};
const pause = new Int32Array(new SharedArrayBuffer(4));
while (!existsSync(stop)) {
  let names = [];
  attempt(() => (names = readdirSync(parent)));
  for (const name of names) {
    if (!name.startsWith('.chunkguard-probe-') || name.endsWith('.away')) continue;
    seen++;
    const path = join(parent, name);
    const away = `${path}.away`;
    if (!attempt(() => renameSync(path, away))) continue;
    const decoy = join(decoys, `d${swaps}`);
    const theirs = join(parent, rootdata);
    const kind = swaps % 3;
    const planted = attempt(() => (kind === 0 ? symlinkSync(outside, path) : kind === 1 ? (mkdirSync(decoy), renameSync(decoy, path)) : renameSync(theirs, path)));
    Atomics.wait(pause, 0, 0, 2);
    if (planted) attempt(() => (kind === 0 ? unlinkSync(path) : renameSync(path, kind === 1 ? decoy : theirs)));
    attempt(() => renameSync(away, path));
    swaps++;
  }
}
process.stdout.write(`${swaps} ${seen}`);
