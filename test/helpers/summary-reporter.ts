/** Ends the run with the plain line CI reads: "tests: N passed, N failed, N skipped". */
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    let passed = 0;
    let failed = errors.length;
    let skipped = 0;
    const visit = (task: Task) => {
      if (task.tasks) task.tasks.forEach(visit);
      if (task.type !== 'test') return;
      if (task.mode === 'skip' || task.mode === 'todo') skipped++;
      else if (task.result?.state === 'pass') passed++;
      else if (task.result?.state === 'fail') failed++;
      else skipped++;
    };
    files.forEach(visit);
    // A file that failed to load has no tests but a failed result.
    for (const file of files) if (file.result?.state === 'fail' && !file.tasks?.length) failed++;
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
