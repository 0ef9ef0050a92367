/**
 * The fix journal: JSON lines, one per ownership change, written before the
 * change is made (write-ahead), so a run killed halfway still has a record
 * of every chown it may have applied. `--undo` reads it back.
 *
 *   {"op":"begin","root":"/srv/store","time":"...","version":1}
 *   {"op":"chown","path":"store/.chunks/ab12/ab12...","rel":".chunks/ab12/ab12...","dev":"8:1","ino":"123","from":"0:34","to":"34:34"}
 *   {"op":"failed","rel":"...","errno":"EPERM"}   (the chown above did not happen)
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { badInput, errnoCode } from '../errors.js';
import { relBytes, relText, type RelPath } from '../audit/rel-path.js';

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

export type JournalRecord =
  | { op: 'begin'; root: string; time: string; version: number; undoOf?: string }
  | ChownRecord
  | { op: 'failed'; rel: string; relBase64?: string; errno: string };

export function relFields(rel: RelPath): { rel: string; relBase64?: string } {
  return typeof rel === 'string' ? { rel } : { rel: relText(rel), relBase64: relBytes(rel).toString('base64') };
}

export function recordRel(record: { rel: string; relBase64?: string }): RelPath {
  return record.relBase64 ? Buffer.from(record.relBase64, 'base64') : record.rel;
}

/** Appends records to a file (created, never overwritten) or to stdout. */
export class JournalWriter {
  private readonly fd: number;
  private readonly ownsFd: boolean;

  constructor(readonly file: string | undefined) {
    if (file === undefined) {
      this.fd = 1;
      this.ownsFd = false;
      return;
    }
    try {
      this.fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      const code = errnoCode(error);
      throw badInput(file, code === 'EEXIST' ? 'journal file exists already (it may be needed for --undo): choose a new name' : `cannot create the journal (${code})`);
    }
    this.ownsFd = true;
  }

  write(record: JournalRecord): void {
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    let written = 0;
    while (written < line.length) written += writeSync(this.fd, line, written);
  }

  close(): void {
    if (!this.ownsFd) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

function isChown(value: Record<string, unknown>): value is ChownRecord & Record<string, unknown> {
  return (
    value.op === 'chown' &&
    typeof value.rel === 'string' &&
    typeof value.dev === 'string' &&
    typeof value.ino === 'string' &&
    /^\d+:\d+$/.test(String(value.from)) &&
    /^\d+:\d+$/.test(String(value.to))
  );
}

/** Every record of a journal, or bad input naming the file and line. */
export function readJournal(file: string): { begin?: Extract<JournalRecord, { op: 'begin' }>; chowns: ChownRecord[]; failed: Set<string> } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(file, `cannot read the journal (${errnoCode(error)})`);
  }
  const chowns: ChownRecord[] = [];
  const failed = new Set<string>();
  let begin: Extract<JournalRecord, { op: 'begin' }> | undefined;
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw badInput(`${file}:${index + 1}`, 'not a JSON line of a chunkguard journal');
    }
    if (value.op === 'begin') begin = value as typeof begin;
    else if (value.op === 'failed' && typeof value.rel === 'string') failed.add(String(value.relBase64 ?? value.rel));
    else if (isChown(value)) {
      const parts = String(value.rel).split('/');
      if (value.rel.startsWith('/') || parts.includes('..')) throw badInput(`${file}:${index + 1}`, `path ${value.rel} leaves the directory`);
      chowns.push(value);
    } else throw badInput(`${file}:${index + 1}`, 'unknown journal record');
  });
  if (!begin) throw badInput(file, 'no "begin" record: not a chunkguard journal');
  return { begin, chowns, failed };
}
