/**
 * The fix journal: JSON lines, one per ownership change, written before the
 * change is made (write-ahead). Written to a file, each batch of records is
 * fdatasync()ed before any of its chowns, so a run killed or a machine
 * crashed halfway still has a record of every chown it may have applied
 * (on a stream the reader decides what is kept). `--undo` reads it back.
 *
 *   {"op":"begin","root":"/srv/store","time":"...","version":1}
 *   {"op":"chown","path":"store/.chunks/ab12/ab12...","rel":".chunks/ab12/ab12...","dev":"8:1","ino":"123","from":"0:34","to":"34:34"}
 *   {"op":"failed","rel":"...","errno":"EPERM"}   (the chown above did not happen)
 *
 * A journal is input like any other: every path it names is checked before
 * it is used (no absolute path, no empty, "." or ".." component, in `rel`
 * and in `relBase64`, which must say the same); `path` is for people only.
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { badInput, errnoCode } from '../errors.js';
import { FsError } from '../fs/errors.js';
import { relBytes, relText, unsafeRel, type RelPath } from '../fs/rel-path.js';
import { parseDev } from '../fs/stat.js';
import { parseIdPair } from '../system/user-spec.js';

export const JOURNAL_VERSION = 1;

export interface ChownRecord {
  op: 'chown';
  path: string;
  rel: string;
  /** The raw name bytes when `rel` is not valid UTF-8. */
  relBase64?: string;
  dev: string;
  ino: string;
  from: string;
  to: string;
}

export type BeginRecord = { op: 'begin'; root: string; time: string; version: number; undoOf?: string };
export type FailedRecord = { op: 'failed'; rel: string; relBase64?: string; errno: string };
export type JournalRecord = BeginRecord | ChownRecord | FailedRecord;

export interface Owner {
  uid: number;
  gid: number;
}

/** A chown record, checked: the path that will be used, the identity, the owners. */
export interface JournalChange {
  rel: RelPath;
  dev: bigint;
  ino: bigint;
  from: Owner;
  to: Owner;
  record: ChownRecord;
}

export function relFields(rel: RelPath): { rel: string; relBase64?: string } {
  return typeof rel === 'string' ? { rel } : { rel: relText(rel), relBase64: relBytes(rel).toString('base64') };
}

/** Where a journal goes: a new file (its path), or a stream the caller owns (the CLI passes its stdout). */
export type JournalTarget = string | NodeJS.WritableStream;

/**
 * Appends records to a file (created, never overwritten) or to a stream. A
 * stream with a descriptor of its own (stdout, a socket) is written through it
 * synchronously, so each record is out before its chown, as in a file; any other
 * stream is handed each record before its chown, and a write error it reports
 * stops the run at the next batch.
 */
export class JournalWriter {
  private readonly fd: number | undefined;
  private readonly stream: NodeJS.WritableStream | undefined;
  private readonly ownsFd: boolean;
  /** The file, or what to call the stream in a message. */
  readonly name: string;
  private streamError: unknown;
  private readonly onStreamError = (error: unknown): void => {
    this.streamError ??= error;
  };
  private closed = false;

  constructor(target: JournalTarget) {
    if (typeof target !== 'string') {
      const fd = (target as { fd?: unknown }).fd;
      this.name = fd === 1 ? 'stdout' : 'the journal stream';
      this.ownsFd = false;
      if (typeof fd === 'number') {
        this.fd = fd;
      } else {
        this.stream = target;
        target.on('error', this.onStreamError);
      }
      return;
    }
    this.name = target;
    try {
      this.fd = openSync(target, 'wx', 0o600);
    } catch (error) {
      const code = errnoCode(error);
      throw badInput(target, code === 'EEXIST' ? 'journal file exists already (it may be needed for --undo): choose a new name' : `cannot create the journal (${code})`);
    }
    this.ownsFd = true;
  }

  write(record: JournalRecord): void {
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    if (this.stream) {
      this.stream.write(line);
      return;
    }
    try {
      for (let written = 0; written < line.length; ) written += writeSync(this.fd!, line, written);
    } catch (error) {
      throw this.failure(error, 'write', 'write');
    }
  }

  /** What was written is on disk (a file), or at least was accepted (a stream, which cannot be synced). */
  sync(): void {
    if (this.streamError !== undefined) throw this.failure(this.streamError, 'write', 'write');
    if (!this.ownsFd) return;
    try {
      fdatasyncSync(this.fd!);
    } catch (error) {
      throw this.failure(error, 'fdatasync', 'sync');
    }
  }

  private failure(error: unknown, syscall: string, verb: string): FsError {
    const code = errnoCode(error);
    return new FsError(code ?? 'EIO', syscall, this.name, { detail: `cannot ${verb} the journal (${code ?? (error as Error)?.message})` });
  }

  /** Close and remove the file this writer created (nothing in it is needed). */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.removeListener('error', this.onStreamError);
    if (!this.ownsFd) return;
    closeSync(this.fd!);
    rmSync(this.name, { force: true });
  }

  close(): void {
    if (this.closed) return;
    try {
      this.sync();
    } finally {
      this.closed = true;
      this.stream?.removeListener('error', this.onStreamError);
      if (this.ownsFd) closeSync(this.fd!);
    }
  }
}

const MAX_INO = 2n ** 64n - 1n;

/** The path a record's change is made at, or why it is refused. '' is the directory itself. */
export function recordRel(value: { rel?: unknown; relBase64?: unknown }): { rel: RelPath } | { refused: string } {
  if (typeof value.rel !== 'string') return { refused: 'no "rel" path' };
  let rel: RelPath = value.rel;
  if (value.relBase64 !== undefined) {
    if (typeof value.relBase64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value.relBase64)) return { refused: '"relBase64" is not base64' };
    rel = Buffer.from(value.relBase64, 'base64');
    if (relText(rel) !== value.rel) return { refused: '"rel" and "relBase64" name different paths' };
  }
  if (rel.length === 0) return { rel };
  // Both forms are checked: the text a person reads and the bytes that are used.
  const why = unsafeRel(value.rel) ?? unsafeRel(rel);
  return why ? { refused: `path ${relText(rel)} leaves the directory (${why})` } : { rel };
}

/** A checked chown record, or why it is refused. */
function readChange(value: Record<string, unknown>): JournalChange | string {
  const rel = recordRel(value);
  if ('refused' in rel) return rel.refused;
  const dev = typeof value.dev === 'string' ? parseDev(value.dev) : undefined;
  if (dev === undefined) return '"dev" is not major:minor';
  if (typeof value.ino !== 'string' || !/^\d{1,20}$/.test(value.ino) || BigInt(value.ino) > MAX_INO) return '"ino" is not an inode number';
  const from = parseIdPair(value.from);
  const to = parseIdPair(value.to);
  if (!from || !to) return '"from" and "to" must be UID:GID';
  return { rel: rel.rel, dev, ino: BigInt(value.ino), from, to, record: value as unknown as ChownRecord };
}

export interface Journal {
  begin: BeginRecord;
  changes: JournalChange[];
  /** Keys (relKey) of the changes whose chown failed. */
  failed: Set<string>;
}

/** One key per path, whichever form it was written in. */
export function relKey(rel: RelPath): string {
  return relBytes(rel).toString('base64');
}

function parseLine(file: string, line: string, index: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw badInput(`${file}:${index + 1}`, 'not a JSON line of a chunkguard journal');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badInput(`${file}:${index + 1}`, 'not a journal record');
  return value as Record<string, unknown>;
}

const BEFORE_BEGIN = 'a record before the "begin" record: not a chunkguard journal';

/** Every record of a journal, checked, or bad input naming the file and line. */
export function readJournal(file: string): Journal {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(file, `cannot read the journal (${errnoCode(error)})`);
  }
  const changes: JournalChange[] = [];
  const failed = new Set<string>();
  let begin: BeginRecord | undefined;
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const value = parseLine(file, line, index);
    const where = `${file}:${index + 1}`;
    if (value.op === 'begin') {
      if (begin || changes.length > 0 || failed.size > 0) throw badInput(where, 'a "begin" record that is not the first record');
      if (typeof value.root !== 'string') throw badInput(where, 'a "begin" record without its root');
      if (value.version !== JOURNAL_VERSION) throw badInput(where, `journal version ${String(value.version)}, this chunkguard reads version ${JOURNAL_VERSION}`);
      begin = value as BeginRecord;
    } else if (value.op === 'failed') {
      const rel = recordRel(value);
      if ('refused' in rel) throw badInput(where, rel.refused);
      if (!begin) throw badInput(where, BEFORE_BEGIN);
      failed.add(relKey(rel.rel));
    } else if (value.op === 'chown') {
      const change = readChange(value);
      if (typeof change === 'string') throw badInput(where, change);
      if (!begin) throw badInput(where, BEFORE_BEGIN);
      changes.push(change);
    } else throw badInput(where, 'unknown journal record');
  });
  if (!begin) throw badInput(file, 'no "begin" record: not a chunkguard journal');
  return { begin, changes, failed };
}
