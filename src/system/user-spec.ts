/** Parse `NAME`, `UID`, `NAME:GROUP`, `UID:GID` or `{ uid, gid }` against /etc/passwd and /etc/group. */
import { badOption } from '../errors.js';
import type { Finding } from '../findings.js';
import type { Accounts } from './passwd.js';

/** A user as callers give it: `NAME`, `UID`, `NAME:GROUP`, `UID:GID`, or `{ uid, gid }`. */
export type UserInput = string | number | { uid: number; gid?: number };

export interface UserSpec {
  uid: number;
  gid: number;
  name?: string;
}

/** The input names a gid (`UID:GID`, `NAME:GROUP`, `{ uid, gid }`), rather than leaving it to passwd. */
export function namesGid(input: UserInput): boolean {
  return typeof input === 'object' && input !== null ? input.gid !== undefined : String(input).includes(':');
}

/** 2^32 - 1 is (uid_t)-1, "no change" to chown: never a real id. */
export const MAX_ID = 4294967294;

function parseId(text: string): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= MAX_ID ? value : undefined;
}

/** Strictly numeric `UID:GID` (what journals record), or undefined. */
export function parseIdPair(text: unknown): { uid: number; gid: number } | undefined {
  if (typeof text !== 'string') return undefined;
  const [uid, gid, ...rest] = text.split(':').map(parseId);
  return uid === undefined || gid === undefined || rest.length > 0 ? undefined : { uid, gid };
}

const isId = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ID;

/**
 * A UserInput resolved, or EBADINPUT naming `option` (the library's name:
 * `runAs`, `owner`, `asUser`). A numeric uid needs no passwd entry
 * (containers often have none, seed 001); its gid defaults to the entry's
 * primary group, else to the same number.
 */
export function resolveUser(input: UserInput, accounts: Accounts, option: string): UserSpec {
  if (typeof input === 'object' && input !== null) {
    if (!isId(input.uid)) return badId(option, input, 'uid');
    if (input.gid !== undefined && !isId(input.gid)) return badId(option, input, 'gid');
    const entry = accounts.userByUid(input.uid);
    return { uid: input.uid, gid: input.gid ?? entry?.gid ?? input.uid, name: entry?.name };
  }
  if (typeof input === 'number') {
    if (!isId(input)) return badId(option, input, 'uid');
    return parseUserSpec(String(input), accounts, option);
  }
  if (typeof input !== 'string') throw badOption(option, input, 'expected NAME, UID, NAME:GROUP, UID:GID or { uid, gid }');
  return parseUserSpec(input, accounts, option);
}

function badId(option: string, input: unknown, field: 'uid' | 'gid'): never {
  throw badOption(option, input, `${field} must be a whole number from 0 to ${MAX_ID}`);
}

export function parseUserSpec(spec: string, accounts: Accounts, option = 'user'): UserSpec {
  const text = spec.trim();
  const match = /^([^:]+)(?::([^:]+))?$/.exec(text);
  if (!match) throw badOption(option, text, 'expected NAME, UID, NAME:GROUP or UID:GID');
  const [, userPart, groupPart] = match as unknown as [string, string, string | undefined];

  let uid = parseId(userPart);
  const entry = uid === undefined ? accounts.userByName(userPart) : accounts.userByUid(uid);
  if (uid === undefined) {
    if (!entry) throw badOption(option, text, `no user named "${userPart}" in /etc/passwd`);
    uid = entry.uid;
  }

  let gid: number | undefined;
  if (groupPart !== undefined) {
    gid = parseId(groupPart) ?? accounts.groups.find((group) => group.name === groupPart)?.gid;
    if (gid === undefined) throw badOption(option, text, `no group named "${groupPart}" in /etc/group`);
  }
  return { uid, gid: gid ?? entry?.gid ?? uid, name: entry?.name };
}

/**
 * NO_PASSWD_ENTRY for each uid an option names that has no line in /etc/passwd (a
 * numeric uid needs none, so it was not refused): probably a typo or another host's
 * uid, said before the operator runs a remedy that chowns a whole store to it.
 */
export function uidsWithoutAccount(given: [flag: string, user: UserSpec | undefined][]): Finding[] {
  const named = new Set<number>();
  const findings: Finding[] = [];
  for (const [flag, user] of given) {
    if (!user || user.name !== undefined || named.has(user.uid)) continue;
    named.add(user.uid);
    findings.push({
      code: 'NO_PASSWD_ENTRY',
      severity: 'warning',
      message: `${flag} ${user.uid}: uid ${user.uid} has no account on this host (no entry in /etc/passwd), so it is probably a typo or another host's uid; make sure before a remedy below chowns the store to it`,
      evidence: { option: flag, uid: user.uid, gid: user.gid },
    });
  }
  return findings;
}
