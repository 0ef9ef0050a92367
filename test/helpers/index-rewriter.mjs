// A backup server finishing one index again and again while GC reads it: each
// round writes the next version in `staging` (on the same filesystem) and
// renames it over `path`, as the server completes an index. With `in-place`,
// every other round rewrites the file itself instead (truncate, then write),
// as no server does but a careless tool might. Versions keep the owner of the
// files they come from. Runs until `stop` exists; prints `started` once running, then how many rewrites it made.
// Usage: node index-rewriter.mjs <path> <staging-dir> <stop-file> <rename|in-place> <version file>...
import { chownSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [path, staging, stop, mode, ...files] = process.argv.slice(2);
const versions = files.map((file) => ({ bytes: readFileSync(file), owner: statSync(file) }));
let rounds = 0;
process.stdout.write('started\n');
while (!existsSync(stop)) {
  const { bytes, owner } = versions[rounds % versions.length];
  if (mode === 'in-place' && rounds % 2 === 1) {
    writeFileSync(path, bytes);
  } else {
    const next = join(staging, `version-${rounds}`);
    writeFileSync(next, bytes, { mode: 0o644 });
    chownSync(next, owner.uid, owner.gid);
    renameSync(next, path);
  }
  rounds++;
}
process.stdout.write(String(rounds));
