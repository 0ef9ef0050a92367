/**
 * koffi, loaded the short way where npm installed it: its platform package's
 * native module straight into process.dlopen, which is what koffi's own loader
 * ends up doing after its detection (the ELF headers of Node's binary for musl,
 * several candidate paths, deprecation wrappers chunkguard never calls): ~5 ms
 * of every start, in the CLI and in each audit worker. Taken only when the
 * module is the glibc build of this architecture and the version koffi pins;
 * anything else (another layout, a musl Node, a mismatch) goes through koffi's
 * loader as before. The executable carries its own (runtime/embedded.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { embedded, requirePackage } from '../runtime/embedded.js';

export type Koffi = typeof import('koffi');

/** The package.json at `path`, or undefined when there is none to read. */
function packageJson(path: string): { name?: unknown; version?: unknown; optionalDependencies?: Record<string, unknown> } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ReturnType<typeof packageJson>;
  } catch {
    return undefined;
  }
}

/** The first of `dirs` that holds a package, with its package.json (where Node's resolver would stop). */
function firstPackage(dirs: string[]): { dir: string; json: NonNullable<ReturnType<typeof packageJson>> } | undefined {
  for (const dir of dirs) {
    const json = packageJson(join(dir, 'package.json'));
    if (json) return { dir, json };
  }
  return undefined;
}

/**
 * The native module of koffi's platform package for this process, or undefined when it is not
 * as koffi pins it. Found as Node finds a package (the node_modules of each directory up from
 * `from`; koffi's own first for its platform package), without Node's resolver, whose first
 * use costs more than the rest together.
 */
export function koffiNativeModule(from: string): Koffi | undefined {
  const platform = `@koromix/koffi-${process.platform}-${process.arch}`;
  for (let dir = dirname(fileURLToPath(from)); ; dir = dirname(dir)) {
    const modules = join(dir, 'node_modules');
    const koffi = packageJson(join(modules, 'koffi', 'package.json'));
    if (koffi) {
      const pinned = koffi.name === 'koffi' ? koffi.optionalDependencies?.[platform] : undefined;
      const found = firstPackage([join(modules, 'koffi', 'node_modules', platform), join(modules, platform)]);
      if (typeof pinned !== 'string' || found?.json.version !== pinned) return undefined;
      const where = found.dir;
      try {
        const module = { exports: {} as Koffi & { version?: unknown } };
        process.dlopen(module, join(where, `${process.platform}_${process.arch}`, 'koffi.node'));
        return module.exports.version === pinned ? module.exports : undefined;
      } catch {
        return undefined; // a musl Node, say: koffi's loader knows
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** koffi for the module at `from` (its import.meta.url). */
export function loadKoffi(from: string): Koffi {
  if (embedded()) return requirePackage('koffi', from) as Koffi;
  return koffiNativeModule(from) ?? (requirePackage('koffi', from) as Koffi);
}
