/**
 * User and group entries read straight from /etc/passwd and /etc/group.
 * Never getpwuid()/os.userInfo(): through NSS a lookup can hang or fail for a
 * uid with no entry (seed 001: a uid 1000 container with no passwd line).
 */
import { readFileSync } from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface AccountFiles {
  passwd?: string;
  group?: string;
}

const DEFAULT_FILES = { passwd: '/etc/passwd', group: '/etc/group' };

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch {
    return [];
  }
}

export function readPasswd(path = DEFAULT_FILES.passwd): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of readLines(path)) {
    const fields = line.split(':');
    if (fields.length < 7 || line.startsWith('#')) continue;
    const [name, , uid, gid, , home, shell] = fields as [string, string, string, string, string, string, string];
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue;
    entries.push({ name, uid: Number(uid), gid: Number(gid), home, shell });
  }
  return entries;
}

export function readGroups(path = DEFAULT_FILES.group): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of readLines(path)) {
    const fields = line.split(':');
    if (fields.length < 4 || line.startsWith('#')) continue;
    const [name, , gid, members] = fields as [string, string, string, string];
    if (!/^\d+$/.test(gid)) continue;
    entries.push({ name, gid: Number(gid), members: members ? members.split(',').filter(Boolean) : [] });
  }
  return entries;
}

/** Name lookups for reports, from one read of each file. */
export class Accounts {
  readonly users: PasswdEntry[];
  readonly groups: GroupEntry[];

  constructor(files: AccountFiles = {}) {
    this.users = readPasswd(files.passwd);
    this.groups = readGroups(files.group);
  }

  userByUid(uid: number): PasswdEntry | undefined {
    return this.users.find((entry) => entry.uid === uid);
  }

  userByName(name: string): PasswdEntry | undefined {
    return this.users.find((entry) => entry.name === name);
  }

  groupByGid(gid: number): GroupEntry | undefined {
    return this.groups.find((entry) => entry.gid === gid);
  }

  /** "34 (backup)", or "1000 (no passwd entry)". */
  describeUid(uid: number): string {
    const entry = this.userByUid(uid);
    return entry ? `${uid} (${entry.name})` : `${uid} (no passwd entry)`;
  }

  describeGid(gid: number): string {
    const entry = this.groupByGid(gid);
    return entry ? `${gid} (${entry.name})` : `${gid} (no group entry)`;
  }

  /** Supplementary groups as initgroups(3) would set them: primary gid plus memberships. */
  groupsOf(user: PasswdEntry | undefined, primaryGid: number): number[] {
    const gids = new Set<number>([primaryGid]);
    if (user) {
      for (const group of this.groups) {
        if (group.members.includes(user.name)) gids.add(group.gid);
      }
    }
    return [...gids];
  }
}
