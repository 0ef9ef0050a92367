/** The README's synopses list every option `--help` shows (an operator reads one, runs the other). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('README synopses', () => {
  it.each(['check', 'audit', 'fix', 'env'])('chunkguard %s: every option of --help is in the synopsis', (command) => {
    const { code, stdout } = runCli([command, '--help']);
    expect(code).toBe(0);
    const options = [...stdout.matchAll(/^ {2}(?:(-\w), )?(--[a-z0-9-]+)/gm)].flatMap(([, short, long]) => [short, long]).filter((flag) => flag && flag !== '--help' && flag !== '-h');
    expect(options.length).toBeGreaterThan(0);
    const synopses = readme.split('\n').filter((line) => line.startsWith(`chunkguard ${command} `)).join('\n');
    expect(synopses).not.toBe('');
    const missing = options.filter((flag) => !new RegExp(`(^|[\\s\\[|])${flag!.replace(/-/g, '\\-')}(?![a-z-])`, 'm').test(synopses));
    expect(missing).toEqual([]);
  });
});
