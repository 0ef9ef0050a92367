#!/usr/bin/env node
/**
 * `npm run sea`: chunkguard as one executable, for hosts without Node.js.
 * Node's single executable application: the CLI and the audit worker bundled
 * (tsup, CommonJS, every package inside) with koffi's native module as an
 * asset, in a blob that postject injects into a copy of the Node binary of the
 * registry's node-linux-<arch> package (the version pinned below, downloaded
 * once into a cache). Writes dist/sea/chunkguard (linux-x64) and its
 * chunkguard.sha256; `--arch arm64` builds dist/sea/linux-arm64/chunkguard
 * the same way (run only where it can run); `--out DIR` writes elsewhere.
 *
 * Env: CHUNKGUARD_NODE_CACHE, the download cache (default: /var/cache/chunkguard-node
 * as root, else ~/.cache/chunkguard-node); SEA_CODE_CACHE=0 builds without V8's code
 * cache (docs/benchmarks.md measures both).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

/** The Node inside the executable: the 24 LTS line, pinned so that a build is repeatable. */
const NODE_VERSION = '24.22.3';
/** postject's marker for Node's single executable applications (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const arch = process.argv.includes('--arch') ? process.argv[process.argv.indexOf('--arch') + 1] : 'x64';
if (arch !== 'x64' && arch !== 'arm64') fail(`--arch ${arch}: expected x64 or arm64`);
const native = arch === process.arch;
const cache = process.env.CHUNKGUARD_NODE_CACHE ?? (process.getuid?.() === 0 ? '/var/cache/chunkguard-node' : join(homedir(), '.cache', 'chunkguard-node'));
const outDir = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : join(root, 'dist', 'sea', ...(arch === 'x64' ? [] : [`linux-${arch}`]));
const work = mkdtempSync(join(tmpdir(), 'chunkguard-sea-'));

function fail(message) {
  console.error(`sea: ${message}`);
  process.exit(2);
}

function log(message) {
  console.error(`sea: ${message}`);
}

/** An npm package's files, from the registry once, then from the cache: `npm pack`, unpacked. */
function fetchPackage(spec, name) {
  const dir = join(cache, 'sea', name);
  if (!existsSync(join(dir, 'package', 'package.json'))) {
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    log(`fetching ${spec}`);
    execFileSync('npm', ['pack', '--silent', spec], { cwd: partial, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = readdirSync(partial).find((file) => file.endsWith('.tgz'));
    execFileSync('tar', ['-xzf', tarball], { cwd: partial });
    rmSync(join(partial, tarball));
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  return join(dir, 'package');
}

/** The CLI and the worker, each one CommonJS file with every package but koffi inside. */
async function bundle() {
  await build({
    config: false,
    entry: { 'sea-main': 'src/sea/main.ts', 'sea-worker': 'src/sea/worker.ts' },
    outDir: work,
    format: ['cjs'],
    platform: 'node',
    target: 'node24',
    noExternal: [/.*/],
    external: ['koffi', '@bokuweb/zstd-wasm'],
    define: { CHUNKGUARD_VERSION: JSON.stringify(pkg.version) },
    shims: true,
    splitting: false,
    sourcemap: false,
    clean: false,
    dts: false,
    silent: true,
  });
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

try {
  const nodePackage = fetchPackage(`node-linux-${arch}@${NODE_VERSION}`, `node-linux-${arch}-${NODE_VERSION}`);
  // The blob is made by the same Node version it is injected into; across architectures by this machine's copy of it.
  const builder = native ? join(nodePackage, 'bin', 'node') : join(fetchPackage(`node-linux-${process.arch}@${NODE_VERSION}`, `node-linux-${process.arch}-${NODE_VERSION}`), 'bin', 'node');
  const koffiVersion = JSON.parse(readFileSync(join(root, 'node_modules', 'koffi', 'package.json'), 'utf8')).version;
  const koffiNative = join(fetchPackage(`@koromix/koffi-linux-${arch}@${koffiVersion}`, `koffi-linux-${arch}-${koffiVersion}`), `linux_${arch}`, 'koffi.node');
  if (!existsSync(koffiNative)) fail(`${koffiNative}: koffi ${koffiVersion} has no native module for linux-${arch}`);

  await bundle();
  // V8's code cache is specific to the machine that made it: only for an executable built where it runs.
  const codeCache = native && process.env.SEA_CODE_CACHE !== '0';
  const config = {
    main: join(work, 'sea-main.cjs'),
    output: join(work, 'sea.blob'),
    disableExperimentalSEAWarning: true,
    useCodeCache: codeCache,
    assets: { 'koffi.node': koffiNative, 'audit-worker.cjs': join(work, 'sea-worker.cjs') },
  };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
  execFileSync(builder, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });

  const executable = join(work, 'chunkguard');
  copyFileSync(join(nodePackage, 'bin', 'node'), executable);
  chmodSync(executable, 0o755);
  // The registry's binary keeps its symbol tables: ~20 MB less without them (strip keeps the
  // dynamic symbols koffi links to). A cross build needs the target's strip (binutils-aarch64-linux-gnu).
  const strips = native ? ['strip'] : [`${{ arm64: 'aarch64', x64: 'x86_64' }[arch]}-linux-gnu-strip`, 'strip'];
  let stripped = false;
  const refusals = [];
  for (const strip of strips) {
    const result = spawnSync(strip, ['--strip-all', executable], { encoding: 'utf8' });
    if (result.status === 0) {
      stripped = true;
      break;
    }
    refusals.push(`${strip}: ${result.error?.code === 'ENOENT' ? 'not installed' : (result.stderr || `exit ${result.status}`).trim().split('\n')[0]}`);
  }
  if (!stripped) log(`not stripped, the symbol tables of the Node binary stay (${refusals.join('; ')})`);
  const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
  execFileSync(process.execPath, [postject, executable, 'NODE_SEA_BLOB', config.output, '--sentinel-fuse', SEA_FUSE], { stdio: 'ignore' });
  if (native) {
    const reported = execFileSync(executable, ['--version'], { encoding: 'utf8' }).trim();
    if (reported !== pkg.version) fail(`the built executable says ${reported}, package.json ${pkg.version}`);
  }

  mkdirSync(outDir, { recursive: true });
  const target = join(outDir, 'chunkguard');
  renameSync(executable, target);
  writeFileSync(join(outDir, 'chunkguard.sha256'), `${sha256(target)}  chunkguard\n`);
  const size = readFileSync(target).length;
  log(`${target}: chunkguard ${pkg.version}, Node ${NODE_VERSION} linux-${arch}, ${(size / 2 ** 20).toFixed(1)} MiB${stripped ? '' : ' (not stripped)'}, code cache ${codeCache ? 'on' : 'off'}; checksum in chunkguard.sha256`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
