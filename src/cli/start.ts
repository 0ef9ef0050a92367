#!/usr/bin/env node
/**
 * The command line's entry: V8's compile cache on where Node has one, then the CLI
 * (dist/cli-main.cjs), which the cache then serves compiled.
 */
import { createRequire } from 'node:module';
import { enableCompileCache } from '../runtime/compile-cache.js';

enableCompileCache();
createRequire(import.meta.url)('./cli-main.cjs');
