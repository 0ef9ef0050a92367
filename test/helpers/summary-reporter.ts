/**
 * Ends the run with the plain line CI reads: "tests: N passed, N failed, N skipped".
 * With CHUNKGUARD_SUMMARY_FILE set (.ci/run, one run per Node line), the line names
 * the Node version and the counts are appended to that file for the total.
 */
import { appendFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const module of testModules) {
      let tests = 0;
      for (const test of module.children.allTests()) {
        tests++;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed to load has no tests but a failed state.
      if (tests === 0 && module.state() === 'failed') failed++;
    }
    const counts = `${passed} passed, ${failed} failed, ${skipped} skipped`;
    const file = process.env.CHUNKGUARD_SUMMARY_FILE;
    if (!file) {
      process.stdout.write(`\ntests: ${counts}\n`);
      return;
    }
    appendFileSync(file, `${process.version} ${passed} ${failed} ${skipped}\n`);
    process.stdout.write(`\nNode ${process.version}: ${counts}\n`);
  }
}
