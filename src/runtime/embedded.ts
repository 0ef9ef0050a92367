/**
 * What the program carries inside itself when it runs as one executable
 * (src/sea/): its packages, the audit worker's code, its own path for the
 * helper and its version, where the npm install finds files beside the
 * bundle. The executable's entry sets it once, before anything is loaded;
 * every other module asks here and falls back to the files. Nothing in this
 * layer knows how the executable is built.
 */
import { createRequire } from 'node:module';

export interface Embedded {
  /** chunkguard's version, fixed when the executable was built. */
  version: string;
  /** A package the executable carries (koffi, cli-progress); throws for one it does not. */
  requirePackage(name: string): unknown;
  /** The audit worker's code, for `new Worker(source, { eval: true })`, and what its workerData carries besides (as `embedded`). */
  worker(): { source: string; data: unknown };
  /** How to start the helper as another user: this executable, in its helper role. */
  helperCommand(): { file: string; args: string[]; env: NodeJS.ProcessEnv };
}

let current: Embedded | undefined;

/** Called by the executable's entry, once, before the CLI or the helper is loaded. */
export function setEmbedded(embedded: Embedded): void {
  current = embedded;
}

/** Set when running as the single executable. */
export function embedded(): Embedded | undefined {
  return current;
}

/** A package by name: the executable's copy, else the one node_modules holds for the module at `from` (its import.meta.url). */
export function requirePackage(name: string, from: string): unknown {
  return current ? current.requirePackage(name) : createRequire(from)(name);
}
