#!/usr/bin/env node
/**
 * The GC preview's referenced set alone (src/gc/digest-set.ts): N distinct
 * uniformly random digests (default 10,000,000) added with 30% more adds
 * that repeat earlier ones, sealed, then membership for all of them and for
 * N/10 absent ones; then the sweep's pattern: each present digest but one
 * in a thousand marked found (in the order added: the walk asks prefix by
 * prefix, which is kinder to the table's cache), and the missing ones
 * listed. Prints each phase's time and bytes per distinct
 * digest two ways: bytesUsed()/size, and the process's RSS growth / size.
 * Then a crafted index's worst case: M distinct digests (default 1,000,000,
 * plus 30% repeats) that all share their first 2 bytes, and again their
 * first 6, each in a set of its own, through the same phases (the set
 * rekeys its table once they crowd it).
 *
 *   npm run build && node --expose-gc bench/digest-set.mjs [N] [M]
 *
 * Digest i is a deterministic function of i (its first word a bijection of
 * i, so all are distinct), made in place: the bench holds no digests of its
 * own, so the RSS growth is the set's.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DigestSet } from '../dist/gc-digest-set.js';

const distinct = Number(process.argv[2] ?? 10_000_000);
const crafted = Number(process.argv[3] ?? 1_000_000);
const MISSING_EVERY = 1000;

/** murmur3's finaliser: a bijection of 32-bit words that mixes every bit. */
function mix(word) {
  word = Math.imul(word ^ (word >>> 16), 0x85ebca6b);
  word = Math.imul(word ^ (word >>> 13), 0xc2b2ae35);
  return (word ^ (word >>> 16)) >>> 0;
}

const digest = Buffer.alloc(32);
/** The first `shared` bytes of every digest are 0xab, as a crafted index makes them. */
let shared = 0;
function digestOf(i) {
  let word = i;
  for (let at = 0; at < 32; at += 4) {
    word = mix((word + 0x9e3779b9) >>> 0);
    digest.writeUInt32BE(word, at);
  }
  // A loop, not fill(): a call per digest would slow the random phases.
  for (let at = 0; at < shared; at++) digest[at] = 0xab;
  return digest;
}

function settle() {
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

function peakRss() {
  const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return kib ? Number(kib[1]) * 1024 : NaN;
}

const rows = [];
function phase(label, run) {
  const start = process.hrtime.bigint();
  const result = run();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push([label, `${seconds.toFixed(2)} s`, result ?? '']);
}

/** Adds `count` distinct digests and 30% repeats, seals, asks for each, marks all but 1 in 1000 found by name, lists the missing. */
function run(set, count, label = '') {
  const repeats = Math.round(count * 0.3);
  phase(`${label}add ${count.toLocaleString('en')} distinct + ${repeats.toLocaleString('en')} repeats`, () => {
    // A repeat after every few new digests, of one added earlier: snapshots share chunks as they go.
    let repeated = 0;
    for (let i = 0; i < count; i++) {
      set.add(digestOf(i));
      if (repeated < repeats && (i * 3) % 10 < 3) {
        set.add(digestOf(mix(i) % (i + 1)));
        repeated++;
      }
    }
    return `size ${set.size.toLocaleString('en')}`;
  });
  const rssAdded = settle();
  phase(`${label}seal`, () => set.seal());
  phase(`${label}has: all ${count.toLocaleString('en')} present`, () => {
    let hits = 0;
    for (let i = 0; i < count; i++) if (set.has(digestOf(i))) hits++;
    return `${hits.toLocaleString('en')} found`;
  });
  const absent = Math.round(count / 10);
  phase(`${label}has: ${absent.toLocaleString('en')} absent`, () => {
    let hits = 0;
    for (let i = count; i < count + absent; i++) if (set.has(digestOf(i))) hits++;
    return `${hits.toLocaleString('en')} found`;
  });
  phase(`${label}sweep: markFound, all but 1 in 1000`, () => {
    let referenced = 0;
    for (let i = 0; i < count; i++) {
      if (i % MISSING_EVERY === 0) continue;
      if (set.markFound(digestOf(i))) referenced++;
    }
    return `${referenced.toLocaleString('en')} referenced`;
  });
  phase(`${label}forEachMissing`, () => {
    let missing = 0;
    set.forEachMissing(() => missing++);
    return `${missing.toLocaleString('en')} missing`;
  });
  return rssAdded;
}

const rssBefore = settle();
const set = new DigestSet();
const rssAdded = run(set, distinct);
const rssEnd = settle();
const rssPeak = peakRss();
for (shared of [2, 6]) run(new DigestSet(), crafted, `crafted, first ${shared} bytes shared: `);

const perDigest = (bytes) => (bytes / set.size).toFixed(1);
console.log(`node ${process.version}, ${availableParallelism()} cores, gc ${globalThis.gc ? 'exposed' : 'not exposed (run with --expose-gc)'}`);
console.log('| phase | time | result |\n|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log(`\nbytes per distinct digest: bytesUsed()/size ${perDigest(set.bytesUsed())}; RSS growth/size after adds ${perDigest(rssAdded - rssBefore)}, at the end ${perDigest(rssEnd - rssBefore)}; peak RSS growth/size ${perDigest(rssPeak - rssBefore)}`);
