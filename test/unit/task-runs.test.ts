/**
 * Directories to visit as runs (src/audit/task-runs.ts): what goes in comes
 * out, each directory once, last found first, whether taken one at a time or
 * cut into batches for another thread; raw names keep their bytes.
 */
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { type DirTask, reviveRun, RunBuilder, runOf, type TaskRun, TaskStack } from '../../src/audit/task-runs.js';

const hex = (i: number): string => i.toString(16).padStart(4, '0');

function drain(stack: TaskStack): DirTask[] {
  const out: DirTask[] = [];
  for (let task = stack.pop(); task; task = stack.pop()) out.push(task);
  return out;
}

/** Through a real MessagePort, as runs travel between threads. */
function cloned(runs: TaskRun[]): TaskRun[] {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(runs);
  const copy = receiveMessageOnPort(port2)!.message as TaskRun[];
  port1.close();
  return copy.map(reviveRun);
}

describe('task runs', () => {
  it('hands back every directory once, last found first, with its roles', () => {
    const builder = new RunBuilder('.chunks');
    for (let i = 0; i < 5; i++) builder.add(hex(i), 'prefix-dir', 'prefix-dir');
    builder.add('odd', 'other');
    const runs = builder.take();
    expect(runs.map((run) => run.count)).toEqual([5, 1]);
    expect(runs[0]!.names).toBe('0000/0001/0002/0003/0004');
    const stack = new TaskStack();
    stack.pushAll(runs);
    expect(stack.size).toBe(6);
    expect(drain(stack)).toEqual([
      { rel: '.chunks/odd', role: 'other', parent: '.chunks', name: 'odd' },
      ...[4, 3, 2, 1, 0].map((i) => ({ rel: `.chunks/${hex(i)}`, role: 'prefix-dir', entryRole: 'prefix-dir', parent: '.chunks', name: hex(i) })),
    ]);
    expect(stack.size).toBe(0);
    expect(builder.count).toBe(0);
  });

  it('cuts batches off a long run and loses or repeats nothing, whatever the batch size', () => {
    for (const batch of [1, 3, 64, 1000, 5000]) {
      const builder = new RunBuilder('.chunks');
      for (let i = 0; i < 4096; i++) builder.add(hex(i), 'prefix-dir');
      const main = new TaskStack();
      main.pushAll(cloned(builder.take()));
      const seen: string[] = [];
      while (main.size > 0) {
        const before = main.size;
        const runs = main.take(batch);
        expect(runs.reduce((sum, run) => sum + run.count, 0)).toBe(Math.min(batch, before));
        expect(main.size).toBe(before - Math.min(batch, before));
        const worker = new TaskStack();
        worker.pushAll(cloned(runs));
        for (const task of drain(worker)) seen.push(task.rel as string);
      }
      // Taken from the top in batches, each batch top first: the same order as one at a time.
      expect(seen).toEqual(Array.from({ length: 4096 }, (_, i) => `.chunks/${hex(4095 - i)}`));
    }
  });

  it('cuts across runs: whole runs, then part of the next, raw names among them, in the order one at a time gives', () => {
    const builder = new RunBuilder('d');
    const raw = Buffer.from([0x72, 0xff]);
    for (const name of ['a', 'b', 'c']) builder.add(name, 'blob');
    builder.add(raw, 'blob');
    for (const name of ['e', 'f']) builder.add(name, 'other');
    for (const name of ['g', 'h', 'i', 'j']) builder.add(name, 'blob', 'blob');
    const runs = builder.take();
    expect(runs.map((run) => run.count)).toEqual([3, 1, 2, 4]);
    const text = (task: DirTask) => `${Buffer.from(task.rel).toString('hex')}:${task.role}:${task.entryRole ?? ''}`;
    const one = new TaskStack();
    one.pushAll(cloned(runs));
    const expected = drain(one).map(text);
    for (const batch of [1, 2, 5, 6, 7, 9, 10]) {
      const main = new TaskStack();
      main.pushAll(cloned(runs));
      const seen: string[] = [];
      while (main.size > 0) {
        const worker = new TaskStack();
        worker.pushAll(cloned(main.take(batch)));
        seen.push(...drain(worker).map(text));
      }
      expect(seen, `batches of ${batch}`).toEqual(expected);
    }
    expect(expected[0]).toBe(`${Buffer.from('d/j').toString('hex')}:blob:blob`);
    expect(expected).toContain(`${Buffer.concat([Buffer.from('d/'), raw]).toString('hex')}:blob:`);
  });

  it('keeps a name that is not UTF-8 as its bytes, in a run of its own, across threads', () => {
    const raw = Buffer.from([0x66, 0xff, 0x2e]);
    const builder = new RunBuilder(Buffer.from([0x64, 0xfe]));
    builder.add('a', 'blob');
    builder.add(raw, 'blob');
    builder.add('b', 'blob');
    const runs = cloned(builder.take());
    expect(runs.map((run) => run.count)).toEqual([1, 1, 1]);
    const stack = new TaskStack();
    stack.pushAll(runs);
    const rels = drain(stack).map((task) => task.rel);
    expect(rels.every((rel) => Buffer.isBuffer(rel))).toBe(true);
    expect(rels.map((rel) => (rel as Buffer).toString('hex'))).toEqual(['64fe2f62', '64fe2f66ff2e', '64fe2f61']);
  });

  it('starts from the root task as given', () => {
    const stack = new TaskStack();
    stack.push(runOf({ rel: '', role: 'store-root' }));
    stack.push(runOf({ rel: '.chunks', role: 'chunks-root' }));
    stack.push(runOf({ rel: 'a/b/c', role: 'other' }));
    expect(stack.take(5).map((run) => [run.parent, run.names])).toEqual([['', ''], ['', '.chunks'], ['a/b', 'c']]);
    stack.push(runOf({ rel: '', role: 'store-root' }));
    stack.push(runOf({ rel: 'a/b/c', role: 'other' }));
    expect(drain(stack)).toEqual([
      { rel: 'a/b/c', role: 'other', parent: 'a/b', name: 'c' },
      { rel: '', role: 'store-root', parent: '', name: '' },
    ]);
  });
});
