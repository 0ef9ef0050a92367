/** A JSON-safe record of a Stat: nanosecond times and inode as decimal strings (they exceed 2^53). */
import { formatMode } from '../findings.js';
import type { Stat } from '../fs/stat.js';

export interface StatSnapshot {
  ino: string;
  dev: string;
  size: number;
  uid: number;
  gid: number;
  /** Octal permission bits, e.g. "0644". */
  mode: string;
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
  atime: string;
  mtime: string;
  ctime: string;
}

function iso(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${fraction}Z`;
}

export function snapshot(stat: Stat): StatSnapshot {
  return {
    ino: stat.ino.toString(),
    dev: stat.dev.toString(),
    size: Number(stat.size),
    uid: stat.uid,
    gid: stat.gid,
    mode: formatMode(stat.mode),
    atimeNs: stat.atimeNs.toString(),
    mtimeNs: stat.mtimeNs.toString(),
    ctimeNs: stat.ctimeNs.toString(),
    atime: iso(stat.atimeNs),
    mtime: iso(stat.mtimeNs),
    ctime: iso(stat.ctimeNs),
  };
}
