import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';

/**
 * commander requires child_process when it loads, for subcommands that are programs of
 * their own, which chunkguard has none of: in the CLI's bundle it gets it on first use,
 * not the ~4 ms of child_process and the streams and net behind it on every start.
 */
const lazyChildProcessForCommander: Plugin = {
  name: 'lazy-child-process-for-commander',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (/[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-builtin' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, key) => process.getBuiltinModule('node:child_process')[key] });",
      loader: 'js',
    }));
  },
};

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
      // The bin: cli-main run from V8's code cache (src/runtime/code-cache.ts).
      cli: 'src/cli/start.ts',
      'cli-main': 'src/cli/main.ts',
      // Run in a child process as the GC user (see src/check/as-user.ts).
      helper: 'src/check/helper.ts',
      // Worker threads of the audit (see src/audit/pool.ts).
      'audit-worker': 'src/audit/worker.ts',
    },
    format: ['cjs'],
    // Inside the bundle, the packages every run loads: no resolving, reading and compiling of their files at each start.
    noExternal: ['commander', 'signal-exit'],
    esbuildPlugins: [lazyChildProcessForCommander],
    // Kept, so that the plugin above sees `node:child_process` before tsup's own plugin marks it external.
    removeNodeProtocol: false,
  },
]);
