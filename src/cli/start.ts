#!/usr/bin/env node
/** The command line's entry: the CLI (dist/cli-main.cjs), compiled from the code cache where there is one. */
import { join } from 'node:path';
import { runCached } from '../runtime/code-cache.js';

runCached(join(__dirname, 'cli-main.cjs'));
