/**
 * Proxmox Backup Server's datastore list, `/etc/proxmox-backup/datastore.cfg`:
 * sections `datastore: NAME` with an indented `path /some/dir`. A store listed
 * there (or a directory inside one) is garbage-collected by the server as its
 * `backup` user. The file is read as text and trusted only to name paths:
 * a path matches when it is the same directory on disk (device and inode)
 * as the given one or a directory above it.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

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
    if (/^\s*#/.test(line)) continue;
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

/**
 * The datastore `dir` is, or lies in: `dir` or a directory above it is the same directory
 * (device and inode) as a listed path. A listed path that is `/` (or resolves to it) is
 * ignored: it would make every directory a datastore. Undefined when none, or unreadable.
 */
export function datastoreOf(dir: string, config = DATASTORE_CONFIG): Datastore | undefined {
  let text: string;
  try {
    text = readFileSync(config, 'utf8');
  } catch {
    return undefined;
  }
  const listed = parseDatastores(text, config)
    .map((store) => ({ store, id: identity(store.path) }))
    .filter((entry) => entry.id !== undefined && entry.id !== ROOT_ID);
  if (listed.length === 0) return undefined;
  // dir and the directories above it, by identity, walking up (never by a resolved prefix).
  for (let at = dir; ; at = dirname(at)) {
    const id = identity(at);
    const found = id && listed.find((entry) => entry.id === id);
    if (found) return found.store;
    if (at === dirname(at)) return undefined;
  }
}

/** `dev:ino` of a directory (following a symlink, as the server opens its datastore path). */
function identity(path: string): string | undefined {
  try {
    const stat = statSync(path, { bigint: true });
    return stat.isDirectory() ? `${stat.dev}:${stat.ino}` : undefined;
  } catch {
    return undefined;
  }
}

const ROOT_ID = identity('/');
