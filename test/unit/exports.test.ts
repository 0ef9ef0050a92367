/** The package's declarations: every type an exported report or option refers to can be imported by name. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AuditOptions, AuditReport, Burst, CheckReport, EnvironmentReport, GcUser, GcUserChoice, MountFacts, MountInfo, OwnerSummary, UserInput, UserNamespace } from '../../src/index.js';

const DECLARATIONS = join(import.meta.dirname, '..', '..', 'dist', 'index.d.ts');

describe('the package exports', () => {
  it('dist/index.d.ts declares nothing it does not export (a report field of an unexported type cannot be named by a caller)', () => {
    expect(existsSync(DECLARATIONS), 'dist/index.d.ts: run npm run build first').toBe(true);
    const text = readFileSync(DECLARATIONS, 'utf8');
    const declared = [...text.matchAll(/^(?:declare )?(?:interface|type|class|const|function) (\w+)/gm)].map(([, name]) => name!);
    const exported = new Set(/^export \{([^}]*)\};$/m.exec(text)![1]!.split(',').map((name) => name.trim().replace(/^type /, '')));
    expect(declared.filter((name) => !exported.has(name))).toEqual([]);
  });

  it('the types reports and options use, by name (checked by tsc --noEmit)', () => {
    expectTypeOf<AuditReport['gcUser']>().toEqualTypeOf<GcUserChoice>();
    expectTypeOf<GcUserChoice>().toMatchTypeOf<GcUser>();
    expectTypeOf<NonNullable<AuditOptions['asUser']>>().toEqualTypeOf<UserInput>();
    expectTypeOf<NonNullable<OwnerSummary['bursts']>['mtime'][number]>().toEqualTypeOf<Burst>();
    expectTypeOf<NonNullable<CheckReport['filesystem']>>().toMatchTypeOf<MountFacts>();
    expectTypeOf<MountInfo>().toMatchTypeOf<MountFacts>();
    expectTypeOf<EnvironmentReport['namespace']>().toEqualTypeOf<UserNamespace>();
  });
});
