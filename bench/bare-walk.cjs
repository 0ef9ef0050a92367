#!/usr/bin/env node
/**
 * The floor of the audit's design, for `bench/run.mjs audit`: what two threads of
 * Node cost that do nothing but the syscalls the audit makes on a chunk store.
 * Each worker takes every other prefix directory of `<store>/.chunks`: `openat`,
 * `getdents64`, one `statx` per entry (by address, as the audit calls it, through
 * the same koffi), and counts the entries whose uid is not `<uid>`. No CLI, no
 * checks, no classification, no messages but the two counts: the audit's time
 * above this one is all its own work.
 *
 *   node bench/bare-walk.cjs <store> <uid>    prints {"entries":N,"foreign":M}
 */
const { isMainThread, parentPort, Worker, workerData } = require('node:worker_threads');
const { join } = require('node:path');

const THREADS = 2;
const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const STATX_BASIC_STATS = 0x7ff;
const STATX_UID = 20;

if (isMainThread) {
  const [store, uid] = process.argv.slice(2);
  if (!store || uid === undefined) {
    console.error('usage: node bench/bare-walk.cjs <store> <uid>');
    process.exit(2);
  }
  let done = 0;
  const total = { entries: 0, foreign: 0 };
  for (let index = 0; index < THREADS; index++) {
    const worker = new Worker(__filename, { workerData: { store, uid: Number(uid), index } });
    worker.on('message', ({ entries, foreign }) => {
      total.entries += entries;
      total.foreign += foreign;
      if (++done === THREADS) console.log(JSON.stringify(total));
    });
    worker.on('error', (error) => {
      console.error(error);
      process.exit(1);
    });
  }
} else {
  const koffi = require(join(__dirname, '..', 'node_modules', 'koffi'));
  const libc = koffi.load('libc.so.6');
  const openat = libc.func('int openat(int, const char *, int)');
  const close = libc.func('int close(int)');
  const getdents = libc.func('long getdents64(int, void *, unsigned long)');
  const statx = libc.func('int statx(int, uintptr_t, int, unsigned int, uintptr_t)');
  const flags = O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  const { store, uid, index } = workerData;
  const chunks = openat(-100, join(store, '.chunks'), flags);
  if (chunks < 0) throw new Error(`cannot open ${store}/.chunks`);
  const buffer = Buffer.alloc(64 * 1024);
  const stat = Buffer.alloc(256);
  const words = new Uint32Array(stat.buffer, stat.byteOffset, 64);
  const bufferAt = Number(koffi.address(buffer));
  const statAt = Number(koffi.address(stat));

  /** Calls `visit(offset of the NUL-terminated name)` for each entry of `fd` but . and .. */
  function list(fd, visit) {
    for (;;) {
      const length = Number(getdents(fd, buffer, buffer.length));
      if (length <= 0) return;
      for (let offset = 0; offset < length; offset += buffer.readUInt16LE(offset + 16)) {
        const name = offset + 19;
        if (buffer[name] === 0x2e && (buffer[name + 1] === 0 || (buffer[name + 1] === 0x2e && buffer[name + 2] === 0))) continue;
        visit(name);
      }
    }
  }

  const prefixes = [];
  list(chunks, (name) => prefixes.push(buffer.toString('latin1', name, buffer.indexOf(0, name))));
  let entries = 0;
  let foreign = 0;
  for (let at = index; at < prefixes.length; at += THREADS) {
    const fd = openat(chunks, prefixes[at], flags);
    if (fd < 0) continue;
    list(fd, (name) => {
      if (statx(fd, bufferAt + name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, statAt) !== 0) return;
      entries++;
      if (words[STATX_UID / 4] !== uid) foreign++;
    });
    close(fd);
  }
  close(chunks);
  parentPort.postMessage({ entries, foreign });
}
