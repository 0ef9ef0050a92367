/**
 * Proxmox Backup Server's datastore list, `/etc/proxmox-backup/datastore.cfg`:
 * sections `datastore: NAME` with an indented `path /some/dir`. A store listed
 * there (or a directory inside one) is garbage-collected by the server as its
 * `backup` user. The file is read as text and trusted only to name paths:
 * a path matches when it is the same directory on disk (device and inode),
 * or contains the given one.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isWithin } from '../fs/safe-path.js';

export const DATASTORE_CONFIG = '/etc/proxmox-backup/datastore.cfg';

export interface Datastore {
  name: string;
  path: string;
  /** The file it was read from. */
  config: string;
}

export function parseDatastores(text: string, config: string): Datastore[] {
  const stores: Datastore[] = [];
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const header = /^(\S+):\s*(\S+)\s*$/.exec(line);
    if (header) {
      current = header[1] === 'datastore' ? header[2] : undefined;
      continue;
    }
    const path = /^\s+path\s+(\S.*?)\s*$/.exec(line);
    if (current !== undefined && path?.[1]?.startsWith('/')) stores.push({ name: current, path: path[1], config });
  }
  return stores;
}

/** The datastore `dir` is (or lies in), from the server's config; undefined when none or unreadable. */
export function datastoreOf(dir: string, config = DATASTORE_CONFIG): Datastore | undefined {
  let text: string;
  try {
    text = readFileSync(config, 'utf8');
  } catch {
    return undefined;
  }
  const target = located(dir);
  if (!target) return undefined;
  return parseDatastores(text, config).find((store) => {
    const listed = located(store.path);
    return listed !== undefined && ((listed.dev === target.dev && listed.ino === target.ino) || isWithin(target.real, listed.real));
  });
}

function located(path: string): { real: string; dev: bigint; ino: bigint } | undefined {
  try {
    const stat = statSync(path, { bigint: true });
    return { real: realpathSync(path), dev: stat.dev, ino: stat.ino };
  } catch {
    return undefined;
  }
}
