/**
 * The server's scheme on names alone: where an index path sits (or that it
 * sits nowhere), snapshot names parsed as the server's parser does (ranges,
 * then timegm's normalisation), namespace names and lengths, and the marking
 * order.
 */
import { describe, expect, it } from 'vitest';
import { compareMarking, type MarkingKey, namespaceNameProblem, placeOf, schemeChild, snapshotTime, ROOT_NAMESPACE } from '../../src/gc/scheme.js';

const seconds = (iso: string) => Date.parse(iso) / 1000;

describe('placeOf', () => {
  it('places an index of the root namespace and of nested namespaces, up to 7 deep', () => {
    expect(placeOf('vm/100/2026-12-01T10:00:00Z/drive-scsi0.img.fidx')).toEqual({
      snapshot: 'vm/100/2026-12-01T10:00:00Z',
      namespace: [],
      type: 'vm',
      id: '100',
      time: seconds('2026-12-01T10:00:00Z'),
    });
    expect(placeOf('ns/prod/ns/db/ct/my_ct-1.x/2026-01-02T03:04:05Z/root.pxar.didx')).toMatchObject({
      snapshot: 'ns/prod/ns/db/ct/my_ct-1.x/2026-01-02T03:04:05Z',
      namespace: ['prod', 'db'],
      type: 'ct',
      id: 'my_ct-1.x',
    });
    const seven = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const deep = (names: string[]) => `${names.map((name) => `ns/${name}/`).join('')}host/h/2026-01-01T00:00:00Z/x.fidx`;
    expect(placeOf(deep(seven))?.namespace).toEqual(seven);
    expect(placeOf(deep([...seven, 'h']))).toBeUndefined();
  });

  it('a hidden index in a snapshot is the scheme\'s (its listing keeps any name ending .fidx); a name with only a leading dot is no index', () => {
    expect(placeOf('vm/100/2026-12-01T10:00:00Z/.hidden.fidx')?.snapshot).toBe('vm/100/2026-12-01T10:00:00Z');
    expect(placeOf('vm/100/2026-12-01T10:00:00Z/.fidx')).toBeUndefined();
  });

  it.each([
    ['a blob', 'vm/100/2026-12-01T10:00:00Z/index.json.blob'],
    ['no snapshot directory', 'vm/100/notatime/x.fidx'],
    ['a subdirectory of a snapshot', 'vm/100/2026-12-01T10:00:00Z/sub/x.fidx'],
    ['in a group directory', 'vm/100/x.fidx'],
    ['at the root', 'x.fidx'],
    ['an unknown type', 'lxc/100/2026-12-01T10:00:00Z/x.fidx'],
    ['an id starting with a dot', 'vm/.100/2026-12-01T10:00:00Z/x.fidx'],
    ['an id with a space', 'vm/1 00/2026-12-01T10:00:00Z/x.fidx'],
    ['a local time', 'vm/100/2026-12-01T10:00:00+01:00/x.fidx'],
    ['month 13', 'vm/100/2026-13-01T10:00:00Z/x.fidx'],
    ['a bad namespace name', 'ns/bad name/vm/100/2026-12-01T10:00:00Z/x.fidx'],
    ['a namespace without its ns directory', 'prod/vm/100/2026-12-01T10:00:00Z/x.fidx'],
    ['a newline in the file name', 'vm/100/2026-12-01T10:00:00Z/a\nb.fidx'],
  ])('is outside the scheme: %s', (_why, rel) => {
    expect(placeOf(rel)).toBeUndefined();
  });

  it('a path that is not UTF-8 is outside the scheme', () => {
    expect(placeOf(Buffer.from('vm/100/2026-12-01T10:00:00Z/\xff.fidx', 'latin1'))).toBeUndefined();
  });
});

describe('snapshotTime', () => {
  it('reads a valid name as UTC seconds', () => {
    expect(snapshotTime('2026-12-01T10:11:12Z')).toBe(seconds('2026-12-01T10:11:12Z'));
    expect(snapshotTime('1970-01-01T00:00:00Z')).toBe(0);
    expect(snapshotTime('0000-01-01T00:00:00Z')).toBe(-62_167_219_200);
    expect(snapshotTime('9999-12-31T23:59:59Z')).toBe(seconds('9999-12-31T23:59:59Z'));
  });

  it('normalises days and months that are in range but not on the calendar, as timegm does', () => {
    expect(snapshotTime('2024-02-30T00:00:00Z')).toBe(seconds('2024-03-01T00:00:00Z'));
    expect(snapshotTime('2023-02-31T00:00:00Z')).toBe(seconds('2023-03-03T00:00:00Z'));
    expect(snapshotTime('2024-00-10T00:00:00Z')).toBe(seconds('2023-12-10T00:00:00Z'));
    expect(snapshotTime('2024-12-00T00:00:00Z')).toBe(seconds('2024-11-30T00:00:00Z'));
    expect(snapshotTime('2024-12-31T23:59:60Z')).toBe(seconds('2025-01-01T00:00:00Z'));
  });

  it.each(['2024-13-01T00:00:00Z', '2024-01-32T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:60:00Z', '2024-01-01T00:00:61Z', '2024-01-01 00:00:00Z', '2024-1-01T00:00:00Z', '2024-01-01T00:00:00z'])(
    'refuses %s',
    (name) => {
      expect(snapshotTime(name)).toBeUndefined();
    },
  );
});

describe('namespace names', () => {
  it('takes SAFE_ID names and refuses others', () => {
    for (const name of ['a', '_x', '0', 'prod-1.db_2']) expect(namespaceNameProblem([], name)).toBeUndefined();
    for (const name of ['.hidden', '-a', 'a b', 'ä', 'a+b', '']) expect(namespaceNameProblem([], name)).toMatch(/not a namespace name/);
  });

  it('limits the whole name to 255 bytes as the server counts it (the components, the slashes, and one more)', () => {
    expect(namespaceNameProblem([], 'a'.repeat(255))).toBeUndefined();
    expect(namespaceNameProblem([], 'a'.repeat(256))).toMatch(/longer than 255/);
    expect(namespaceNameProblem(['a'.repeat(200)], 'b'.repeat(55))).toBeUndefined();
    expect(namespaceNameProblem(['a'.repeat(200)], 'b'.repeat(56))).toMatch(/longer/);
    expect(namespaceNameProblem(['a'.repeat(100), 'b'.repeat(100)], 'c'.repeat(54))).toBeUndefined();
    expect(namespaceNameProblem(['a'.repeat(100), 'b'.repeat(100)], 'c'.repeat(55))).toMatch(/longer/);
  });

  it('a bad name in ns/ is a refusal (the server\'s listing fails), a bad group id or other name is skipped', () => {
    expect(schemeChild({ kind: 'namespaces', ns: [] }, '.x')).toMatchObject({ kind: 'refused', code: 'BAD_NAMESPACE' });
    expect(schemeChild({ kind: 'namespaces', ns: [] }, Buffer.from([0xff]))).toBeUndefined();
    expect(schemeChild({ kind: 'type', ns: [], type: 'vm' }, '.x')).toBeUndefined();
    expect(schemeChild(ROOT_NAMESPACE, 'stray')).toBeUndefined();
    expect(schemeChild({ kind: 'group', ns: [], type: 'vm', id: '1' }, '2024-13-01T00:00:00Z')).toMatchObject({ kind: 'refused', code: 'BAD_SNAPSHOT_TIME' });
    expect(schemeChild({ kind: 'group', ns: [], type: 'vm', id: '1' }, 'notatime')).toBeUndefined();
    expect(schemeChild({ kind: 'namespace', ns: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] }, 'ns')).toBeUndefined();
  });
});

describe('compareMarking', () => {
  it('namespaces depth first (own groups before child namespaces), groups by type and id, snapshots newest first, files by name', () => {
    const snap = (ns: string[], type: string, id: string, name: string, file: string): MarkingKey => ({ ns, type, id, time: seconds(name), snapshot: name, file });
    const keys: Array<[string, MarkingKey]> = [
      ['b/vm/1 old', snap(['b'], 'vm', '1', '2026-01-01T00:00:00Z', 'x.fidx')],
      ['a.a/ct/1', snap(['a', 'a'], 'ct', '1', '2026-01-01T00:00:00Z', 'x.fidx')],
      ['root/vm/1 new b', snap([], 'vm', '1', '2026-02-01T00:00:00Z', 'b.fidx')],
      ['a/ns file', { ns: ['a', ''] }],
      ['root/ct/9', snap([], 'ct', '9', '2026-01-01T00:00:00Z', 'x.fidx')],
      ['root/vm/1 old', snap([], 'vm', '1', '2026-01-01T00:00:00Z', 'a.fidx')],
      ['root/vm/1 new a', snap([], 'vm', '1', '2026-02-01T00:00:00Z', 'a.fidx')],
      ['root/vm/1 group stop', { ns: [], type: 'vm', id: '1' }],
      ['a/host/h', snap(['a'], 'host', 'h', '2026-01-01T00:00:00Z', 'x.fidx')],
      ['root/vm/10', snap([], 'vm', '10', '2026-03-01T00:00:00Z', 'x.fidx')],
      ['same time, later name first', snap([], 'vm', '2', '2024-03-01T00:00:00Z', 'x.fidx')],
      ['same time, earlier name', { ...snap([], 'vm', '2', '2024-03-01T00:00:00Z', 'x.fidx'), snapshot: '2024-02-30T00:00:00Z' }],
    ];
    expect(keys.sort((a, b) => compareMarking(a[1], b[1])).map(([name]) => name)).toEqual([
      'root/ct/9',
      'root/vm/1 group stop',
      'root/vm/1 new a',
      'root/vm/1 new b',
      'root/vm/1 old',
      'root/vm/10',
      'same time, later name first',
      'same time, earlier name',
      'a/host/h',
      'a/ns file',
      'a.a/ct/1',
      'b/vm/1 old',
    ]);
  });
});
