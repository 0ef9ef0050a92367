/**
 * The CLI's check switches its own thread to the GC user (no helper process). The
 * switch must change this thread only, leave no capability in effect while switched,
 * and come back: checked here against the kernel's account and against what the
 * kernel does with a file made while switched.
 */
import { chmodSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, expect, it } from 'vitest';
import { describeAsRoot } from '../helpers/privileged.js';
import { runJson } from '../helpers/cli.js';
import { makeStore, reachableTempDir, zeroChunkPathIn } from '../helpers/store.js';
import { switchThreadTo, threadStatus } from '../../src/system/thread-credentials.js';

const base = reachableTempDir('chunkguard-thread-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** A thread started before the switch (threads inherit their creator's credentials), asked for its account of itself. */
function startOtherThread(): Promise<{ status: () => Promise<string>; stop: () => Promise<number> }> {
  const worker = new Worker(
    "const { parentPort } = require('node:worker_threads'); parentPort.on('message', () => parentPort.postMessage(require('node:fs').readFileSync('/proc/thread-self/status', 'utf8').match(/^Uid:.*$/m)[0])); parentPort.postMessage('ready');",
    { eval: true },
  );
  const next = () => new Promise<string>((resolve) => worker.once('message', resolve));
  return next().then(() => ({
    status: () => {
      const answer = next();
      worker.postMessage('status');
      return answer;
    },
    stop: () => worker.terminate(),
  }));
}

describeAsRoot('switching this thread to the GC user', () => {
  it('changes this thread only, with no effective capability, and comes back', async () => {
    mkdirSync(join(base, 'open'));
    chmodSync(join(base, 'open'), 0o777);
    const other = await startOtherThread();
    const before = threadStatus();
    const back = switchThreadTo({ uid: 34, gid: 34, groups: [34] });
    let file: string;
    try {
      expect(threadStatus()).toMatchObject({ uids: [34, 34, 0, 34], gids: [34, 34, 0, 34], groups: [34], capEff: 0n });
      // What the kernel does meanwhile: a file made here is the GC user's; root's files stay closed.
      file = join(base, 'open', 'made-while-switched');
      writeFileSync(file, 'x');
      expect(() => writeFileSync('/etc/chunkguard-must-not-exist', 'x')).toThrow(/EACCES/);
      // Another thread of the process is still root.
      expect(await other.status()).toMatch(/^Uid:\s+0\s+0\s+0\s+0$/);
    } finally {
      back();
      await other.stop();
    }
    expect(lstatSync(file).uid).toBe(34);
    expect(threadStatus()).toEqual(before);
  });

  it('the CLI check as root over a backup store touches on its own thread, as uid 34 without CAP_FOWNER', () => {
    const store = makeStore(join(base, 'store'));
    const { code, report } = runJson(['check', store]);
    expect(code).toBe(0);
    expect(report.touchedAs).toMatchObject({ uid: 34, gid: 34, via: 'thread', capFowner: false });
    expect(lstatSync(zeroChunkPathIn(store)).uid).toBe(34);
  });
});
