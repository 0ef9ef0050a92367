/** Parse `NAME`, `UID`, `NAME:GROUP` or `UID:GID` against /etc/passwd and /etc/group. */
import { badInput } from '../errors.js';
import type { Accounts } from './passwd.js';

/** A user as callers give it: `NAME`, `UID`, `NAME:GROUP`, `UID:GID`, or `{ uid, gid }`. */
export type UserInput = string | number | { uid: number; gid?: number };

export interface UserSpec {
  uid: number;
  gid: number;
  name?: string;
}

const MAX_ID = 4294967294;

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_ID ? value : undefined;
}

/**
 * A numeric uid needs no passwd entry (containers often have none, seed 001);
 * its gid defaults to the entry's primary group, else to the same number.
 */
/** A UserInput resolved; an object is taken as given (gid from passwd, else the uid's number). */
export function resolveUser(input: UserInput, accounts: Accounts, option = '--as-user'): UserSpec {
  if (typeof input === 'object') {
    const entry = accounts.userByUid(input.uid);
    return { uid: input.uid, gid: input.gid ?? entry?.gid ?? input.uid, name: entry?.name };
  }
  return parseUserSpec(input, accounts, option);
}

export function parseUserSpec(spec: string | number, accounts: Accounts, option = '--as-user'): UserSpec {
  const text = String(spec).trim();
  const match = /^([^:]+)(?::([^:]+))?$/.exec(text);
  if (!match) throw badInput(`${option} ${text}`, 'expected NAME, UID, NAME:GROUP or UID:GID');
  const [, userPart, groupPart] = match as unknown as [string, string, string | undefined];

  let uid = parseId(userPart);
  let entry = uid === undefined ? accounts.userByName(userPart) : accounts.userByUid(uid);
  if (uid === undefined) {
    if (!entry) throw badInput(`${option} ${text}`, `no user named "${userPart}" in /etc/passwd`);
    uid = entry.uid;
  }

  let gid: number | undefined;
  if (groupPart !== undefined) {
    gid = parseId(groupPart) ?? accounts.groups.find((group) => group.name === groupPart)?.gid;
    if (gid === undefined) throw badInput(`${option} ${text}`, `no group named "${groupPart}" in /etc/group`);
  }
  return { uid, gid: gid ?? entry?.gid ?? uid, name: entry?.name };
}
