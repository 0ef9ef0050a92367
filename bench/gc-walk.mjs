#!/usr/bin/env node
/**
 * The GC preview's walk of `.chunks` (walkChunks: the audit's scanner with chunk
 * records, every record read in the main thread) against GNU find listing every
 * entry with atime, owner and size (`find .chunks -printf '%A@ %U %s\n'`) and
 * against `chunkguard audit` of the same store, in the same run: the 1,000,000-chunk
 * store of bench/make-store.mjs (65,536 prefix directories, generated once and
 * cached), warm cache, each a whole process (Node's start-up included, as the CLI
 * pays it), alternating, median of BENCH_RUNS (default 5) after one discarded run,
 * with peak RSS from GNU time. Output goes to /dev/null for all three.
 * The preview's targets (issue 22): <= 0.80 x find and <= 1.25 x audit with the
 * index reading on top, so the walk alone should be near the audit.
 * Usage: node bench/gc-walk.mjs   (run `npm run build` first; root, for the store's owner)
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_GID, BENCH_UID, DEFAULT_FILES, makeStore } from './make-store.mjs';

const here = fileURLToPath(import.meta.url);
const root = join(dirname(here), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** The walk as the preview will run it: every record's fields read, sizes summed, kinds and owners counted. */
async function walkOnly(store) {
  const { walkChunks } = await import(join(root, 'dist', 'gc-chunk-walk.js'));
  const counts = { chunk: 0, bad: 0, using: 0, temp: 0 };
  let bytes = 0;
  let oldest = Infinity;
  let foreign = 0;
  let prefixDirs = 0;
  const totals = await walkChunks(store, {
    expected: { uid: BENCH_UID, gid: BENCH_GID },
    gcUser: { uid: BENCH_UID, gid: BENCH_GID, groups: [BENCH_GID] },
    namespace: { identity: true, overflowUid: 65534, overflowGid: 65534 },
    onChunk: (view) => {
      counts[view.kind]++;
      bytes += view.size;
      if (view.atime < oldest) oldest = view.atime;
      if (view.uid !== BENCH_UID || (view.mode & 0o170000) !== 0o100000) foreign++;
    },
    onPrefixDir: () => prefixDirs++,
  });
  process.stdout.write(`${JSON.stringify({ counts, bytes, oldest, foreign, prefixDirs, entries: totals.entries, via: totals.concurrency.via, workers: totals.concurrency.workers })}\n`);
}

/** Wall ms and peak RSS (KiB) of a command, stdout to /dev/null (or captured, for the checks). */
function timed(command, args, capture = false) {
  const devNull = openSync('/dev/null', 'w');
  try {
    const result = spawnSync('/usr/bin/time', ['-f', '%e %M', command, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', capture ? 'pipe' : devNull, 'pipe'] });
    const [wall, rss] = result.stderr.trim().split('\n').pop().split(' ').map(Number);
    return { ms: wall * 1000, rssKiB: rss, status: result.status, stdout: result.stdout ?? '' };
  } finally {
    closeSync(devNull);
  }
}

async function main() {
  // As bench/run.mjs: these machines set NODE_EXTRA_CA_CERTS (~70 ms a Node start); users' do not.
  delete process.env.NODE_EXTRA_CA_CERTS;
  if (process.geteuid() !== 0) {
    console.error('bench: needs root (the store is owned by uid 34)');
    process.exit(2);
  }
  const store = makeStore();
  const peers = {
    walk: [process.execPath, [here, '--walk', store]],
    find: ['find', [join(store, '.chunks'), '-printf', '%A@ %U %s\\n']],
    audit: [process.execPath, [join(root, 'dist', 'cli.cjs'), 'audit', store, '--owner', `${BENCH_UID}:${BENCH_GID}`]],
  };
  // Warm, and the same store: the walk met every chunk, find listed every entry.
  const walked = JSON.parse(timed(...peers.walk, true).stdout);
  const listed = timed(...peers.find, true).stdout.split('\n').filter(Boolean).length;
  if (walked.counts.chunk !== DEFAULT_FILES || walked.prefixDirs !== 0x10000) throw new Error(`walk met ${JSON.stringify(walked)}`);
  if (listed !== DEFAULT_FILES + 0x10000 + 1) throw new Error(`find listed ${listed}`);
  timed(...peers.audit);
  const samples = { walk: [], find: [], audit: [] };
  const rss = { walk: 0, find: 0, audit: 0 };
  for (let run = 0; run < RUNS; run++) {
    for (const [name, [command, args]] of Object.entries(peers)) {
      const { ms, rssKiB } = timed(command, args);
      samples[name].push(ms);
      rss[name] = Math.max(rss[name], rssKiB);
    }
  }
  const ms = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
  const mib = (kib) => (kib / 1024).toFixed(0);
  console.log(`node ${process.version}, ${availableParallelism()} cores, walk via ${walked.via} with ${walked.workers} workers, medians of ${RUNS} in ms (all runs: ${JSON.stringify(samples)})\n`);
  console.log('| bench | path | walk ms | peer ms | ratio | peak RSS MiB (walk / peer) |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| gc walk 1M chunks | walkChunks vs GNU find -printf '%A@ %U %s' | ${ms.walk.toFixed(0)} | ${ms.find.toFixed(0)} | ${(ms.walk / ms.find).toFixed(3)} | ${mib(rss.walk)} / ${mib(rss.find)} |`);
  console.log(`| gc walk 1M chunks | walkChunks vs chunkguard audit | ${ms.walk.toFixed(0)} | ${ms.audit.toFixed(0)} | ${(ms.walk / ms.audit).toFixed(3)} | ${mib(rss.walk)} / ${mib(rss.audit)} |`);
}

if (process.argv[2] === '--walk') await walkOnly(process.argv[3]);
else await main();
