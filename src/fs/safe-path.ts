/**
 * The directory a command is given, checked before anything is written
 * (lstat: a symlink is seen, not followed). Everything below it is reached
 * through open descriptors (dir.ts, dir-tree.ts), never by path.
 */
import { type BigIntStats, lstatSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { badInput, errnoCode } from '../errors.js';
import { Dir } from './dir.js';
import { type EntryKind, FsError } from './errors.js';
import { entryKind } from './stat.js';

/** True when `path` is `dir` or below it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/** `path` and every directory above it, from `/` down (an absolute, normalised path). */
export function pathsFromRoot(path: string): string[] {
  const chain: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    chain.unshift(dir);
    if (dir === dirname(dir)) return chain;
  }
}

export interface Entry {
  path: string;
  kind: EntryKind;
  stat?: BigIntStats;
}

export function inspect(path: string): Entry {
  let stat: BigIntStats;
  try {
    stat = lstatSync(path, { bigint: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { path, kind: 'missing' };
    throw error;
  }
  return { path, kind: entryKind({ mode: Number(stat.mode) }), stat };
}

/** inspect(), with a parent this user cannot search reported as bad input, not a raw EACCES. */
export function inspectOrBadInput(given: string, path: string): Entry {
  try {
    return inspect(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'EACCES') throw badInput(given, `cannot stat it (${code ?? (error as Error).message})`);
    // The given path itself, or something inside it (its .chunks).
    throw badInput(given, path === resolve(given) ? 'cannot reach it (permission denied on a parent directory)' : `cannot look inside it as uid ${process.geteuid?.()} (permission denied): run chunkguard as root, or as a user that can read it`);
  }
}

/**
 * A path a command was given, or bad input (`missing` says how a missing one
 * is reported). A symlink given as the path itself is resolved once
 * (`resolvedFrom` says so); a dangling one is bad input.
 */
export function resolveGiven(path: string, missing: string): { absolute: string; entry: Entry; resolvedFrom?: string } {
  const given = resolve(path);
  const entry = inspectOrBadInput(path, given);
  if (entry.kind === 'missing') throw badInput(path, missing);
  if (entry.kind !== 'symlink') return { absolute: given, entry };
  let absolute: string;
  try {
    absolute = realpathSync(given);
  } catch {
    throw badInput(path, 'is a dangling symlink');
  }
  return { absolute, entry: inspectOrBadInput(path, absolute), resolvedFrom: given };
}

/**
 * The directory a command was given, or bad input. A symlink given as the
 * directory itself is resolved once (`resolvedFrom` says so); nothing inside
 * it is ever followed.
 */
export function resolveDirectory(path: string): { absolute: string; entry: Entry; resolvedFrom?: string } {
  if (typeof path !== 'string' || path === '') throw badInput(String(path), 'no directory given');
  const resolved = resolveGiven(path, 'no such directory');
  const { kind } = resolved.entry;
  if (kind !== 'directory') throw badInput(path, `not a directory (it is a ${kind === 'file' ? 'regular file' : kind})`);
  return resolved;
}

/** The directory a command was given, opened without following it; a filesystem failure is bad input naming `given`. */
export function openDirOrBadInput(given: string, absolute: string): Dir {
  try {
    return Dir.open(absolute);
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    throw badInput(given, `cannot open (${error.code === 'EACCES' ? 'permission denied' : error.code})`);
  }
}
