/**
 * The preview's findings, each made in one place: the abort, referenced data
 * the next GC deletes, referenced data already gone, indexes the server reads
 * outside the scheme or chunkguard could not read, a GC overdue, a backup
 * running (the bound it makes conservative), and temp files no GC removes.
 */
import { formatBytes } from '../audit/collect.js';
import { agree, type Finding, plural } from '../findings.js';
import { scheduleInterval, type LastGc } from './last-gc.js';
import type { Amount, GcAbort } from './report.js';
import type { BackupWriters } from './writers.js';

/** At most this many paths in a message; the JSON report lists them all. */
const SHOWN = 5;

export function listed(items: readonly string[]): string {
  const shown = items.slice(0, SHOWN).join(', ');
  return items.length > SHOWN ? `${shown} and ${items.length - SHOWN} more` : shown;
}

const amountText = (amount: Amount): string => `${plural(amount.chunks, 'chunk')} (${formatBytes(amount.bytes)})`;

/** Where in its run the server's GC meets the cause; the reason names the check or phase itself. */
const STOPS: Record<GcAbort['phase'], string> = {
  start: 'would not start',
  'atime check': 'would stop before it marks anything',
  mark: 'would stop in its mark phase',
  sweep: 'would stop in its sweep phase',
};

export function abortFinding(abort: GcAbort, unmarkable: readonly string[]): Finding {
  return {
    code: 'GC_WOULD_ABORT',
    severity: 'error',
    message: `The next GC ${STOPS[abort.phase]}: ${abort.reason}. ${abort.phase === 'sweep' ? 'Chunks before it are removed; the rest stay' : 'Nothing is removed'}, .gc-status is not written, and the disk keeps filling`,
    path: abort.path,
    ...(abort.remedy ? { remedy: abort.remedy } : {}),
    evidence: { cause: abort.code, phase: abort.phase, ...(unmarkable.length > 0 ? { unmarkable: unmarkable.length, unmarkablePaths: unmarkable.slice(0, 100) } : {}) },
  };
}

export function deleteReferencedFinding(store: string, atRisk: Amount & { snapshots: string[] }, cause: Finding, safetyCheck: boolean): Finding {
  const count = atRisk.snapshots.length;
  const chunks = `${amountText(atRisk)} that backups still reference, last touched before the cutoff`;
  const lost = `${plural(count, 'snapshot')} lose${count === 1 ? 's' : ''} data: ${listed(atRisk.snapshots)}`;
  const ignored = `The filesystem ignores the mark's atime touch (${cause.code})`;
  return {
    code: 'GC_WOULD_DELETE_REFERENCED',
    severity: 'error',
    message: safetyCheck
      ? `${ignored}: only the server's atime safety check, which stops GC here, keeps ${chunks}; a GC without it (tuning gc-atime-safety-check=0, or a server that lacks the check) deletes them, and ${lost}`
      : `${ignored} and the atime safety check is off (tuning gc-atime-safety-check=0): the next GC deletes ${chunks}, and ${lost}`,
    path: store,
    ...(cause.remedy ? { remedy: cause.remedy } : {}),
    evidence: { chunks: atRisk.chunks, bytes: atRisk.bytes, snapshots: atRisk.snapshots.slice(0, 100), touchFinding: cause.code },
  };
}

export function missingFinding(store: string, missing: number, broken: readonly string[], datastore: string | undefined): Finding {
  return {
    code: 'CHUNK_MISSING',
    severity: 'error',
    message: `${plural(missing, 'referenced chunk')} ${agree(missing, 'is', 'are')} missing from .chunks already: ${plural(broken.length, 'snapshot')} cannot be restored whole: ${listed(broken)}. GC only logs a warning for each; the next backup of those guests uploads the chunks again`,
    path: store,
    ...(datastore ? { remedy: `proxmox-backup-manager verify ${datastore}` } : {}),
    evidence: { missing, snapshots: broken.slice(0, 100) },
  };
}

export function outsideSchemeFinding(store: string, outside: readonly string[]): Finding {
  return {
    code: 'INDEX_OUTSIDE_SCHEME',
    severity: 'warning',
    message: `${plural(outside.length, 'index file')} outside the namespace/group/snapshot scheme: GC still marks what ${agree(outside.length, 'it references', 'they reference')} (and warns), but no snapshot list, prune or verify sees ${agree(outside.length, 'it', 'them')}: ${listed(outside)}`,
    path: store,
    evidence: { indexes: outside.slice(0, 100) },
  };
}

/** A store whose own directory name starts with `.`: the server's walk filters its root out as hidden. */
export function hiddenRootFinding(store: string, unread: readonly string[]): Finding {
  return {
    code: 'INDEX_OUTSIDE_SCHEME',
    severity: 'warning',
    message: `The store's directory name starts with ".", so the server's whole-store walk skips it as hidden and reads only the scheme: ${plural(unread.length, 'index file')} outside the scheme ${agree(unread.length, 'is', 'are')} never read, and chunks only ${agree(unread.length, 'it references', 'they reference')} are swept: ${listed(unread)}`,
    path: store,
    evidence: { indexes: unread.slice(0, 100), hiddenRoot: true },
  };
}

export function notReadFinding(store: string, notRead: readonly { rel: string; reason: string }[]): Finding {
  return {
    code: 'INDEX_NOT_READ',
    severity: 'warning',
    message: `chunkguard did not read ${plural(notRead.length, 'index file')} the server's GC reads (${notRead[0]!.rel} ${notRead[0]!.reason}): chunks only ${agree(notRead.length, 'it references', 'they reference')} are counted here as unreferenced`,
    path: store,
    evidence: { indexes: notRead.slice(0, 100) },
  };
}

export function overdueFinding(store: string, last: LastGc | undefined, schedule: string | undefined, now: number): Finding | undefined {
  if (!last || !schedule) return undefined;
  const interval = scheduleInterval(schedule);
  if (interval === undefined) return undefined;
  const age = now - last.completed;
  // Two scheduled runs missed, at least a day: one late or failed run is not yet a pattern.
  if (age <= Math.max(2 * interval, 86_400)) return undefined;
  const days = (age / 86_400).toFixed(1);
  return {
    code: 'GC_OVERDUE',
    severity: 'warning',
    message: `The last GC that completed ended ${days} days ago (.gc-status), though gc-schedule "${schedule}" runs it every ${(interval / 86_400).toFixed(interval < 86_400 ? 2 : 0)} days at most: the runs since have failed or not run, so nothing was freed`,
    path: `${store}/.gc-status`,
    evidence: { completed: last.completed, schedule, intervalSeconds: interval },
  };
}

export function writersFinding(store: string, writers: BackupWriters): Finding | undefined {
  if (!writers.running) return undefined;
  const bound = writers.oldest
    ? `the oldest started at ${new Date(writers.oldest.start * 1000).toISOString()} (${writers.oldest.upid}); GC keeps chunks newer than that`
    : "its start is not in the server's task list here, so the removal counted is an upper bound: the server keeps what is newer than that start";
  return {
    code: 'BACKUP_RUNNING',
    severity: 'info',
    message: `A backup is writing to the store (shared lock on .lock, pid ${writers.pids.join(', ')}): ${bound}`,
    path: `${store}/.lock`,
    evidence: { ...writers },
  };
}

export function leftoversFinding(store: string, leftovers: { files: number; bytes: number }): Finding | undefined {
  if (leftovers.files === 0) return undefined;
  return {
    code: 'TEMP_LEFTOVERS',
    severity: 'info',
    message: `${plural(leftovers.files, 'temp file')} of crashed chunk inserts (<digest>.tmp_XXXXXX, ${formatBytes(leftovers.bytes)}) ${agree(leftovers.files, 'sits', 'sit')} in .chunks: GC never removes ${agree(leftovers.files, 'it', 'them')}`,
    path: `${store}/.chunks`,
    evidence: { ...leftovers },
  };
}
