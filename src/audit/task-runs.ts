/**
 * Directories still to visit, as runs: one parent, one role, many names.
 * This is how they are kept and how they travel between threads. `.chunks`
 * alone has 65,536 subdirectories; as objects, each was cloned twice (a
 * worker's listing to the main thread, the main thread's batch back to a
 * worker), and the clones' property names hashed on every arrival. A run is
 * one string of names joined by `/` (no name holds one): a memcpy to clone,
 * and the main thread cuts a batch off it without a string per name.
 * A name that is not valid UTF-8 stays raw bytes, in a run of its own.
 */
import type { Role } from './classify.js';
import { baseName, joinRel, parentRel, reviveRel, type RelPath } from '../fs/rel-path.js';

/** What a directory is in the layout; decides its children's roles. */
export type DirRole = 'store-root' | 'chunks-root' | 'prefix-dir' | 'blob' | 'other';

/** Where a scan starts: a directory of the tree (its root: ''), and what it is in the layout. */
export interface RootTask {
  rel: RelPath;
  role: DirRole;
}

export interface DirTask extends RootTask {
  /** The directory's parent and its name in it, `rel` joined from them: opened through the parent, no path split. */
  parent: RelPath;
  name: RelPath;
  /**
   * Set when the directory's own stat is still to be taken, as an entry of
   * its parent with this role: the listing said it is a directory (d_type),
   * and it is stat'ed once opened (DirScan#subdirectory says why).
   */
  entryRole?: Role;
}

export interface TaskRun {
  parent: RelPath;
  role: DirRole;
  entryRole?: Role;
  /** The names joined by `/`, or one raw name. */
  names: string | Buffer;
  /** How many names. */
  count: number;
}

const SEPARATOR = '/';
const SEPARATOR_CODE = 0x2f;

/**
 * Where the last `count` names of `names` start, less one: the separator before them,
 * or -1 when they are all of it. A loop over char codes: String#lastIndexOf is a call
 * into V8's runtime each time (perf on the 1M store: ~14 ms of each worker's user
 * time went there, from these cuts and prefix numbers).
 */
function cutBefore(names: string, count: number): number {
  let at = names.length;
  for (let found = 0; found < count; ) if (--at < 0 || names.charCodeAt(at) === SEPARATOR_CODE) found++;
  return at;
}

/** A run of one directory. */
export function runOf(task: RootTask): TaskRun {
  return { parent: parentRel(task.rel), role: task.role, names: baseName(task.rel), count: 1 };
}

/**
 * The subdirectories of one directory as they are found: consecutive names
 * with the same roles share a run (a name in bytes gets a run of its own).
 */
export class RunBuilder {
  private runs: TaskRun[] = [];
  /** Names added since the last take(). */
  count = 0;
  private open: { run: TaskRun; names: string[] } | undefined;

  constructor(private readonly parent: RelPath) {}

  add(name: RelPath, role: DirRole, entryRole?: Role): void {
    this.count++;
    const open = this.open;
    if (typeof name === 'string' && open && open.run.role === role && open.run.entryRole === entryRole) {
      open.names.push(name);
      return;
    }
    this.close();
    const run: TaskRun = { parent: this.parent, role, names: name, count: 1 };
    if (entryRole) run.entryRole = entryRole;
    if (typeof name === 'string') this.open = { run, names: [name] };
    else this.runs.push(run);
  }

  /** The runs so far, handed over: the builder starts afresh. */
  take(): TaskRun[] {
    this.close();
    const { runs } = this;
    this.runs = [];
    this.count = 0;
    return runs;
  }

  private close(): void {
    const { open } = this;
    if (!open) return;
    open.run.names = open.names.join(SEPARATOR);
    open.run.count = open.names.length;
    this.runs.push(open.run);
    this.open = undefined;
  }
}

/** A run as it arrives from another thread: its Buffers are plain Uint8Arrays. */
export function reviveRun(run: TaskRun): TaskRun {
  run.parent = reviveRel(run.parent);
  if (typeof run.names !== 'string') run.names = reviveRel(run.names);
  return run;
}

/**
 * The directories to visit, a stack of runs: the last found is the first
 * handed out (the stack stays as small as the tree is wide along one path).
 */
export class TaskStack {
  private readonly runs: TaskRun[] = [];
  /** Directories in the stack. */
  size = 0;

  push(run: TaskRun): void {
    if (run.count === 0) return;
    this.runs.push(run);
    this.size += run.count;
  }

  pushAll(runs: TaskRun[]): void {
    for (const run of runs) this.push(run);
  }

  /** The next directory, or undefined when none is left. */
  pop(): DirTask | undefined {
    const top = this.runs[this.runs.length - 1];
    if (!top) return undefined;
    let name: RelPath;
    if (top.count === 1) {
      this.runs.pop();
      name = top.names;
    } else {
      const names = top.names as string;
      const cut = cutBefore(names, 1);
      name = names.slice(cut + 1);
      top.names = names.slice(0, cut);
      top.count--;
    }
    this.size--;
    const task: DirTask = { rel: joinRel(top.parent, name), role: top.role, parent: top.parent, name };
    if (top.entryRole) task.entryRole = top.entryRole;
    return task;
  }

  /**
   * Up to `max` directories off the top, as runs (cut from the stack's own, no string
   * per name), in stack order: pushed onto another stack, the top comes off first.
   */
  take(max: number): TaskRun[] {
    const taken: TaskRun[] = [];
    let wanted = max;
    while (wanted > 0 && this.runs.length > 0) {
      const top = this.runs[this.runs.length - 1]!;
      if (top.count <= wanted) {
        this.runs.pop();
        taken.push(top);
        wanted -= top.count;
        this.size -= top.count;
        continue;
      }
      // A string run longer than wanted: its last `wanted` names, cut at the separator before them.
      const names = top.names as string;
      const cut = cutBefore(names, wanted);
      const part: TaskRun = { parent: top.parent, role: top.role, names: names.slice(cut + 1), count: wanted };
      if (top.entryRole) part.entryRole = top.entryRole;
      top.names = names.slice(0, cut);
      top.count -= wanted;
      this.size -= wanted;
      taken.push(part);
      wanted = 0;
    }
    return taken.reverse();
  }
}
