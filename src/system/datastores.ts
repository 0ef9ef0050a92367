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
  /** The section's other properties as written (`gc-schedule`, `tuning`, `backend`...), unvalidated. */
  properties: Record<string, string>;
}

export function parseDatastores(text: string, config: string): Datastore[] {
  const sections: { name: string; properties: Record<string, string> }[] = [];
  let current: { name: string; properties: Record<string, string> } | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    const header = /^(\S+):\s*(\S+)\s*$/.exec(line);
    if (header) {
      current = header[1] === 'datastore' ? { name: header[2]!, properties: Object.create(null) as Record<string, string> } : undefined;
      if (current) sections.push(current);
      continue;
    }
    const property = /^\s+(\S+)\s+(\S.*?)\s*$/.exec(line);
    if (current && property && !(property[1]! in current.properties)) current.properties[property[1]!] = property[2]!;
  }
  return sections
    .filter((section) => section.properties.path?.startsWith('/'))
    .map((section) => ({ name: section.name, path: section.properties.path!, config, properties: section.properties }));
}

/** Every datastore the file lists; none when it cannot be read. */
export function listDatastores(config = DATASTORE_CONFIG): Datastore[] {
  try {
    return parseDatastores(readFileSync(config, 'utf8'), config);
  } catch {
    return [];
  }
}

/**
 * The datastore `dir` is, or lies in: `dir` or a directory above it is the same directory
 * (device and inode) as a listed path. A listed path that is `/` (or resolves to it) is
 * ignored: it would make every directory a datastore. Undefined when none, or unreadable.
 */
export function datastoreOf(dir: string, config = DATASTORE_CONFIG): Datastore | undefined {
  const listed = listDatastores(config)
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
