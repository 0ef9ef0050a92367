/**
 * The backup server's namespace / group / snapshot scheme, as pure functions
 * on names (pbs-api-types' regexes, pbs-datastore hierarchy.rs and
 * backup_info.rs, 4.2.3): which directory is what, which names the server's
 * listings skip and which make them fail, and the order in which its GC
 * marks what the scheme holds. No filesystem here: the index walk asks these
 * functions about each name it lists, placeOf about a whole path.
 *
 *   ns/<a>/ns/<b>/…   namespaces, at most 7 deep
 *   <vm|ct|host>/<id> groups, in every namespace
 *   <group>/YYYY-MM-DDTHH:MM:SSZ   snapshots; in them the files
 */
import type { RelPath } from '../fs/rel-path.js';
import { indexKindOf } from './index-file.js';

export const MAX_NAMESPACE_DEPTH = 7;
/** A namespace's name as the server measures it: components and the slashes between them, in bytes. */
const MAX_NAMESPACE_LENGTH = 256;

export type BackupType = 'vm' | 'ct' | 'host';

const BACKUP_TYPES: ReadonlySet<string> = new Set<BackupType>(['vm', 'ct', 'host']);
/** SAFE_ID: a namespace component and a backup id alike. */
const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const SNAPSHOT_NAME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;
/** The files a snapshot listing keeps (Rust's `.` stops at a newline only, so `[^\n]`). */
const SNAPSHOT_FILE = /^([^\n]*\.([fd]idx|blob)|\.protected)$/;

/** The name of each namespace directory: `ns`. */
export const NAMESPACE_DIR = 'ns';

export function isBackupType(name: string): name is BackupType {
  return BACKUP_TYPES.has(name);
}

export function isBackupId(name: string): boolean {
  return SAFE_ID.test(name);
}

/**
 * Why the server refuses `name` as a namespace below `parent` (BackupNamespace::push:
 * the length, then the name), or undefined. A refused name fails the server's
 * namespace listing, and GC with it.
 */
export function namespaceNameProblem(parent: readonly string[], name: string): string | undefined {
  const length = parent.reduce((sum, component) => sum + Buffer.byteLength(component), 0) + Math.max(0, parent.length - 1);
  if (length + Buffer.byteLength(name) + 1 > MAX_NAMESPACE_LENGTH) return `the namespace's name would be longer than ${MAX_NAMESPACE_LENGTH - 1} bytes`;
  if (!SAFE_ID.test(name)) return 'is not a namespace name (letters, digits, _ first, then also . and -)';
  return undefined;
}

/** A snapshot directory's name by its pattern (the server's listing skips any other). */
export function isSnapshotName(name: string): boolean {
  return SNAPSHOT_NAME.test(name);
}

/** Days from 1970-01-01 to the first of a month (proleptic Gregorian, any year). */
function daysToMonth(year: number, month: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5);
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

/**
 * The Unix time of a snapshot name as the server's parser reads it
 * (proxmox-time parse_rfc3339): each field at most its maximum (month 12,
 * day 31, hour 23, minute 59, second 60), then normalised as timegm does, so
 * `2024-02-30` is March 1st and month 00 is December of the year before.
 * Undefined when the name does not match or a field is over its maximum:
 * the server then fails to list the group, and GC stops.
 */
export function snapshotTime(name: string): number | undefined {
  const match = SNAPSHOT_NAME.exec(name);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  if (month > 12 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  const months = year * 12 + month - 1;
  const days = daysToMonth(Math.floor(months / 12), (months % 12) + 1) + day - 1;
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

/** A name a snapshot listing keeps as one of the snapshot's files (indexes, blobs, `.protected`). */
export function isSnapshotFile(name: string): boolean {
  return SNAPSHOT_FILE.test(name);
}

/** What a directory is in the scheme. */
export type SchemeDir =
  | { kind: 'namespace'; ns: readonly string[] }
  /** The `ns` directory of a namespace: its child namespaces. */
  | { kind: 'namespaces'; ns: readonly string[] }
  | { kind: 'type'; ns: readonly string[]; type: BackupType }
  | { kind: 'group'; ns: readonly string[]; type: BackupType; id: string }
  | { kind: 'snapshot'; ns: readonly string[]; type: BackupType; id: string; name: string; time: number };

/** A name that makes the server's listing fail (GC stops), where the scheme expected a namespace or a snapshot. */
export type SchemeRefusal = { kind: 'refused'; code: 'BAD_NAMESPACE' | 'BAD_SNAPSHOT_TIME'; reason: string };

export const ROOT_NAMESPACE: SchemeDir = { kind: 'namespace', ns: [] };

/**
 * What the directory `name` inside `parent` is to the server's listings:
 * a scheme directory, a refusal, or undefined when the listing skips it (the
 * directory is then outside the scheme). Names that are not UTF-8 (Buffers)
 * are skipped by every listing. The caller has checked that it is a
 * directory, not a symlink (every listing keeps only those).
 */
export function schemeChild(parent: SchemeDir, name: RelPath): SchemeDir | SchemeRefusal | undefined {
  if (typeof name !== 'string') return undefined;
  const { ns } = parent;
  switch (parent.kind) {
    case 'namespace':
      // A namespace 7 deep has no child namespaces: its `ns` is never listed.
      if (name === NAMESPACE_DIR) return ns.length < MAX_NAMESPACE_DEPTH ? { kind: 'namespaces', ns } : undefined;
      return isBackupType(name) ? { kind: 'type', ns, type: name } : undefined;
    case 'namespaces': {
      const problem = namespaceNameProblem(ns, name);
      return problem ? { kind: 'refused', code: 'BAD_NAMESPACE', reason: problem } : { kind: 'namespace', ns: [...ns, name] };
    }
    case 'type':
      return isBackupId(name) ? { kind: 'group', ns, type: parent.type, id: name } : undefined;
    case 'group': {
      if (!isSnapshotName(name)) return undefined;
      const time = snapshotTime(name);
      if (time === undefined) return { kind: 'refused', code: 'BAD_SNAPSHOT_TIME', reason: 'is a snapshot name with a field out of range, which the server cannot parse' };
      return { kind: 'snapshot', ns, type: parent.type, id: parent.id, name, time };
    }
    case 'snapshot':
      return undefined;
  }
}

/** An index file in a snapshot (the caller checks it is a regular file: the listing keeps only those). */
export function isSchemeIndex(name: RelPath): boolean {
  return typeof name === 'string' && isSnapshotFile(name) && indexKindOf(name) !== undefined;
}

/** The snapshot directory's path relative to the store root. */
export function snapshotRel(snapshot: Extract<SchemeDir, { kind: 'snapshot' }>): string {
  return [...snapshot.ns.flatMap((name) => [NAMESPACE_DIR, name]), snapshot.type, snapshot.id, snapshot.name].join('/');
}

export interface Place {
  /** The snapshot directory, relative to the store root. */
  snapshot: string;
  namespace: string[];
  type: BackupType;
  id: string;
  /** The snapshot's time (Unix seconds, as the server parses its name). */
  time: number;
}

/**
 * Where an index file (a path relative to the store root) sits in the
 * scheme, by its names alone; undefined when the server's listings would not
 * reach it as a snapshot's index. The walk also needs it to be a regular file.
 */
export function placeOf(rel: RelPath): Place | undefined {
  if (typeof rel !== 'string') return undefined;
  const parts = rel.split('/');
  const file = parts.pop();
  if (file === undefined || !isSchemeIndex(file)) return undefined;
  let dir: SchemeDir = ROOT_NAMESPACE;
  for (const part of parts) {
    const child = schemeChild(dir, part);
    if (!child || child.kind === 'refused') return undefined;
    dir = child;
  }
  if (dir.kind !== 'snapshot') return undefined;
  return { snapshot: snapshotRel(dir), namespace: [...dir.ns], type: dir.type, id: dir.id, time: dir.time };
}

/**
 * Where something sits in GC's marking order: its namespace, and within it
 * (absent fields first) the group, the snapshot and the file.
 */
export interface MarkingKey {
  ns: readonly string[];
  type?: string;
  id?: string;
  /** Snapshot time and name: newest first. */
  time?: number;
  snapshot?: string;
  file?: string;
}

function compareText(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
}

/**
 * GC's marking order (mark_used_chunks): namespaces depth first, each
 * namespace's own groups before its child namespaces; groups by type then id;
 * a group's snapshots newest first (BackupInfo::sort_list, reversed); a
 * snapshot's files by name. The server lists directories in readdir order;
 * here names are sorted, so the order is the same on every filesystem. Two
 * snapshots of the same time (`…02-30…` and `…03-01…`) are in no defined
 * order on the server; here the later name first.
 */
export function compareMarking(a: MarkingKey, b: MarkingKey): number {
  const depth = Math.min(a.ns.length, b.ns.length);
  for (let i = 0; i < depth; i++) {
    const order = compareText(a.ns[i], b.ns[i]);
    if (order !== 0) return order;
  }
  if (a.ns.length !== b.ns.length) return a.ns.length - b.ns.length;
  return (
    compareText(a.type, b.type) ||
    compareText(a.id, b.id) ||
    (a.time === undefined || b.time === undefined ? compareText(a.snapshot, b.snapshot) : b.time - a.time) ||
    compareText(b.snapshot, a.snapshot) ||
    compareText(a.file, b.file)
  );
}
