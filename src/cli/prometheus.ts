/**
 * Prometheus text exposition for node_exporter's textfile collector: an
 * alert can fire on a store before GC fails. Write it atomically
 * (a temp name not ending in .prom, renamed on exit 0 or 1), see docs/recipes.md.
 */
import type { AuditReport } from '../audit/report.js';
import type { CheckReport } from '../check/report.js';
import type { Finding } from '../findings.js';
import type { GcPreviewReport } from '../gc/report.js';

type Labels = Record<string, string | number | boolean | undefined>;

function escape(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

class Exposition {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  metric(name: string, help: string, labels: Labels, value: number): this {
    if (!this.declared.has(name)) {
      this.declared.add(name);
      this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    }
    const text = Object.entries(labels)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}="${escape(String(v))}"`)
      .join(',');
    this.lines.push(`${name}{${text}} ${Number.isFinite(value) ? value : 'NaN'}`);
    return this;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** What every `_ok` gauge is: the report's `ok`, the command's exit 0. */
const OK_RULE = 'no error finding (with --fail-on warning, no warning either), as exit 0.';

/** One series per finding code and severity; the value counts entries when the finding says how many. */
function findingSeries(out: Exposition, name: string, base: Labels, findings: readonly Finding[]): void {
  const counts = new Map<string, { code: string; severity: string; value: number }>();
  for (const finding of findings) {
    const key = `${finding.code}|${finding.severity}`;
    const count = typeof finding.evidence?.count === 'number' ? finding.evidence.count : 1;
    const entry = counts.get(key) ?? { code: finding.code, severity: finding.severity, value: 0 };
    entry.value += count;
    counts.set(key, entry);
  }
  for (const entry of counts.values()) {
    out.metric(name, 'Findings of the last run by code and severity (entries affected, where counted).', { ...base, code: entry.code, severity: entry.severity }, entry.value);
  }
}

export function checkMetrics(report: CheckReport, now = Date.now()): string {
  const base = { store: report.store };
  const out = new Exposition()
    .metric('chunkguard_check_ok', `1 when the filesystem under the store honours atime updates for the GC user: ${OK_RULE}`, base, report.ok ? 1 : 0)
    .metric('chunkguard_check_duration_seconds', 'Wall time of the last check.', base, report.durationMs / 1000)
    .metric('chunkguard_check_last_run_timestamp_seconds', 'When the last check finished (Unix time).', base, Math.floor(now / 1000));
  if (report.clock) out.metric('chunkguard_check_clock_skew_seconds', 'Filesystem timestamp minus host clock at the touch (negative: filesystem behind).', base, report.clock.skewMs / 1000);
  findingSeries(out, 'chunkguard_check_findings', base, report.findings);
  return out.toString();
}

export function auditMetrics(report: AuditReport, now = Date.now()): string {
  const base = { dir: report.dir };
  const out = new Exposition()
    .metric('chunkguard_audit_ok', `1 when no entry has an ownership or permission problem for the GC user: ${OK_RULE}`, base, report.ok ? 1 : 0)
    .metric('chunkguard_audit_entries', 'Entries scanned by the last audit.', base, report.scanned.entries)
    .metric('chunkguard_audit_offending_entries', 'Entries with at least one problem.', base, report.offending)
    .metric('chunkguard_audit_duration_seconds', 'Wall time of the last audit.', base, report.durationMs / 1000)
    .metric('chunkguard_audit_last_run_timestamp_seconds', 'When the last audit finished (Unix time).', base, Math.floor(now / 1000));
  findingSeries(out, 'chunkguard_audit_findings', base, report.findings);
  for (const owner of report.owners) {
    const labels = { ...base, uid: owner.uid, gid: owner.gid, user: owner.user, group: owner.group, expected: owner.expected };
    out.metric('chunkguard_audit_owner_entries', 'Entries per owner.', labels, owner.entries);
  }
  for (const owner of report.owners) {
    const labels = { ...base, uid: owner.uid, gid: owner.gid, user: owner.user, group: owner.group, expected: owner.expected };
    out.metric('chunkguard_audit_owner_bytes', 'Bytes of regular files per owner.', labels, owner.bytes);
  }
  return out.toString();
}

export function gcPreviewMetrics(report: GcPreviewReport, now = Date.now()): string {
  const base = { store: report.store };
  const out = new Exposition()
    .metric('chunkguard_gc_preview_ok', `1 when the next GC would complete and lose nothing referenced: ${OK_RULE}`, base, report.ok ? 1 : 0)
    .metric('chunkguard_gc_preview_would_abort', '1 when the next GC would stop before it completes (GC_WOULD_ABORT).', base, report.abort ? 1 : 0)
    .metric('chunkguard_gc_preview_min_atime_seconds', "The cutoff the next GC would use (Unix time): chunks last touched before it are removed.", base, report.minAtime)
    .metric('chunkguard_gc_preview_snapshots', 'Snapshot directories.', base, report.snapshots.total)
    .metric('chunkguard_gc_preview_snapshots_broken', 'Snapshots referencing a missing chunk.', base, report.snapshots.broken.length)
    .metric('chunkguard_gc_preview_index_files', 'Index files the GC reads.', base, report.indexes.files)
    .metric('chunkguard_gc_preview_index_bytes', 'Bytes of those index files.', base, report.indexes.bytes)
    .metric('chunkguard_gc_preview_indexes_outside_scheme', 'Index files outside the namespace/group/snapshot scheme.', base, report.indexes.outsideScheme.length)
    .metric('chunkguard_gc_preview_indexes_unreadable', 'Index files that stop GC or were not read.', base, report.indexes.unreadable.length);
  const chunks = (name: string, help: string, value: { chunks: number; bytes: number }): void => {
    out.metric(`chunkguard_gc_preview_${name}_chunks`, `${help} (distinct chunks).`, base, value.chunks);
    out.metric(`chunkguard_gc_preview_${name}_bytes`, `${help} (bytes, st_size).`, base, value.bytes);
  };
  chunks('referenced', 'Chunks the indexes reference', report.referenced);
  out
    .metric('chunkguard_gc_preview_referenced_missing_chunks', 'Referenced chunks missing from .chunks.', base, report.referenced.missing)
    .metric('chunkguard_gc_preview_referenced_unmarkable_chunks', "Referenced chunks the GC user's touch would fail on.", base, report.referenced.unmarkable);
  chunks('removed', 'Chunks the sweep would remove', report.sweep.removed);
  chunks('pending', 'Chunks kept as pending (newer than min_atime, older than the oldest writer)', report.sweep.pending);
  chunks('in_use', 'Chunks the sweep would keep', report.sweep.inUse);
  chunks('bad', '.bad files', report.sweep.bad);
  chunks('at_risk', 'Referenced chunks older than the cutoff, kept only by the touch', report.atRisk);
  out
    .metric('chunkguard_gc_preview_at_risk_snapshots', 'Snapshots referencing a chunk kept only by the touch.', base, report.atRisk.snapshots.length)
    .metric('chunkguard_gc_preview_cutoff_seconds', 'The atime cutoff the next GC would use.', base, report.cutoffMinutes * 60)
    .metric('chunkguard_gc_preview_leftover_files', 'Temp files of crashed inserts, never swept.', base, report.leftovers.files)
    .metric('chunkguard_gc_preview_leftover_bytes', 'Bytes of those temp files.', base, report.leftovers.bytes)
    .metric('chunkguard_gc_preview_duration_seconds', 'Wall time of the last preview.', base, report.durationMs / 1000)
    .metric('chunkguard_gc_preview_last_run_timestamp_seconds', 'When the last preview finished (Unix time).', base, Math.floor(now / 1000));
  if (report.lastGc) out.metric('chunkguard_gc_preview_last_gc_completed_timestamp_seconds', 'When the last GC that completed ended (.gc-status mtime).', base, report.lastGc.completed);
  findingSeries(out, 'chunkguard_gc_preview_findings', base, report.findings);
  return out.toString();
}
