/**
 * The directory a command is given, checked before anything is written
 * (lstat: a symlink is seen, not followed). Everything below it is reached
 * through open descriptors (dir.ts, dir-tree.ts), never by path.
 */
import { type BigIntStats, lstatSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { badInput, errnoCode } from '../errors.js';
import { Dir } from './dir.js';
import { type EntryKind, FsError } from './errors.js';
import { entryKind } from './stat.js';

/** True when `path` is `dir` or below it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
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
 * The directory a command was given, or bad input. A symlink given as the
 * directory itself is resolved once (`resolvedFrom` says so); nothing inside
 * it is ever followed.
 */
export function resolveDirectory(path: string): { absolute: string; entry: Entry; resolvedFrom?: string } {
  if (typeof path !== 'string' || path === '') throw badInput(String(path), 'no directory given');
  const given = resolve(path);
  const entry = inspectOrBadInput(path, given);
  if (entry.kind === 'missing') throw badInput(path, 'no such directory');
  let absolute = given;
  if (entry.kind === 'symlink') {
    try {
      absolute = realpathSync(given);
    } catch {
      throw badInput(path, 'is a dangling symlink');
    }
  }
  const target = entry.kind === 'symlink' ? inspectOrBadInput(path, absolute) : entry;
  if (target.kind !== 'directory') throw badInput(path, `not a directory (it is a ${target.kind === 'file' ? 'regular file' : target.kind})`);
  return { absolute, entry: target, resolvedFrom: entry.kind === 'symlink' ? given : undefined };
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
