/** Facts about the running process, read from /proc (no NSS, no native code). */
import { readFileSync } from 'node:fs';

export const CAP_CHOWN = 0;
export const CAP_DAC_OVERRIDE = 1;
export const CAP_DAC_READ_SEARCH = 2;
export const CAP_FOWNER = 3;

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The effective capability set from /proc/self/status (CapEff). */
export function effectiveCapabilities(): bigint {
  const status = readProc('/proc/self/status') ?? '';
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return match ? BigInt(`0x${match[1]}`) : 0n;
}

export function hasCapability(cap: number, caps = effectiveCapabilities()): boolean {
  return (caps & (1n << BigInt(cap))) !== 0n;
}

export interface IdMapRange {
  inside: number;
  outside: number;
  count: number;
}

export interface UserNamespace {
  uidMap: IdMapRange[];
  gidMap: IdMapRange[];
  /** True for the initial namespace (0 0 4294967295): every uid is itself. */
  identity: boolean;
  /** The uid the kernel shows for an owner not mapped here. */
  overflowUid: number;
  overflowGid: number;
}

function parseIdMap(text: string | undefined): IdMapRange[] {
  if (!text) return [{ inside: 0, outside: 0, count: 4294967295 }];
  return text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter((fields) => fields.length === 3 && fields.every(Number.isFinite))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

function isIdentity(map: IdMapRange[]): boolean {
  return map.length === 1 && map[0]!.inside === 0 && map[0]!.outside === 0 && map[0]!.count === 4294967295;
}

export function userNamespace(): UserNamespace {
  const uidMap = parseIdMap(readProc('/proc/self/uid_map'));
  const gidMap = parseIdMap(readProc('/proc/self/gid_map'));
  return {
    uidMap,
    gidMap,
    identity: isIdentity(uidMap) && isIdentity(gidMap),
    overflowUid: Number(readProc('/proc/sys/kernel/overflowuid')?.trim() ?? 65534),
    overflowGid: Number(readProc('/proc/sys/kernel/overflowgid')?.trim() ?? 65534),
  };
}

/** The id outside (on the host) for an id inside this namespace; undefined when it is not mapped. */
export function hostId(id: number, map: IdMapRange[]): number | undefined {
  const range = map.find((entry) => id >= entry.inside && id - entry.inside < entry.count);
  return range && range.outside + (id - range.inside);
}

/** An owner shown as the overflow uid or gid: its real owner is not mapped here (never in the initial namespace). */
export function isUnmapped(owner: { uid: number; gid: number }, namespace: UserNamespace): boolean {
  return !namespace.identity && (owner.uid === namespace.overflowUid || owner.gid === namespace.overflowGid);
}

export function formatIdMap(map: IdMapRange[]): string {
  return map.map((range) => `${range.inside} ${range.outside} ${range.count}`).join('; ');
}

export interface ProcessIdentity {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  groups: number[];
}

export function processIdentity(): ProcessIdentity {
  return {
    uid: process.getuid!(),
    gid: process.getgid!(),
    euid: process.geteuid!(),
    egid: process.getegid!(),
    groups: process.getgroups!(),
  };
}
