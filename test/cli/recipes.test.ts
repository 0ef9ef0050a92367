/**
 * docs/recipes.md, run as written. Every command comes from the doc's code blocks at test
 * time (nothing is copied here), is run with the shell, the user and the environment the
 * recipe names, against chunkguard installed from the packed tarball, never the registry.
 * The only substitution is of absolute paths on the target machine (/srv/backup,
 * /var/lib/node_exporter, /repository, the image's directories) by temp directories,
 * each said where it happens.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privileged.js';
import { type PbsStoreRecord, writePbsStore } from '../helpers/pbs-store.js';
import { BACKUP_GID, BACKUP_UID, makeStore, plantZeroChunk, reachableTempDir, zeroChunkPathIn } from '../helpers/store.js';

const ROOT = join(import.meta.dirname, '..', '..');
const RECIPES = readFileSync(join(ROOT, 'docs', 'recipes.md'), 'utf8');
const NODE_DIR = dirname(process.execPath);
/** The GC preview's section, by its heading up to the colon: no other heading starts with it (`systemd` picks the check's section). */
const GC_PREVIEW = 'GC preview:';

/** The fenced blocks of language `lang` in the section whose heading starts with `heading`. */
function recipes(heading: string, lang: string): string[] {
  const start = RECIPES.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`docs/recipes.md has no section "## ${heading}"`);
  if (RECIPES.indexOf(`\n## ${heading}`, start + 1) >= 0) throw new Error(`docs/recipes.md has more than one section whose heading starts with "## ${heading}"`);
  const end = RECIPES.indexOf('\n## ', start + 1);
  const section = RECIPES.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\S*)\n([\s\S]*?)^```$/gm)].filter(([, language]) => language === lang).map(([, , body]) => body!);
}

/** The one fenced block of language `lang` in the section whose heading starts with `heading`. */
function recipe(heading: string, lang: string): string {
  const blocks = recipes(heading, lang);
  if (blocks.length !== 1) throw new Error(`"## ${heading}" has ${blocks.length} \`\`\`${lang} blocks, expected 1`);
  return blocks[0]!;
}

/** A systemd unit file: each section's keys, with every value a key was given, in order. */
function unitFile(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim() || /^[#;]/.test(line)) continue;
    const heading = /^\[(\w+)\]$/.exec(line);
    if (heading) sections[heading[1]!] = section = {};
    else {
      const [, key, value] = /^(\w+)=(.*)$/.exec(line) ?? [];
      if (!key || !section) throw new Error(`not a unit file line: ${line}`);
      (section[key] ??= []).push(value!);
    }
  }
  return sections;
}

/** The one inline command (`...`) of the section whose heading starts with `heading` that starts with `start`. */
function inlineCommand(heading: string, start: string): string {
  const section = RECIPES.slice(RECIPES.indexOf(`\n## ${heading}`)).split('\n## ')[1]!;
  const prose = section.replace(/^```[\s\S]*?^```$/gm, '');
  const commands = [...prose.matchAll(/`([^`]+)`/g)].map(([, code]) => code!).filter((code) => code.startsWith(start));
  if (commands.length !== 1) throw new Error(`"## ${heading}" has ${commands.length} inline commands starting with "${start}", expected 1`);
  return commands[0]!;
}

/** npm and the shells it starts read npm_* variables as configuration: the outer `npm test` must not leak into them. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))), NO_COLOR: '1', ...extra };
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: 120_000 });
  if (result.error) throw result.error;
  return result;
}

/** `promtool check metrics` (Debian package prometheus): exit 0 and silent, or its complaint. */
function promtoolCheckMetrics(text: string): void {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (result.error) throw new Error(`promtool (Debian package prometheus, installed by .ci/run) cannot run: ${result.error.message}`);
  expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: '' });
}

/** Splits stdout made of pretty-printed JSON objects written one after another. */
function jsonObjects(stdout: string): any[] {
  return stdout
    .trim()
    .split(/(?<=^\})\n(?=\{)/m)
    .map((text) => JSON.parse(text));
}

describeAsRoot('docs/recipes.md, run as written', () => {
  let base: string;
  let context: string; // the Docker build context: where `npm pack` put the tarball
  let tarball: string;
  let imageRoot: string; // the image's filesystem
  let prefix: string; // the image's npm global prefix (/usr/local in node images), with chunkguard installed by the Dockerfile
  const mounts: string[] = [];

  beforeAll(() => {
    base = reachableTempDir('chunkguard-recipes-');
    context = join(base, 'context');
    mkdirSync(context);
    execFileSync('npm', ['pack', '--pack-destination', context], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
    const packed = readdirSync(context).filter((name) => /^chunkguard-.*\.tgz$/.test(name));
    expect(packed).toHaveLength(1);
    tarball = join(context, packed[0]!);

    // The Dockerfile, instruction by instruction. The image's root is a temp dir (every
    // absolute path in it is taken below imageRoot) and npm's global prefix, /usr/local in
    // node images, is imageRoot/usr/local. Dependencies come from npm's cache when it has them.
    imageRoot = join(base, 'image');
    prefix = join(imageRoot, 'usr', 'local');
    mkdirSync(prefix, { recursive: true });
    let workdir = imageRoot;
    for (const line of recipe('Kubernetes', 'dockerfile').split('\n').filter((l) => l.trim() && !l.startsWith('#'))) {
      const [, instruction, rest] = /^([A-Z]+)\s+(.*)$/.exec(line) ?? [];
      if (instruction === 'FROM') {
        expect(rest).toMatch(/^node:20-bookworm-slim$/);
      } else if (instruction === 'WORKDIR') {
        expect(isAbsolute(rest!)).toBe(true);
        workdir = join(imageRoot, rest!);
        mkdirSync(workdir, { recursive: true });
      } else if (instruction === 'COPY') {
        const [source, target, ...more] = rest!.split(/\s+/);
        expect(more).toEqual([]);
        const glob = new RegExp(`^${source!.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`);
        const sources = readdirSync(context).filter((name) => glob.test(name));
        expect(sources.length).toBeGreaterThan(0);
        for (const name of sources) copyFileSync(join(context, name), join(workdir, target!, name));
      } else if (instruction === 'RUN') {
        const result = run('sh', ['-c', rest!], { cwd: workdir, env: cleanEnv({ npm_config_prefix: prefix, npm_config_prefer_offline: 'true' }) });
        expect(result.status, result.stderr).toBe(0);
      } else {
        throw new Error(`the test does not know the Dockerfile instruction: ${line}`);
      }
    }
    expect(readdirSync(workdir)).toEqual([]); // the tarball was removed after the install
    const version = execFileSync(join(prefix, 'bin', 'chunkguard'), ['--version'], { encoding: 'utf8' }).trim();
    expect(version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  }, 180_000);

  afterAll(() => {
    for (const mount of mounts.reverse()) spawnSync('umount', [mount]);
    // Never delete through a mount that is still there.
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => base && line.split(' ')[4]?.startsWith(`${base}/`));
    if (base && !mounted) rmSync(base, { recursive: true, force: true });
    if (mounted) throw new Error(`a mount below ${base} is left: not removing it`);
  });

  /** A store with a chunk owned by root, as a job run as root leaves it: FOREIGN_OWNER for the owner of the store. */
  function storeWithRootChunk(root: string, owner = { uid: BACKUP_UID, gid: BACKUP_GID }): { store: string; chunk: string } {
    const store = makeStore(root, owner);
    const chunk = join(dirname(zeroChunkPathIn(store)), 'a'.repeat(64));
    writeFileSync(chunk, 'x', { mode: 0o644 });
    return { store, chunk };
  }

  /** A datastore in the server's format, owned by backup: two snapshots in two namespaces, one chunk nothing references. */
  function pbsStore(name: string): PbsStoreRecord {
    const chunk = (label: string, size = 100) => Buffer.alloc(size, label);
    return writePbsStore(join(base, name), {
      snapshots: [
        { ns: ['prod'], type: 'vm', id: '100', time: '2026-01-01T00:00:00Z', indexes: [{ name: 'drive-scsi0.img.fidx', chunks: [chunk('a'), chunk('b')] }] },
        { ns: ['lab'], type: 'ct', id: '200', time: '2026-01-02T00:00:00Z', indexes: [{ name: 'root.pxar.didx', chunks: [chunk('b'), chunk('c', 300)] }] },
      ],
      unreferenced: [chunk('x', 70)],
      owner: { uid: BACKUP_UID, gid: BACKUP_GID },
    });
  }

  /** The same, with a referenced chunk owned by root, as a job run as root leaves it: the GC user's touch fails and GC stops (GC_WOULD_ABORT). */
  function pbsStoreWithRootChunk(name: string): { store: string; chunk: string } {
    const record = pbsStore(name);
    const [hex] = record.indexes[0]!.digests;
    const chunk = join(record.root, record.chunks.get(hex!)!.rel);
    chownSync(chunk, 0, 0);
    return { store: record.root, chunk };
  }

  /** The `ini` blocks of a section, by the path each starts with (`# /etc/systemd/system/NAME`). */
  function unitsOf(heading: string): Map<string, string> {
    return new Map(recipes(heading, 'ini').map((text) => [/^# \/etc\/systemd\/system\/(\S+)\n/.exec(text)![1]!, text]));
  }

  /** The units for this store, as installed here: /srv/backup and /usr/local/bin (the install prefix of the test), the only paths substituted. */
  function installUnits(units: Map<string, string>, store: string, name: string): Map<string, string> {
    const dir = join(base, `units-${name}`);
    mkdirSync(dir);
    const files = new Map<string, string>();
    for (const [unit, text] of units) {
      const path = join(dir, unit);
      writeFileSync(path, text.replaceAll('/srv/backup', store).replaceAll('/usr/local/bin', join(prefix, 'bin')));
      files.set(unit, path);
    }
    return files;
  }

  /** `systemd-analyze verify`: exit 0 and not a word. */
  function verifyUnits(files: Iterable<string>): void {
    const verify = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    if (verify.error) throw new Error(`systemd-analyze (Debian package systemd, installed by .ci/run) cannot run: ${verify.error.message}`);
    expect({ status: verify.status, output: verify.stdout + verify.stderr }).toEqual({ status: 0, output: '' });
  }

  /**
   * What systemd does with a oneshot service: its ExecStart lines in order, each only when
   * the one before exited 0; any other exit status fails the unit (no SuccessExitStatus).
   * systemd's PATH for services, with node's directory standing in for /usr/local/bin.
   */
  function startService(file: string) {
    const service = unitFile(readFileSync(file, 'utf8')).Service!;
    expect(service.Type).toEqual(['oneshot']);
    expect(service.SuccessExitStatus).toBeUndefined();
    expect(service.User).toBeUndefined(); // root, as the prose says
    const ran: { args: string[]; status: number | null; stdout: string }[] = [];
    for (const line of service.ExecStart!) {
      const [command, ...args] = line.split(' ');
      const result = run(command!, args, { cwd: '/', env: { PATH: `${NODE_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin` } });
      ran.push({ args, status: result.status, stdout: result.stdout });
      if (result.status !== 0) return { failed: true, ran };
    }
    return { failed: false, ran };
  }

  /** When a calendar event next elapses (Unix seconds), as systemd computes it. */
  function nextElapse(event: string): number {
    const calendar = run('systemd-analyze', ['calendar', event], { env: { ...cleanEnv(), TZ: 'UTC' } });
    expect(calendar.status, calendar.stderr).toBe(0);
    const [, date, time] = /Next elapse: \w+ (\S+) (\S+) UTC$/m.exec(calendar.stdout) ?? [];
    return Date.parse(`${date}T${time}Z`) / 1000;
  }

  interface CronJob {
    time: string;
    user: string;
    command: string;
    /** The file's PATH line. */
    path: string;
  }

  /** The one job of a section's /etc/cron.d file (its `sh` block): five time fields, the user, the command (run by /bin/sh). */
  function cronJob(heading: string): CronJob {
    const lines = recipe(heading, 'sh').split('\n').filter((line) => line.trim() && !line.startsWith('#'));
    const variables = Object.fromEntries(lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]));
    const jobs = lines.filter((line) => !/^[A-Z_]+=/.test(line));
    expect(jobs).toHaveLength(1);
    const [, time, user, command] = /^((?:\S+\s+){4}\S+)\s+(\S+)\s+(.+)$/.exec(jobs[0]!) ?? [];
    expect(command).not.toContain('%'); // cron would turn it into a newline
    expect(variables.PATH?.split(':')).toEqual(expect.arrayContaining(['/usr/local/bin', '/usr/bin', '/bin']));
    return { time: time!, user: user!, command: command!, path: variables.PATH! };
  }

  /** What cron does: /bin/sh -c COMMAND as the job's user (initgroups), with cron's environment (HOME from passwd) plus the file's PATH. */
  function asCron(cron: CronJob, command: string) {
    // The install prefix of the test (the image's /usr/local/bin above) and node's directory
    // come first, standing in for /usr/local/bin of the file's PATH.
    const home = readFileSync('/etc/passwd', 'utf8').split('\n').map((line) => line.split(':')).find(([name]) => name === cron.user)?.[5];
    const env = { PATH: `${join(prefix, 'bin')}:${NODE_DIR}:${cron.path}`, HOME: home!, LOGNAME: cron.user, SHELL: '/bin/sh' };
    return run('setpriv', [`--reuid=${cron.user}`, `--regid=${cron.user}`, '--init-groups', 'sh', '-c', command], { cwd: base, env });
  }

  /** The job for this store and textfile directory: /srv/backup and /var/lib/node_exporter, the only paths substituted. */
  function publish(cron: CronJob, store: string, textfiles: string) {
    return asCron(cron, cron.command.replaceAll('/srv/backup', store).replaceAll('/var/lib/node_exporter', textfiles));
  }

  /** A textfile directory `owner` writes to, standing in for /var/lib/node_exporter. */
  function textfileDir(name: string, owner: { uid: number; gid: number }): string {
    const dir = join(base, name);
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, owner.uid, owner.gid);
    return dir;
  }

  describe('CI: an npm script', () => {
    let project: string;
    let packageJson: { scripts: Record<string, string>; devDependencies: Record<string, string> };

    beforeAll(() => {
      const text = recipe('CI', 'json');
      packageJson = JSON.parse(text);
      project = join(base, 'ci-project');
      mkdirSync(project);
      writeFileSync(join(project, 'package.json'), text); // the doc's package.json, byte for byte
      // The doc's file: dependency names where the tarball is kept; put the packed one there.
      const spec = packageJson.devDependencies.chunkguard!;
      expect(spec).toMatch(/^file:(?!\/).*\.tgz$/);
      const target = join(project, spec.slice('file:'.length));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(tarball, target);
      const install = run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project });
      expect(install.status, install.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(project, 'node_modules', 'chunkguard', 'package.json'), 'utf8')).name).toBe('chunkguard');
    }, 180_000);

    const gate = (store: string) => {
      rmSync(join(project, 'audit.json'), { force: true });
      return run('npm', ['run', 'store:gate'], { cwd: project, env: cleanEnv({ STORE_DIR: store }) });
    };

    it('npm run store:gate passes on a clean store owned by backup and keeps audit.json', () => {
      const store = makeStore(join(base, 'ci-clean'));
      const result = gate(store);
      expect(result.status, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('SAFE');
      expect(JSON.parse(readFileSync(join(project, 'audit.json'), 'utf8'))).toMatchObject({ ok: true, command: 'audit', dir: store });
    });

    it('npm run store:gate fails on a store with a root-owned chunk, and audit.json names it', () => {
      const { store, chunk } = storeWithRootChunk(join(base, 'ci-bad'));
      const result = gate(store);
      expect(result.status).not.toBe(0);
      const report = JSON.parse(readFileSync(join(project, 'audit.json'), 'utf8'));
      expect(report).toMatchObject({ ok: false, command: 'audit', dir: store });
      expect(report.findings).toContainEqual(expect.objectContaining({ code: 'FOREIGN_OWNER', severity: 'error', path: chunk }));
    });

    it('npm run store:gate fails, and writes no report, for a store that is not there', () => {
      const result = gate(join(base, 'ci-missing'));
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/ci-missing/);
      expect(existsSync(join(project, 'audit.json'))).toBe(false); // the check stopped the gate before the audit
    });

    it('the offending paths, one `ls` line each: an offending directory is listed itself, not its contents', () => {
      const { store, chunk } = storeWithRootChunk(join(base, 'ci-list'));
      // A prefix directory root made, with a chunk of the right owner inside: the directory offends, the chunk does not.
      const prefixDir = join(store, '.chunks', 'abcd');
      mkdirSync(prefixDir, { mode: 0o755 });
      const inside = join(prefixDir, `abcd${'0'.repeat(60)}`);
      writeFileSync(inside, 'x');
      chownSync(inside, BACKUP_UID, BACKUP_GID);
      const command = inlineCommand('CI', 'chunkguard audit DIR --list');
      const result = run('sh', ['-c', command.replace('DIR', store)], { cwd: base, env: cleanEnv({ PATH: `${join(prefix, 'bin')}:${NODE_DIR}:/usr/bin:/bin` }) });
      expect(result.status, result.stderr).toBe(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines.map((line) => line.split(' ').at(-1)).sort()).toEqual([chunk, prefixDir].sort());
      expect(lines.find((line) => line.endsWith(prefixDir))).toMatch(/^d/);
      expect(result.stdout).not.toContain(inside);
    });

    /**
     * The `ts` snippet of a section as .mts (ESM) and .cts (CommonJS), type-checked with the
     * project's tsc against the declarations chunkguard ships, in the project above (chunkguard
     * installed from the tarball): the compiled .mjs and .cjs.
     */
    function compileSnippet(heading: string, name: string): string[] {
      const snippet = recipe(heading, 'ts');
      expect(snippet).toMatch(/from 'chunkguard'/);
      for (const ext of ['mts', 'cts']) writeFileSync(join(project, `${name}.${ext}`), snippet);
      const tsc = run(
        process.execPath,
        [
          join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          ...['--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext'],
          ...['--typeRoots', join(ROOT, 'node_modules', '@types'), '--types', 'node', '--outDir', 'out', `${name}.mts`, `${name}.cts`],
        ],
        { cwd: project },
      );
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
      return ['mjs', 'cjs'].map((ext) => join(project, 'out', `${name}.${ext}`));
    }

    /**
     * The compiled snippet's export `fn` called as a GC tool would, with the store and the GC
     * user backup, in a node of its own: prints RESOLVED (and the value it resolved to), or
     * REJECTED, the error's code and message with exit 3.
     */
    function callSnippet(file: string, fn: string, store: string) {
      const caller = join(project, 'call-snippet.mjs');
      writeFileSync(
        caller,
        `const [file, fn, store, user] = process.argv.slice(2);
const exported = await import(file);
try {
  const value = await exported[fn](store, user);
  console.log(value === undefined ? 'RESOLVED' : 'RESOLVED ' + JSON.stringify(value));
} catch (error) {
  console.log('REJECTED ' + (error.code ?? '') + ' ' + error.message);
  process.exitCode = 3;
}
`,
      );
      return run(process.execPath, [caller, pathToFileURL(file).href, fn, store, 'backup'], { cwd: project });
    }

    describe('A pre-GC hook in a GC tool', () => {
      let compiled: string[];

      beforeAll(() => {
        compiled = compileSnippet('A pre-GC hook', 'hook');
      }, 60_000);

      const hook = (file: string, store: string) => callSnippet(file, 'beforeGarbageCollection', store);

      it.each(['hook.mjs', 'hook.cjs'])('%s: beforeGarbageCollection resolves on a good store', (name) => {
        const store = makeStore(join(base, `hook-good-${name}`));
        const result = hook(compiled.find((file) => file.endsWith(name))!, store);
        expect(result.stdout.trim(), result.stderr).toBe('RESOLVED');
        expect(result.status).toBe(0);
      });

      it.each(['hook.mjs', 'hook.cjs'])('%s: beforeGarbageCollection rejects with "GC refused" on a store with a root-owned chunk', async (name) => {
        const store = makeStore(join(base, `hook-bad-${name}`));
        await plantZeroChunk(store, { uid: 0, gid: 0 });
        const result = hook(compiled.find((file) => file.endsWith(name))!, store);
        expect(result.stdout.trim()).toMatch(new RegExp(`^REJECTED  GC refused on ${store}: `)) // a plain Error: no code;
        expect(result.stderr).toContain('TOUCH_EPERM_WRONG_OWNER');
        expect(result.stderr).toContain('FOREIGN_OWNER');
        expect(result.status).toBe(3);
      });

      it.each(['hook.mjs', 'hook.cjs'])('%s: beforeGarbageCollection rejects (EBADINPUT) on a store that is not there', (name) => {
        const result = hook(compiled.find((file) => file.endsWith(name))!, join(base, 'hook-missing'));
        expect(result.stdout.trim()).toMatch(/^REJECTED EBADINPUT .*hook-missing/);
        expect(result.status).toBe(3);
      });
    });

    describe('GC preview: the library snippet of a GC tool', () => {
      let compiled: string[];

      beforeAll(() => {
        compiled = compileSnippet(GC_PREVIEW, 'gc-preview');
      }, 60_000);

      const gcWouldBeSafe = (name: string, store: string) => callSnippet(compiled.find((file) => file.endsWith(name))!, 'gcWouldBeSafe', store);

      it.each(['gc-preview.mjs', 'gc-preview.cjs'])('%s: gcWouldBeSafe resolves to true on a good store, saying what GC removes', (name) => {
        const store = pbsStore(`gc-lib-good-${name}`).root;
        const result = gcWouldBeSafe(name, store);
        expect(result.stdout.trim(), result.stderr).toBe('RESOLVED true');
        expect(result.stderr).toBe('would remove 0 chunks (0 bytes)\n'); // everything was written a moment ago: nothing is old enough
        expect(result.status).toBe(0);
      });

      it.each(['gc-preview.mjs', 'gc-preview.cjs'])('%s: gcWouldBeSafe resolves to false on a store with a root-owned referenced chunk, naming the stop and its fix', (name) => {
        const { store, chunk } = pbsStoreWithRootChunk(`gc-lib-bad-${name}`);
        const result = gcWouldBeSafe(name, store);
        expect(result.stdout.trim(), result.stderr).toBe('RESOLVED false');
        expect(result.stderr).toContain(`GC would stop: CHUNK_UNMARKABLE at ${chunk}\n  fix: chunkguard fix ${store} `);
        expect(result.stderr).not.toContain('snapshots that would lose data'); // the touch works here: nothing referenced is lost
        expect(result.status).toBe(0);
      });

      it.each(['gc-preview.mjs', 'gc-preview.cjs'])('%s: gcWouldBeSafe rejects (EBADINPUT) on a store that is not there', (name) => {
        const result = gcWouldBeSafe(name, join(base, 'gc-lib-missing'));
        expect(result.stdout.trim()).toMatch(/^REJECTED EBADINPUT .*gc-lib-missing/);
        expect(result.status).toBe(3);
      });
    });
  });

  describe("Kubernetes: the Job's container command, with its securityContext, env and read-only mount", () => {
    const yaml = () => recipe('Kubernetes', 'yaml');
    let job: { uid: number; gid: number; fsGroup: number; env: Record<string, string>; command: string[]; mountPath: string };

    beforeAll(() => {
      const text = yaml();
      const number = (key: string) => Number(new RegExp(`^\\s+${key}:\\s*(\\d+)`, 'm').exec(text)?.[1]);
      const command = JSON.parse(/^\s+command:\s*(\[.*\])\s*$/m.exec(text)![1]!) as string[];
      // args: one folded block scalar (`- >-`): its lines joined with single spaces.
      const args = /^(\s+)args:\n\1\s+- >-\n((?:\1\s{4,}\S.*\n)+)/m.exec(text);
      expect(args, 'args is one `- >-` block').not.toBeNull();
      const folded = args![2]!.split('\n').filter(Boolean).map((line) => line.trim()).join(' ');
      const env = Object.fromEntries([...text.matchAll(/^\s+- \{ name: (\w+), value: ([^ }]+) \}$/gm)].map(([, name, value]) => [name!, value!]));
      const mount = /^\s+- \{ name: repository, mountPath: (\S+), readOnly: true \}$/m.exec(text);
      expect(mount, 'the volume is mounted read-only').not.toBeNull();
      job = { uid: number('runAsUser'), gid: number('runAsGroup'), fsGroup: number('fsGroup'), env, command: [...command, folded], mountPath: mount![1]! };
      expect(job).toMatchObject({ uid: 1000, gid: 1000, fsGroup: 1000, command: ['sh', '-c', expect.any(String)] });
      expect(job.command.join(' ')).not.toMatch(/\bnpx\b|npm (install|exec)/);
      expect(/^\s+image: (\S+)/m.exec(text)?.[1]).not.toMatch(/^node:/); // the image built from the Dockerfile
    });

    /** The store at a read-only bind mount (mount --bind, then remount,bind,ro) standing in for the Job's mountPath. */
    function readOnlyVolume(store: string): string {
      const mountPoint = join(base, `volume-${mounts.length}`);
      mkdirSync(mountPoint);
      execFileSync('mount', ['--bind', store, mountPoint]);
      mounts.push(mountPoint);
      execFileSync('mount', ['-o', 'remount,bind,ro', mountPoint]);
      return mountPoint;
    }

    /** The container's command with the Job's env and identity: uid, gid and fsGroup as the supplementary group. */
    function runJob(volume: string) {
      const [shell, flag, script] = job.command;
      const substituted = script!.replaceAll(job.mountPath, volume); // the mountPath, the only path substituted
      const env = { PATH: `${join(prefix, 'bin')}:${NODE_DIR}:/usr/bin:/bin`, ...job.env };
      return run('setpriv', [`--reuid=${job.uid}`, `--regid=${job.gid}`, `--groups=${job.fsGroup}`, shell!, flag!, substituted], { cwd: base, env });
    }

    it('a clean volume owned 1000:1000: env reports the read-only mount, the audit passes, the Job exits 0', () => {
      const volume = readOnlyVolume(makeStore(join(base, 'k8s-clean'), { uid: 1000, gid: 1000 }));
      const result = runJob(volume);
      const [env, audit, ...more] = jsonObjects(result.stdout);
      expect(more).toEqual([]);
      expect(env).toMatchObject({ command: 'env', ok: false, identity: { uid: 1000, gid: 1000 }, variables: { USER: 'mover', HOME: '/tmp' } });
      expect(env.findings).toContainEqual(expect.objectContaining({ code: 'READ_ONLY_FS' }));
      expect(audit).toMatchObject({ command: 'audit', ok: true, dir: volume, expectedOwner: { uid: 1000, gid: 1000 } });
      expect(result.status, result.stderr).toBe(0);
    });

    it("a volume with a root-owned file: the audit names it and the Job's status is the audit's 1", () => {
      const volume = readOnlyVolume(storeWithRootChunk(join(base, 'k8s-bad'), { uid: 1000, gid: 1000 }).store);
      const result = runJob(volume);
      const [env, audit, ...more] = jsonObjects(result.stdout);
      expect(more).toEqual([]);
      expect(env).toMatchObject({ command: 'env' });
      expect(audit).toMatchObject({ command: 'audit', ok: false, dir: volume });
      expect(audit.findings).toContainEqual(expect.objectContaining({ code: 'FOREIGN_OWNER', severity: 'error' }));
      expect(result.status, result.stderr).toBe(1);
    });
  });

  describe('systemd: the service and its timer, verified, and the service run as systemd runs it', () => {
    let units: Map<string, string>;

    beforeAll(() => {
      units = unitsOf('systemd');
      expect([...units.keys()]).toEqual(['chunkguard-check.service', 'chunkguard-check.timer']);
    });

    const installed = (store: string, name: string) => installUnits(units, store, name);

    it('systemd-analyze verify accepts both units without a word (chunkguard where the install put it)', () => {
      const files = installed(makeStore(join(base, 'systemd-verify-store')), 'verify');
      verifyUnits(files.values());
      const timer = unitFile(readFileSync(files.get('chunkguard-check.timer')!, 'utf8'));
      // No Unit=: a timer starts the service of its own name.
      expect(timer.Timer).toMatchObject({ OnCalendar: ['*-*-* 01:30:00'], Persistent: ['true'] });
      expect(timer.Timer!.Unit).toBeUndefined();
      expect(timer.Install).toEqual({ WantedBy: ['timers.target'] });
      const calendar = run('systemd-analyze', ['calendar', timer.Timer!.OnCalendar![0]!]);
      expect(calendar.status, calendar.stderr).toBe(0);
    });

    it('a clean store: the check, then the audit, both exit 0: the unit succeeds', () => {
      const store = makeStore(join(base, 'systemd-clean'));
      const { failed, ran } = startService(installed(store, 'clean').get('chunkguard-check.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['check', 0], ['audit', 0]]);
      expect(failed).toBe(false);
    });

    it('a store with a root-owned chunk: the check passes, the audit exits 1 naming it: the unit fails', () => {
      const { store, chunk } = storeWithRootChunk(join(base, 'systemd-bad'));
      const { failed, ran } = startService(installed(store, 'bad').get('chunkguard-check.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['check', 0], ['audit', 1]]);
      expect(ran[1]!.stdout).toContain('FOREIGN_OWNER');
      expect(ran[1]!.stdout).toContain(chunk);
      expect(failed).toBe(true);
    });

    it('a store that is not there: the check exits 2, the audit does not run: the unit fails', () => {
      const { failed, ran } = startService(installed(join(base, 'systemd-missing'), 'missing').get('chunkguard-check.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['check', 2]]);
      expect(failed).toBe(true);
    });
  });

  describe('GC preview: the service and its timer, verified, and the service run as systemd runs it', () => {
    let units: Map<string, string>;

    beforeAll(() => {
      units = unitsOf(GC_PREVIEW);
      expect([...units.keys()]).toEqual(['chunkguard-gc-preview.service', 'chunkguard-gc-preview.timer']);
    });

    const installed = (store: string, name: string) => installUnits(units, store, name);

    it('systemd-analyze verify accepts both units without a word; the timer fires an hour before the GC schedule the prose names', () => {
      const files = installed(pbsStore('gc-systemd-verify').root, 'gc-verify');
      verifyUnits(files.values());
      const timer = unitFile(readFileSync(files.get('chunkguard-gc-preview.timer')!, 'utf8'));
      expect(timer.Timer!.Unit).toBeUndefined(); // the service of its own name
      expect(timer.Install).toEqual({ WantedBy: ['timers.target'] });
      expect(timer.Timer!.Persistent).toEqual(['true']);
      // The prose: the server's gc-schedule is `daily`; the preview runs an hour before it.
      const schedule = inlineCommand(GC_PREVIEW, 'daily');
      // By time of day: between 23:00 and midnight the timer's next run is tomorrow's, the GC's tonight's.
      expect((nextElapse(schedule) - nextElapse(timer.Timer!.OnCalendar![0]!) + 86_400) % 86_400).toBe(3600);
    });

    it('a clean store: gc-preview exits 0 and says SAFE, the next GC completes: the unit succeeds', () => {
      const store = pbsStore('gc-systemd-clean').root;
      const { failed, ran } = startService(installed(store, 'gc-clean').get('chunkguard-gc-preview.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['gc-preview', 0]]);
      expect(ran[0]!.stdout).toMatch(/^SAFE: the next GC completes: /);
      expect(failed).toBe(false);
    });

    it('a store with a root-owned referenced chunk: gc-preview exits 1 with GC_WOULD_ABORT and the chunk in the journal: the unit fails', () => {
      const { store, chunk } = pbsStoreWithRootChunk('gc-systemd-bad');
      const { failed, ran } = startService(installed(store, 'gc-bad').get('chunkguard-gc-preview.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['gc-preview', 1]]);
      expect(ran[0]!.stdout).toContain('GC_WOULD_ABORT');
      expect(ran[0]!.stdout).toContain(chunk);
      expect(failed).toBe(true);
    });

    it('a store that is not there: gc-preview exits 2: the unit fails', () => {
      const { failed, ran } = startService(installed(join(base, 'gc-systemd-missing'), 'gc-missing').get('chunkguard-gc-preview.service')!);
      expect(ran.map(({ args, status }) => [args[0], status])).toEqual([['gc-preview', 2]]);
      expect(failed).toBe(true);
    });
  });

  describe('node_exporter: the cron line as user backup, its textfile and the alert rules', () => {
    let cron: CronJob;

    beforeAll(() => {
      cron = cronJob('node_exporter');
      expect(cron).toMatchObject({ time: '0 * * * *', user: 'backup' });
    });

    /** The textfile directory the backup user writes to. */
    const backupTextfileDir = (name: string) => textfileDir(name, { uid: BACKUP_UID, gid: BACKUP_GID });

    it('a clean store: exit 0, chunkguard.prom published with chunkguard_audit_ok 1, no temp file', () => {
      const store = makeStore(join(base, 'cron-clean'));
      const textfiles = backupTextfileDir('textfiles-clean');
      const result = publish(cron, store, textfiles);
      expect(result.status, result.stderr).toBe(0);
      expect(readdirSync(textfiles)).toEqual(['chunkguard.prom']);
      const published = join(textfiles, 'chunkguard.prom');
      expect(statSync(published).mode & 0o044).toBe(0o044); // node_exporter, another user, reads it
      const text = readFileSync(published, 'utf8');
      expect(text).toContain(`chunkguard_audit_ok{dir="${store}"} 1\n`);
      promtoolCheckMetrics(text);
    });

    it('a store with a root-owned chunk: exit 1, the previous file replaced with chunkguard_audit_ok 0, no temp file', () => {
      const { store } = storeWithRootChunk(join(base, 'cron-bad'));
      const textfiles = backupTextfileDir('textfiles-bad');
      writeFileSync(join(textfiles, 'chunkguard.prom'), 'chunkguard_audit_ok{dir="old"} 1\n');
      const result = publish(cron, store, textfiles);
      expect(result.status, result.stderr).toBe(1);
      expect(readdirSync(textfiles)).toEqual(['chunkguard.prom']);
      const text = readFileSync(join(textfiles, 'chunkguard.prom'), 'utf8');
      expect(text).toContain(`chunkguard_audit_ok{dir="${store}"} 0\n`);
      expect(text).toMatch(new RegExp(`^chunkguard_audit_findings\\{dir="${store}",code="FOREIGN_OWNER",severity="error"\\} 1$`, 'm'));
      promtoolCheckMetrics(text);
    });

    it('a store that is not there: exit 2, one line on stderr, nothing published, no temp file, a previous file untouched', () => {
      const missing = join(base, 'cron-missing');
      const empty = backupTextfileDir('textfiles-missing');
      const result = publish(cron, missing, empty);
      expect(result.status).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(readdirSync(empty)).toEqual([]);

      const kept = backupTextfileDir('textfiles-kept');
      writeFileSync(join(kept, 'chunkguard.prom'), 'previous\n');
      expect(publish(cron, missing, kept).status).toBe(2);
      expect(readdirSync(kept)).toEqual(['chunkguard.prom']);
      expect(readFileSync(join(kept, 'chunkguard.prom'), 'utf8')).toBe('previous\n');
    });

    it('chunkguard check --probe DIR --format prometheus, as backup: chunkguard_check_ok and the clock skew, valid for promtool', () => {
      const dir = join(base, 'probe'); // --probe: a directory that is not a store yet, owned by backup
      mkdirSync(dir);
      chownSync(dir, BACKUP_UID, BACKUP_GID);
      const result = asCron(cron, `chunkguard check --probe ${dir} --format prometheus`);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain(`chunkguard_check_ok{store="${dir}"} 1\n`);
      expect(result.stdout).toMatch(new RegExp(`^chunkguard_check_clock_skew_seconds\\{store="${dir}"\\} -?[\\d.e-]+$`, 'm'));
      promtoolCheckMetrics(result.stdout);
      expect(readdirSync(dir)).toEqual([]);
    });

    it('the alert rules: valid for promtool, and they fire on what the cron line published', () => {
      const rules = join(base, 'chunkguard-rules.yml');
      writeFileSync(rules, recipe('node_exporter', 'yaml'));
      const check = run('promtool', ['check', 'rules', rules]);
      expect(check.status, check.stdout + check.stderr).toBe(0);

      // The series exactly as published for a store with a problem.
      const { store } = storeWithRootChunk(join(base, 'alert-bad'));
      const textfiles = backupTextfileDir('textfiles-alert');
      expect(publish(cron, store, textfiles).status).toBe(1);
      const text = readFileSync(join(textfiles, 'chunkguard.prom'), 'utf8');
      const series = (name: string) => new RegExp(`^(${name}\\{[^}]*\\}) `, 'm').exec(text)![1]!;
      const summary = (alert: string) => {
        const template = new RegExp(`alert: ${alert}\\n[\\s\\S]*?summary: "(.*)"`).exec(readFileSync(rules, 'utf8'))![1]!;
        return template.replaceAll('{{ $labels.dir }}', store);
      };
      // Prometheus rule unit tests (JSON is YAML): the ownership alert fires at once on
      // chunkguard_audit_ok 0; the stale alert fires when the published run (same value,
      // as node_exporter keeps exposing a file that is not replaced) is over 3 h old.
      const unitTests = {
        rule_files: [rules],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: series('chunkguard_audit_ok'), values: '0x300' },
              // published every hour until 1h, then the run fails (exit 2) and the file stays
              { series: series('chunkguard_audit_last_run_timestamp_seconds'), values: '0x59 3600x240' },
            ],
            alert_rule_test: [
              { eval_time: '5m', alertname: 'ChunkStoreOwnership', exp_alerts: [{ exp_labels: { dir: store }, exp_annotations: { summary: summary('ChunkStoreOwnership') } }] },
              { eval_time: '3h', alertname: 'ChunkStoreAuditStale', exp_alerts: [] },
              { eval_time: '4h30m', alertname: 'ChunkStoreAuditStale', exp_alerts: [{ exp_labels: { dir: store }, exp_annotations: { summary: summary('ChunkStoreAuditStale') } }] },
            ],
          },
        ],
      };
      const testFile = join(base, 'chunkguard-rules.test.yml');
      writeFileSync(testFile, JSON.stringify(unitTests, null, 2));
      const test = run('promtool', ['test', 'rules', testFile]);
      expect(test.status, test.stdout + test.stderr).toBe(0);
    });
  });
  describe('GC preview: the cron line as root and its textfile', () => {
    let cron: CronJob;
    /** The gauges the prose says to alert on and to watch. */
    let named: string[];

    beforeAll(() => {
      cron = cronJob(GC_PREVIEW);
      expect(cron).toMatchObject({ time: '0 23 * * *', user: 'root' });
      const section = RECIPES.slice(RECIPES.indexOf(`\n## ${GC_PREVIEW}`)).split('\n## ')[1]!;
      named = [...section.matchAll(/`(chunkguard_gc_preview_\w+)`/g)].map(([, name]) => name!);
      expect(named).toEqual(['chunkguard_gc_preview_would_abort', 'chunkguard_gc_preview_ok', 'chunkguard_gc_preview_removed_bytes']);
    });

    /** The published file, checked by promtool, and its gauges for this store. */
    function published(dir: string, store: string): Record<string, number> {
      expect(readdirSync(dir)).toEqual(['chunkguard-gc.prom']);
      const path = join(dir, 'chunkguard-gc.prom');
      expect(statSync(path).mode & 0o044).toBe(0o044); // node_exporter, another user, reads it
      const text = readFileSync(path, 'utf8');
      promtoolCheckMetrics(text);
      const label = `{store="${store}"}`;
      return Object.fromEntries(named.map((name) => [name, Number(new RegExp(`^${name}${label.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])]));
    }

    it('a clean store: exit 0, chunkguard-gc.prom published with ok 1 and would_abort 0, no temp file', () => {
      const store = pbsStore('gc-cron-clean').root;
      const textfiles = textfileDir('gc-textfiles-clean', { uid: 0, gid: 0 });
      const result = publish(cron, store, textfiles);
      expect(result.status, result.stderr).toBe(0);
      expect(published(textfiles, store)).toEqual({ chunkguard_gc_preview_would_abort: 0, chunkguard_gc_preview_ok: 1, chunkguard_gc_preview_removed_bytes: 0 });
    });

    it('a store with a root-owned referenced chunk: exit 1, the previous file replaced with ok 0 and would_abort 1, no temp file', () => {
      const { store } = pbsStoreWithRootChunk('gc-cron-bad');
      const textfiles = textfileDir('gc-textfiles-bad', { uid: 0, gid: 0 });
      writeFileSync(join(textfiles, 'chunkguard-gc.prom'), 'chunkguard_gc_preview_ok{store="old"} 1\n');
      const result = publish(cron, store, textfiles);
      expect(result.status, result.stderr).toBe(1);
      expect(published(textfiles, store)).toEqual({ chunkguard_gc_preview_would_abort: 1, chunkguard_gc_preview_ok: 0, chunkguard_gc_preview_removed_bytes: 0 });
      expect(readFileSync(join(textfiles, 'chunkguard-gc.prom'), 'utf8')).toMatch(/^chunkguard_gc_preview_findings\{store="[^"]+",code="GC_WOULD_ABORT",severity="error"\} 1$/m);
    });

    it('a store that is not there: exit 2, one line on stderr, the previous file untouched, no temp file', () => {
      const textfiles = textfileDir('gc-textfiles-kept', { uid: 0, gid: 0 });
      writeFileSync(join(textfiles, 'chunkguard-gc.prom'), 'previous\n');
      const result = publish(cron, join(base, 'gc-cron-missing'), textfiles);
      expect(result.status).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(readdirSync(textfiles)).toEqual(['chunkguard-gc.prom']);
      expect(readFileSync(join(textfiles, 'chunkguard-gc.prom'), 'utf8')).toBe('previous\n');
    });
  });
});
