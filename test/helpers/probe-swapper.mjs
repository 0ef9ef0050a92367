// A hostile user beside `check --probe` in a directory it can write: every probe
// directory that appears is renamed away and, in turn, replaced by a symlink to
// `outside` or by a directory of its own (made in `decoys`, moved back there
// afterwards), then put back. Runs until `stop` exists; prints how many swaps it made and how many
// probe directories it saw (in a sticky directory the kernel refuses every swap).
// Usage: node probe-swapper.mjs <parent> <outside> <decoys> <stop-file>
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const [parent, outside, decoys, stop] = process.argv.slice(2);
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
    const planted = swaps % 2 === 0 ? attempt(() => symlinkSync(outside, path)) : attempt(() => (mkdirSync(decoy), renameSync(decoy, path)));
    Atomics.wait(pause, 0, 0, 2);
    if (planted) attempt(() => (swaps % 2 === 0 ? unlinkSync(path) : renameSync(path, decoy)));
    attempt(() => renameSync(away, path));
    swaps++;
  }
}
process.stdout.write(`${swaps} ${seen}`);
