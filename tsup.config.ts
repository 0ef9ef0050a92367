import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/main.ts',
    // Run in a child process as the GC user (see src/check/as-user.ts).
    helper: 'src/check/helper.ts',
    // Worker threads of the audit (see src/audit/pool.ts).
    'audit-worker': 'src/audit/worker.ts',
    // The benches' own entries: the set and the walk are internal to the GC preview, not the package's API.
    'gc-digest-set': 'src/gc/digest-set.ts',
    'gc-chunk-walk': 'src/gc/chunk-walk.ts',
  },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  target: 'node20',
  platform: 'node',
  shims: true,
  clean: true,
  splitting: false,
  sourcemap: false,
});
