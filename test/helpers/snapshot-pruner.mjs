// A prune and a backup racing GC: removes a snapshot directory (its files,
// then the directory, as the server's prune does) and makes it again from
// `template` (its files written in `staging` on the same filesystem, the
// directory renamed into place whole, owners kept), over and over until
// `stop` exists. Prints `started` once running, then how many times it removed the snapshot.
// Usage: node snapshot-pruner.mjs <snapshot-dir> <template-dir> <staging-dir> <stop-file>
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [snapshot, template, staging, stop] = process.argv.slice(2);
const dirOwner = statSync(template);
const files = readdirSync(template).map((name) => ({ name, bytes: readFileSync(join(template, name)), owner: statSync(join(template, name)) }));
let rounds = 0;
process.stdout.write('started\n');
while (!existsSync(stop)) {
  rmSync(snapshot, { recursive: true, force: true });
  const next = join(staging, `snapshot-${rounds}`);
  mkdirSync(next, { mode: 0o755 });
  for (const file of files) {
    writeFileSync(join(next, file.name), file.bytes, { mode: 0o644 });
    chownSync(join(next, file.name), file.owner.uid, file.owner.gid);
  }
  chownSync(next, dirOwner.uid, dirOwner.gid);
  renameSync(next, snapshot);
  rounds++;
}
process.stdout.write(String(rounds));
