import { defineConfig } from 'tsup';

const common = { target: 'node20', platform: 'node', shims: true, splitting: false, sourcemap: false } as const;

// `npm run build` empties dist/ first: the two builds run at once, so neither may clean.
export default defineConfig([
  {
    ...common,
    // The library, for import and require.
    entry: {
      index: 'src/index.ts',
      // The benches' own entries: the set and the walk are internal to the GC preview, not the package's API.
      'gc-digest-set': 'src/gc/digest-set.ts',
      'gc-chunk-walk': 'src/gc/chunk-walk.ts',
    },
    format: ['esm', 'cjs'],
    dts: { entry: { index: 'src/index.ts' } },
  },
  {
    ...common,
    // What Node starts as a program: CommonJS only, which starts faster than a module (docs/design.md, "Start-up").
    entry: {
      cli: 'src/cli/main.ts',
      // Run in a child process as the GC user (see src/check/as-user.ts).
      helper: 'src/check/helper.ts',
      // Worker threads of the audit (see src/audit/pool.ts).
      'audit-worker': 'src/audit/worker.ts',
    },
    format: ['cjs'],
    // Inside the bundle, the packages every run loads: no resolving, reading and compiling of their files at each start.
    noExternal: ['commander', 'signal-exit'],
  },
]);
