/** The table of docs/filesystems.md between its markers: written by the matrix run, read back to compare. */
import { join } from 'node:path';

export const DOC = join(import.meta.dirname, '..', '..', 'docs', 'filesystems.md');
const BEGIN = '<!-- matrix: written by test/filesystems/matrix.test.ts (CHUNKGUARD_WRITE_DOCS=1); do not edit by hand -->';
const END = '<!-- matrix end -->';

export interface DocRow {
  filesystem: string;
  package: string;
  fsType: string;
  verdict: string;
  primary: string;
  resolution: string;
  notes: string;
}

const COLUMNS: Array<[keyof DocRow, string]> = [
  ['filesystem', 'configuration'],
  ['package', 'package'],
  ['fsType', 'mount type'],
  ['verdict', 'check'],
  ['primary', 'primary finding'],
  ['resolution', 'timestamps'],
  ['notes', 'notes'],
];

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function renderTable(doc: string, rows: DocRow[]): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC}: the matrix markers are missing`);
  const lines = [
    BEGIN,
    `| ${COLUMNS.map(([, title]) => title).join(' | ')} |`,
    `| ${COLUMNS.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${COLUMNS.map(([key]) => (key === 'primary' && row.primary ? `\`${row.primary}\`` : cell(row[key]))).join(' | ')} |`),
  ];
  return `${doc.slice(0, start)}${lines.join('\n')}\n${doc.slice(end)}`;
}

export function tableRows(doc: string): DocRow[] {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC}: the matrix markers are missing`);
  return doc
    .slice(start + BEGIN.length, end)
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| configuration') && !line.startsWith('| ---'))
    .map((line) => {
      const cells = line.slice(2, -2).split(/ (?<!\\)\| /).map((text) => text.replace(/\\\|/g, '|').replace(/^`|`$/g, ''));
      return Object.fromEntries(COLUMNS.map(([key], index) => [key, cells[index] ?? ''])) as unknown as DocRow;
    });
}
