/** The module map in docs/design.md, enforced: a folder of src/ never imports one above it. */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const DOC = join(import.meta.dirname, '..', '..', 'docs', 'design.md');

/** The folders in the order the design's module map lists them, top first. */
function layersFromDoc(): string[] {
  const map = readFileSync(DOC, 'utf8').split('## Module map')[1]!.split('\n## ')[0]!;
  return [...map.matchAll(/^\| `src\/(\w+)\/` \|/gm)].map((match) => match[1]!);
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('layers', () => {
  const layers = layersFromDoc();

  it('the module map names every folder of src/', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
    expect([...layers].sort()).toEqual(folders.sort());
  });

  it('imports only go down the module map', () => {
    const upward: string[] = [];
    for (const file of sources(SRC)) {
      const layer = relative(SRC, file).split('/')[0]!;
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = relative(SRC, normalize(join(dirname(file), spec!))).split('/')[0]!;
        if (layers.includes(target) && layers.indexOf(target) < layers.indexOf(layer)) upward.push(`${relative(SRC, file)} imports ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
