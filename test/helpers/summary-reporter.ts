/**
 * Ends the run with the plain line CI reads: "tests: N passed, N failed, N skipped",
 * then one line per skipped test with its reason (a kernel feature the machine
 * lacks, say), so a skip is never silent in CI's log. With CHUNKGUARD_SUMMARY_FILE
 * set (.ci/run, one run per Node line), the line names the Node version, and the
 * counts and the skipped tests are appended to that file for the total.
 */
import { appendFileSync } from 'node:fs';
import type { Reporter, TestCase, TestModule, TestSuite } from 'vitest/node';

/** A group that failed on its own (a file that did not load, a beforeAll that threw): its tests report "skipped". */
const failedOnItsOwn = (suite: TestSuite | TestModule): boolean => suite.errors().length > 0;

/** Why a test was skipped: the note it was skipped with, or that its group failed (a skipped group's reason is in its name). */
function skipReason(test: TestCase): string | undefined {
  const result = test.result();
  if (result.state === 'skipped' && result.note) return result.note.replace(/^skipped: /, '');
  for (let parent: TestSuite | TestModule = test.parent; ; parent = parent.parent) {
    if (failedOnItsOwn(parent)) return 'not run: its group failed before it (above)';
    if (parent.type === 'module') return undefined;
  }
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    const skipped: string[] = [];
    for (const module of testModules) {
      for (const suite of [module, ...module.children.allSuites()]) if (failedOnItsOwn(suite)) failed++;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          const reason = skipReason(test);
          skipped.push(`skipped: ${test.fullName}${reason ? `: ${reason}` : ''}`);
        }
      }
    }
    const counts = `${passed} passed, ${failed} failed, ${skipped.length} skipped`;
    const reasons = skipped.map((line) => `  ${line}\n`).join('');
    const file = process.env.CHUNKGUARD_SUMMARY_FILE;
    if (!file) {
      process.stdout.write(`\ntests: ${counts}\n${reasons}`);
      return;
    }
    appendFileSync(file, `${process.version} ${passed} ${failed} ${skipped.length}\n${skipped.map((line) => `${line}\n`).join('')}`);
    process.stdout.write(`\nNode ${process.version}: ${counts}\n${reasons}`);
  }
}
