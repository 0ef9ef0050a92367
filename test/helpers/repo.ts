/** A kopia-style repository (shard directories of blobs) with a planted burst of root-owned blobs. */
import { chownSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO_UID = 1000;
export const REPO_GID = 1000;
/** The minute the root-owned blobs were written (seed 000: 18:00:31..33). */
export const BURST_START = new Date('2026-01-31T18:00:31Z');

export interface Repo {
  root: string;
  /** Paths (relative to root) of the root-owned blobs. */
  planted: string[];
  /** Every regular file's relative path. */
  blobs: string[];
}

export function makeKopiaRepo(root: string, options: { rootOwned?: number } = {}): Repo {
  const own = (path: string, uid = REPO_UID, gid = REPO_GID) => chownSync(path, uid, gid);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  own(root);
  const blobs: string[] = [];
  const write = (rel: string, data: string, mode = 0o644) => {
    writeFileSync(join(root, rel), data, { mode });
    own(join(root, rel));
    blobs.push(rel);
  };
  write('kopia.repository.f', '{"uniqueID":"x"}');
  for (const shard of ['p', 'q', 'x', '_log']) {
    mkdirSync(join(root, shard), { mode: 0o755 });
    own(join(root, shard));
    for (const sub of ['0a1', '56c', 'f9e']) {
      const dir = join(shard, sub);
      mkdirSync(join(root, dir), { mode: 0o755 });
      own(join(root, dir));
      for (let i = 0; i < 4; i++) {
        const rel = join(dir, `${sub}${i}c87f68a0e256d20a96760e9818-s242db56d01c5d01413d.f`);
        write(rel, `blob ${rel}`);
      }
    }
  }
  const planted: string[] = [];
  const count = options.rootOwned ?? 7;
  for (let i = 0; i < count; i++) {
    const rel = join(['p', 'q', 'x'][i % 3]!, '56c', `root${i}-1c87f68a0e256d20a96760e9818.f`);
    writeFileSync(join(root, rel), `root blob ${i}`, { mode: 0o600 });
    // uid 0 with the fsGroup gid, as the maintenance job left them.
    chownSync(join(root, rel), 0, REPO_GID);
    const mtime = new Date(BURST_START.getTime() + (i % 3) * 1000);
    utimesSync(join(root, rel), mtime, mtime);
    planted.push(rel);
    blobs.push(rel);
  }
  return { root, planted, blobs };
}
