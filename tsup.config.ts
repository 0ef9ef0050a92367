import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/main.ts',
    // Run in a child process as the GC user (see src/check/as-user.ts).
    helper: 'src/check/helper.ts',
    // Worker threads of the audit (see src/audit/pool.ts).
    'audit-worker': 'src/audit/worker.ts',
    // Imported by bench/digest-set.mjs alone, until the GC preview uses it.
    'gc-digest-set': 'src/gc/digest-set.ts',
    // Imported by bench/gc-walk.mjs alone, until the GC preview uses it.
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
