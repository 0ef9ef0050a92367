#!/usr/bin/env node
/**
 * `npm run sea`: chunkguard as one executable, for hosts without Node.js.
 * Node's single executable application: the CLI and the audit worker bundled
 * (tsup, CommonJS, every package inside) with koffi's native module as an
 * asset, in a blob that postject injects into a copy of the Node binary of the
 * registry's node-linux-<arch> package (pinned in sea-pins.mjs, downloaded once
 * into a cache and checked). Writes dist/sea/chunkguard (linux-x64) and its
 * chunkguard.sha256; `--arch arm64` builds dist/sea/linux-arm64/chunkguard the
 * same way (run only where it can run); `--out DIR` writes elsewhere.
 * SEA_CODE_CACHE=0 builds without V8's code cache (bench/run.mjs sea compares).
 * Exit 2 with one line on stderr when something is missing or does not match.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { cachedPackage, NODE_PACKAGES, NODE_VERSION } from './sea-pins.mjs';

/** The blob's assets by name; the executable's code gets the names as a build constant. */
const ASSETS = { native: 'koffi.node', worker: 'audit-worker.cjs' };
/** postject's marker for Node's single executable applications (Node's documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

class BuildError extends Error {}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const option = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);

function log(message) {
  console.error(`sea: ${message}`);
}

function digest(algorithm, file, encoding) {
  return createHash(algorithm).update(readFileSync(file)).digest(encoding);
}

/**
 * An npm package's files in `dir` (its `package` directory): fetched with `npm pack` into a
 * directory of its own beside it, its tarball checked against `integrity`, unpacked, and
 * moved into place whole; kept when it is there already (the caller checks what it uses).
 */
function fetchPackage(name, version, integrity, dir) {
  if (existsSync(join(dir, 'package.json'))) return dir;
  const parent = dirname(dirname(dir));
  mkdirSync(parent, { recursive: true });
  const partial = mkdtempSync(join(parent, '.partial-'));
  try {
    log(`fetching ${name}@${version}`);
    execFileSync('npm', ['pack', '--silent', `${name}@${version}`], { cwd: partial, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = readdirSync(partial).find((file) => file.endsWith('.tgz'));
    const got = `sha512-${digest('sha512', join(partial, tarball), 'base64')}`;
    if (got !== integrity) throw new BuildError(`${name}@${version}: the tarball's integrity is ${got}, ${integrity} expected`);
    execFileSync('tar', ['-xzf', tarball], { cwd: partial });
    rmSync(join(partial, tarball));
    try {
      renameSync(partial, dirname(dir));
    } catch (error) {
      // Another build put it in place meanwhile.
      if (!existsSync(join(dir, 'package.json'))) throw error;
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return dir;
}

/** The Node binary of node-linux-<arch>, checked against its pinned SHA-256 on every build. */
function nodeBinary(arch) {
  const pin = NODE_PACKAGES[arch];
  const node = join(fetchPackage(`node-linux-${arch}`, NODE_VERSION, pin.integrity, cachedPackage(`node-linux-${arch}`, NODE_VERSION)), 'bin', 'node');
  const got = digest('sha256', node, 'hex');
  if (got !== pin.binarySha256) throw new BuildError(`${node}: SHA-256 ${got}, ${pin.binarySha256} expected (remove the cache entry to fetch it again)`);
  return node;
}

/**
 * koffi's native module for linux-<arch>: the installed one (npm ci checked it against the
 * lockfile), else fetched for this build alone (into `work`) and checked against the lockfile.
 */
function koffiNative(arch, work) {
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', 'koffi', 'package.json'), 'utf8'));
  const name = `@koromix/koffi-linux-${arch}`;
  const installed = join(root, 'node_modules', name);
  let dir = installed;
  if (!existsSync(join(installed, 'package.json'))) {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const entry = lock.packages[`node_modules/${name}`];
    if (!entry || entry.version !== version) throw new BuildError(`package-lock.json has no ${name}@${version}: koffi ${version} has no native module for linux-${arch}`);
    dir = fetchPackage(name, version, entry.integrity, join(work, 'koffi', 'package'));
  }
  const file = join(dir, `linux_${arch}`, 'koffi.node');
  if (!existsSync(file)) throw new BuildError(`${file}: missing from ${name}@${version}`);
  return file;
}

/** The CLI and the worker, each one CommonJS file with every package inside (koffi is reached only through runtime/embedded.ts). */
async function bundle(work) {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  await build({
    config: false,
    entry: { 'sea-main': join(root, 'src/sea/main.ts'), 'sea-worker': join(root, 'src/sea/worker.ts') },
    outDir: work,
    format: ['cjs'],
    platform: 'node',
    target: 'node24',
    noExternal: [/.*/],
    define: { CHUNKGUARD_VERSION: JSON.stringify(version), CHUNKGUARD_SEA_ASSETS: JSON.stringify(ASSETS) },
    shims: true,
    splitting: false,
    sourcemap: false,
    clean: false,
    dts: false,
    silent: true,
  });
  return version;
}

/** Strips the symbol tables (~20 MB; the dynamic symbols native modules link to stay); a cross build needs the target's strip. */
function strip(executable, arch) {
  const candidates = arch === process.arch ? ['strip'] : [`${{ arm64: 'aarch64', x64: 'x86_64' }[arch]}-linux-gnu-strip`, 'strip'];
  const refusals = [];
  for (const command of candidates) {
    const result = spawnSync(command, ['--strip-all', executable], { encoding: 'utf8' });
    if (result.status === 0) return true;
    refusals.push(`${command}: ${result.error?.code === 'ENOENT' ? 'not installed' : (result.stderr || `exit ${result.status}`).trim().split('\n')[0]}`);
  }
  log(`not stripped, the symbol tables of the Node binary stay (${refusals.join('; ')})`);
  return false;
}

async function main() {
  const arch = option('--arch') ?? 'x64';
  if (!NODE_PACKAGES[arch]) throw new BuildError(`--arch ${arch}: expected x64 or arm64`);
  const native = arch === process.arch;
  const outDir = option('--out') ?? join(root, 'dist', 'sea', ...(arch === 'x64' ? [] : [`linux-${arch}`]));
  mkdirSync(outDir, { recursive: true });
  // Beside the result, on its filesystem: the executable is renamed into place whole.
  const work = mkdtempSync(join(outDir, '.build-'));
  try {
    const node = nodeBinary(arch);
    // The blob is made by the Node version it goes into; for another architecture, by this machine's build of that version.
    const builder = native ? node : nodeBinary(process.arch);
    const version = await bundle(work);
    // V8's code cache is made by the building Node's V8 for its own architecture: only where the executable will run.
    const codeCache = native && process.env.SEA_CODE_CACHE !== '0';
    const config = {
      main: join(work, 'sea-main.cjs'),
      output: join(work, 'sea.blob'),
      disableExperimentalSEAWarning: true,
      useCodeCache: codeCache,
      // NODE_OPTIONS on the host (a --require, say) must not run code in chunkguard or change its exit codes.
      execArgvExtension: 'none',
      assets: { [ASSETS.native]: koffiNative(arch, work), [ASSETS.worker]: join(work, 'sea-worker.cjs') },
    };
    writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
    execFileSync(builder, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });

    const executable = join(work, 'chunkguard');
    copyFileSync(node, executable);
    chmodSync(executable, 0o755);
    const stripped = strip(executable, arch);
    const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js');
    execFileSync(process.execPath, [postject, executable, 'NODE_SEA_BLOB', config.output, '--sentinel-fuse', SEA_FUSE], { stdio: 'ignore' });
    if (native) {
      const reported = execFileSync(executable, ['--version'], { encoding: 'utf8' }).trim();
      if (reported !== version) throw new BuildError(`the built executable says ${reported}, package.json ${version}`);
    }
    const checksum = join(work, 'chunkguard.sha256');
    writeFileSync(checksum, `${digest('sha256', executable, 'hex')}  chunkguard\n`);
    renameSync(executable, join(outDir, 'chunkguard'));
    renameSync(checksum, join(outDir, 'chunkguard.sha256'));
    const { size } = statSync(join(outDir, 'chunkguard'));
    log(`${join(outDir, 'chunkguard')}: chunkguard ${version}, Node ${NODE_VERSION} linux-${arch}, ${(size / 2 ** 20).toFixed(1)} MiB${stripped ? '' : ' (not stripped)'}, code cache ${codeCache ? 'on' : 'off'}; checksum in chunkguard.sha256`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  log(error.message);
  process.exitCode = 2;
}
