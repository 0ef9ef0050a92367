// A hostile second process: swaps `path` (a directory or file inside a store)
// with a symlink to `target`, back and forth, as fast as it can, until `stop`
// exists. Every step is a rename, so the path is the real entry, a symlink,
// or briefly absent. Prints how many swaps it made.
// Usage: node swapper.mjs <path> <target> <stop-file>
import { existsSync, lstatSync, renameSync, rmSync, symlinkSync } from 'node:fs';

const [path, target, stop] = process.argv.slice(2);
const away = `${path}.away`;
const link = `${path}.link`;
symlinkSync(target, link);
let swaps = 0;
const attempt = (step) => {
  try {
    step();
  } catch {
    // The store changed under us (a check created the entry meanwhile): retried next round.
  }
};
while (!existsSync(stop)) {
  attempt(() => renameSync(path, away));
  attempt(() => renameSync(link, path));
  attempt(() => {
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) renameSync(path, link);
  });
  attempt(() => {
    // A check may have created a fresh entry in the gap: move it aside so the original returns.
    if (existsSync(away) && lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === false) renameSync(path, `${path}.intruder${swaps}`);
  });
  attempt(() => renameSync(away, path));
  swaps++;
}
attempt(() => rmSync(link));
process.stdout.write(String(swaps));
