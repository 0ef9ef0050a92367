/** Human output: the verdict line, then each finding with its remedy. */
import { styleText } from 'node:util';
import type { CheckReport } from '../check/report.js';
import type { Finding } from '../findings.js';

type Style = Parameters<typeof styleText>[0];

export function colourer(stream: NodeJS.WriteStream): (style: Style, text: string) => string {
  const enabled = stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
  return (style, text) => (enabled ? styleText(style, text) : text);
}

const SEVERITY_STYLE: Record<Finding['severity'], Style> = { error: 'red', warning: 'yellow', info: 'dim' };

export function formatFindings(findings: readonly Finding[], colour: (style: Style, text: string) => string): string[] {
  const lines: string[] = [];
  for (const finding of findings) {
    lines.push(`  ${colour(SEVERITY_STYLE[finding.severity], `${finding.severity} ${finding.code}`)}: ${finding.message}`);
    if (finding.path) lines.push(`    path: ${JSON.stringify(finding.path).slice(1, -1)}`);
    if (finding.remedy) lines.push(`    fix:  ${finding.remedy}`);
  }
  return lines;
}

export function formatCheck(report: CheckReport, colour: (style: Style, text: string) => string): string {
  const [verdict, ...rest] = report.summary.split(': ');
  const lines = [`${colour(report.ok ? 'green' : 'red', verdict ?? '')}: ${rest.join(': ')}`];
  lines.push(...formatFindings(report.findings, colour));
  const who = report.touchedAs;
  const fs = report.filesystem;
  const details = [
    `touched as uid ${who.uid}${who.name ? ` (${who.name})` : ''} gid ${who.gid} (${who.reason}, ${who.via})`,
    fs ? `${fs.fsType} ${fs.mountOptions.join(',')}` : undefined,
    report.chunkAction ? `chunk ${report.chunkAction}` : undefined,
    report.waits.length ? `waits ${report.waits.join('+')} ms` : 'no waits',
  ].filter(Boolean);
  lines.push(colour('dim', `  ${details.join('; ')}`));
  return `${lines.join('\n')}\n`;
}
