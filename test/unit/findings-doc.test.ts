/** Every finding code chunkguard can emit is explained in docs/findings.md (codes are stable API). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const codes = [...readFileSync(join(ROOT, 'src', 'findings.ts'), 'utf8').split('export type FindingCode =')[1]!.split(';')[0]!.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]!);
const doc = readFileSync(join(ROOT, 'docs', 'findings.md'), 'utf8');

describe('docs/findings.md', () => {
  it('reads the code list (guards the parse below)', () => {
    expect(codes).toContain('ATIME_NOT_UPDATED');
    expect(codes.length).toBeGreaterThan(20);
  });

  it.each(codes)('explains %s (a heading or an entry of its own)', (code) => {
    expect(doc.includes(`### \`${code}\``) || doc.includes(`- \`${code}\``)).toBe(true);
  });
});
