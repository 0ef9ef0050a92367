/**
 * Before each test, one turn of the event loop. Most integration tests are synchronous
 * (spawnSync of the CLI, execFileSync of mount): between them vitest only awaits
 * promises, so the loop never polls, and a file whose tests block it for more than a
 * minute in all leaves the reply to vitest's own progress call unread until its 60 s
 * timer has fired ("Timeout calling onTaskUpdate", an unhandled error that fails the run).
 */
import { beforeEach } from 'vitest';

beforeEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
