/** Human output: the verdict line, then each finding with its remedy. */
import { styleText } from 'node:util';
import type { AuditReport } from '../audit/report.js';
import { formatBytes } from '../audit/collect.js';
import { formatWindow } from '../audit/tally.js';
import type { CheckReport } from '../check/report.js';
import type { GcUserChoice } from '../system/gc-user.js';
import type { FixReport } from '../repair/fix.js';
import type { GcPreviewReport } from '../gc/report.js';
import type { EnvironmentReport } from '../system/environment.js';
import { formatIdMap } from '../system/process.js';
import { atimeText } from '../system/mounts.js';
import { type FailOn, type Finding, plural, verdict } from '../findings.js';

type Style = Parameters<typeof styleText>[0];

/** Colours for a terminal (`isatty` of the descriptor written to), none otherwise, nor with NO_COLOR or TERM=dumb. */
export function colourer(terminal: boolean): (style: Style, text: string) => string {
  const enabled = terminal && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
  return (style, text) => (enabled ? styleText(style, text) : text);
}

const SEVERITY_STYLE: Record<Finding['severity'], Style> = { error: 'red', warning: 'yellow', info: 'dim' };

/** Each finding with its path and fix; `inVerdict` is the one whose message the verdict line already says (not repeated). */
export function formatFindings(findings: readonly Finding[], colour: (style: Style, text: string) => string, inVerdict?: Finding): string[] {
  const lines: string[] = [];
  for (const finding of findings) {
    const label = colour(SEVERITY_STYLE[finding.severity], `${finding.severity} ${finding.code}`);
    lines.push(finding === inVerdict ? `  ${label} (above)` : `  ${label}: ${finding.message}`);
    if (finding.path) lines.push(`    path: ${JSON.stringify(finding.path).slice(1, -1)}`);
    if (finding.remedy) lines.push(`    fix:  ${finding.remedy}`);
  }
  return lines;
}

export function formatCheck(report: CheckReport, colour: (style: Style, text: string) => string, failOn?: FailOn): string {
  // A failed verdict names the finding that failed it and its message: the list does not say it twice.
  const inVerdict = verdict(report.findings, failOn).failedBy;
  const lines = [verdictLine(report.summary, report.ok, colour), ...formatFindings(report.findings, colour, inVerdict)];
  const who = report.touchedAs;
  const fs = report.filesystem;
  const details = [
    `touched as uid ${who.uid}${who.name ? ` (${who.name})` : ''} gid ${who.gid} (${who.reason}, ${who.via})`,
    report.measuredAsRoot ? `then as uid ${report.measuredAsRoot.touchedAs.uid} (root, for the filesystem)` : undefined,
    fs ? `${fs.fsType}${fs.known && fs.known.name.toLowerCase() !== fs.fsType ? ` (${fs.known.name})` : ''} ${fs.mountOptions.join(',')} (${atimeText(fs)})` : undefined,
    report.chunkAction ? CHUNK_ACTION[report.chunkAction] : undefined,
    report.waits.length ? `waits ${report.waits.join('+')} ms` : 'no waits',
  ].filter(Boolean);
  lines.push(colour('dim', `  ${details.join('; ')}`));
  lines.push(colour('dim', gcUserLine(report.gcUser)));
  return `${lines.join('\n')}\n`;
}

/** Who GC runs as and why, in every report (docs/design.md). */
function gcUserLine(gc: GcUserChoice): string {
  return `  GC user ${who(gc.uid, gc.gid, gc.user, gc.group)} (${gc.from}: ${gc.reason})`;
}

export type Colour = (style: Style, text: string) => string;

const CHUNK_ACTION: Record<NonNullable<CheckReport['chunkAction']>, string> = {
  inserted: 'chunk inserted',
  replaced: 'chunk replaced',
  touched: 'chunk touched',
  'kept-smaller': 'smaller chunk kept and touched',
  'kept-untouched': 'chunk kept, its touch failed',
};

function verdictLine(summary: string, good: boolean, colour: Colour): string {
  const [verdict, ...rest] = summary.split(': ');
  return `${colour(good ? 'green' : 'red', verdict ?? '')}: ${rest.join(': ')}`;
}

const who = (uid: number, gid: number, user?: string, group?: string): string =>
  `uid ${uid}${user ? ` (${user})` : ''} gid ${gid}${group ? ` (${group})` : ''}`;

export function formatAudit(report: AuditReport, colour: Colour): string {
  const lines = [verdictLine(report.summary, report.ok, colour), ...formatFindings(report.findings, colour)];
  lines.push('  owners:');
  for (const owner of report.owners) {
    const label = who(owner.uid, owner.gid, owner.user, owner.group);
    const dirs = owner.directories ? ` (${plural(owner.directories, 'dir')})` : '';
    lines.push(`    ${owner.expected ? label : colour('yellow', label)}${owner.expected ? ' expected' : ''}: ${plural(owner.entries, 'entry', 'entries')}${dirs}, ${formatBytes(owner.bytes)}, mtime ${formatWindow(owner.mtime.from, owner.mtime.to)}`);
    if (owner.bursts) {
      const shown = (label: string, bursts: { from: string; to: string; count: number }[]): void => {
        for (const burst of bursts.slice(0, 5)) lines.push(`      ${label} ${formatWindow(burst.from, burst.to)}: ${burst.count}`);
        if (bursts.length > 5) lines.push(`      ${label} ... ${plural(bursts.length - 5, 'more burst')} (--json has them)`);
      };
      shown('written (mtime)', owner.bursts.mtime);
      shown('changed (ctime)', owner.bursts.ctime);
    }
    for (const example of owner.examples.slice(0, 3)) lines.push(colour('dim', `      e.g. ${JSON.stringify(example).slice(1, -1)}`));
  }
  const gc = report.gcUser;
  lines.push(colour('dim', `${gcUserLine(gc)}, groups ${gc.groups.join(',')}`));
  lines.push(
    colour('dim', `  expected owner ${report.expectedOwner.uid}:${report.expectedOwner.gid} (${report.expectedOwner.from === 'option' ? '--owner' : 'the GC user'}); ${report.layout}; ${(report.durationMs / 1000).toFixed(1)} s`),
    colour('dim', `  ${concurrencyLine(report.concurrency)}`),
  );
  return `${lines.join('\n')}\n`;
}

/** `up to 256 stats in flight (io_uring, 8 threads): fuse.sshfs is a FUSE filesystem: ...` */
function concurrencyLine(concurrency: AuditReport['concurrency']): string {
  const { statsInFlight, via, workers } = concurrency;
  const threads = workers === 0 ? 'in the main thread' : plural(workers, 'worker thread');
  return `up to ${plural(statsInFlight, 'stat')} in flight (${via}, ${threads}): ${concurrency.reason}`;
}

export function formatFix(report: FixReport, colour: Colour): string {
  const lines = [verdictLine(report.summary, report.ok || (report.dryRun && report.planned > 0), colour), ...formatFindings(report.findings, colour)];
  for (const skipped of report.skippedExamples) lines.push(`  skipped ${JSON.stringify(skipped.path).slice(1, -1)}: ${skipped.reason}`);
  if (report.gcUser) lines.push(colour('dim', gcUserLine(report.gcUser)));
  if (report.journal) {
    const where = report.journal === 'stream' ? 'written to stdout' : report.journal;
    lines.push(colour('dim', `  journal: ${where}${report.changed > 0 ? ' (revert with --undo)' : ', no change recorded'}`));
  }
  return `${lines.join('\n')}\n`;
}

export function formatEnv(report: EnvironmentReport, colour: Colour): string {
  const lines = [verdictLine(report.summary, report.ok, colour), ...formatFindings(report.findings, colour)];
  const id = report.identity;
  lines.push(`  uid ${id.uid} gid ${id.gid} euid ${id.euid} egid ${id.egid}`);
  lines.push(`  groups ${id.groups.map((group) => `${group.gid}${group.name ? ` (${group.name})` : ''}`).join(', ') || '(none)'}`);
  lines.push(`  passwd ${report.passwd ? `${report.passwd.name}:${report.passwd.uid}:${report.passwd.gid}:${report.passwd.home}:${report.passwd.shell}` : '(no entry)'}`);
  lines.push(`  USER=${report.variables.USER ?? '(unset)'} HOME=${report.variables.HOME ?? '(unset)'}`);
  const ns = report.namespace;
  lines.push(`  user namespace ${ns.identity ? 'initial (identity map)' : `uid_map ${formatIdMap(ns.uidMap)}; gid_map ${formatIdMap(ns.gidMap)}; unmapped owners show as ${ns.overflowUid}:${ns.overflowGid}`}`);
  const caps = report.capabilities;
  lines.push(`  capabilities ${caps.effective}: CAP_CHOWN ${caps.CAP_CHOWN ? 'yes' : 'no'}, CAP_DAC_OVERRIDE ${caps.CAP_DAC_OVERRIDE ? 'yes' : 'no'}, CAP_FOWNER ${caps.CAP_FOWNER ? 'yes' : 'no'}`);
  if (report.path) {
    const p = report.path;
    lines.push(`  path ${p.path}: owner ${who(p.owner.uid, p.owner.gid, p.owner.user, p.owner.group)}, mode ${p.mode}`);
    if (report.gcUser) lines.push(gcUserLine(report.gcUser));
    if (p.mount) {
      const kind = p.mount.network ? ', network filesystem' : p.mount.fuse ? ', FUSE' : '';
      lines.push(`  mount ${p.mount.mountPoint} ${p.mount.fsType} from ${p.mount.source}${kind}: ${p.mount.mountOptions.join(',')} (${atimeText(p.mount)})`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A list as human output shows it: the first few, and how many more --json has. */
function shortList(items: readonly string[], shown = 5): string {
  const head = items.slice(0, shown).join(', ');
  return items.length > shown ? `${head} ... ${items.length - shown} more (--json has them all)` : head;
}

const amount = (value: { chunks: number; bytes: number }): string => `${plural(value.chunks, 'chunk')}, ${formatBytes(value.bytes)}`;
const utc = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

export function formatGcPreview(report: GcPreviewReport, colour: Colour, failOn?: FailOn): string {
  const inVerdict = verdict(report.findings, failOn).failedBy;
  const lines = [verdictLine(report.summary, report.ok, colour), ...formatFindings(report.findings, colour, report.abort ? undefined : inVerdict)];
  const { sweep, referenced, indexes, snapshots, atRisk } = report;
  lines.push(
    `  cutoff ${report.cutoffMinutes} min (${report.cutoffFrom}): chunks last touched before ${utc(report.minAtime)} are removed${report.writers.running ? `; backup running${report.writers.oldest ? ` since ${utc(report.writers.oldest.start)}` : ' (start unknown: removal is an upper bound)'}` : ''}`,
    `  ${plural(snapshots.total, 'snapshot')}, ${plural(indexes.files, 'index file')} (${formatBytes(indexes.bytes)}) reference ${amount(referenced)}${referenced.missing ? `; ${referenced.missing} missing` : ''}${referenced.unmarkable ? `; ${referenced.unmarkable} the GC user cannot touch` : ''}`,
    `  sweep: removes ${amount(sweep.removed)}; pending ${amount(sweep.pending)}; keeps ${amount(sweep.inUse)}; ${plural(sweep.bad.chunks, '.bad file')} (${sweep.bad.removed} removed)`,
    `  ${report.atimeCheck?.touchIgnored ? 'older than the cutoff, and the touch is ignored here' : 'kept only by the touch'}: ${amount(atRisk)}${atRisk.snapshots.length ? ` in ${plural(atRisk.snapshots.length, 'snapshot')}: ${shortList(atRisk.snapshots)}` : ''}`,
  );
  if (snapshots.broken.length) lines.push(`  snapshots missing data: ${shortList(snapshots.broken)}`);
  if (referenced.unmarkablePaths.length) lines.push(`  untouchable: ${shortList(referenced.unmarkablePaths)}`);
  if (indexes.outsideScheme.length) lines.push(`  outside the scheme: ${shortList(indexes.outsideScheme)}`);
  if (report.leftovers.files) lines.push(`  leftovers: ${plural(report.leftovers.files, 'temp file')}, ${formatBytes(report.leftovers.bytes)}`);
  if (report.lastGc) lines.push(colour('dim', `  last completed GC: ${utc(report.lastGc.completed)}, removed ${amount(report.lastGc.removed)}`));
  if (report.atimeCheck) lines.push(colour('dim', `  atime check: ${report.atimeCheck.summary}`));
  else lines.push(colour('dim', '  atime check skipped: the preview assumes the touch works'));
  if (report.readBeyondGcUser.length) lines.push(colour('dim', `  read as uid ${process.geteuid?.()} where the GC user cannot: ${shortList(report.readBeyondGcUser)}`));
  lines.push(colour('dim', gcUserLine(report.gcUser)));
  lines.push(colour('dim', `  ${(report.durationMs / 1000).toFixed(1)} s`));
  return `${lines.join('\n')}\n`;
}
