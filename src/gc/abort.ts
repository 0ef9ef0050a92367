/**
 * The first thing that would stop the server's GC, in the order it meets
 * them: the start (a nested datastore, tuning it cannot parse), the atime
 * safety check, the index walk (it lists every index before marking any),
 * phase 1 index by index in marking order (an index it cannot read, a
 * malformed one, a chunk it cannot touch), phase 2 prefix directory by prefix
 * directory (one it cannot list, a chunk it cannot unlink). Each with the
 * command that clears it where one can.
 */
import { immutableRemedy } from '../audit/collect.js';
import { type Finding, formatMode, plural, shellQuote } from '../findings.js';
import { displayPath, relText } from '../fs/rel-path.js';
import { STATX_ATTR_APPEND, STATX_ATTR_IMMUTABLE } from '../fs/stat.js';
import { canRead, canSearch, canTouch, permissionClass, type GcUser } from '../system/access.js';
import { readOnlyRemedy, type FilesystemKnowledge } from '../system/filesystems.js';
import { ownerRemedy } from '../system/gc-user.js';
import type { MountInfo } from '../system/mounts.js';
import type { UserNamespace } from '../system/process.js';
import type { IndexWalk, WalkStop } from './index-walk.js';
import { isStop, type Marked } from './mark.js';
import type { GcAbort } from './report.js';
import type { Attribution } from './snapshots.js';
import type { SweepTally } from './sweep.js';

export interface AbortContext {
  store: string;
  gcUser: GcUser;
  namespace: UserNamespace;
  mount?: MountInfo;
  known?: FilesystemKnowledge;
  /** Another datastore of datastore.cfg this one is nested with. */
  nested?: { name: string; path: string };
  tuningProblems: string[];
  safetyCheck: boolean;
  /** The atime check's finding the server's safety check would stop at. */
  atimeStop?: Finding;
  /** The atime check ran (else the zero chunk is judged from the walk). */
  atimeChecked: boolean;
  walk: IndexWalk;
  marked: Marked;
  attribution: Attribution;
  tally: SweepTally;
  /** `.chunks` itself: GC opens it to sweep and passes through it to touch. */
  chunksDir: { mode: number; uid: number; gid: number };
}

/** Give the GC user what it needs on `path` (owner `uid`): its owner when it is someone else's (every entry, journalled), else the permission bits. */
function accessRemedy(ctx: AbortContext, path: string, owner: { uid: number; gid: number }, bits: string): string {
  if (owner.uid !== ctx.gcUser.uid) return ownerRemedy(ctx.store, { uid: ctx.gcUser.uid, gid: ctx.gcUser.gid }, ctx.namespace, true);
  return `chmod ${permissionClass(owner.uid, owner.gid, ctx.gcUser)}+${bits} ${shellQuote(path)}`;
}

function walkStop(ctx: AbortContext, stop: WalkStop, denied: boolean): GcAbort {
  const path = relText(displayPath(ctx.store, stop.rel));
  const facts = stop.mode === undefined ? '' : ` (owner ${stop.uid}:${stop.gid}, mode ${formatMode(stop.mode)})`;
  if (!denied) return { code: 'WALK_FAILED', phase: 'mark', path, reason: `the index walk cannot list ${path} (${stop.errno}): GC stops with "unexpected error on datastore traversal"` };
  return {
    code: 'WALK_DENIED',
    phase: 'mark',
    path,
    reason: `uid ${ctx.gcUser.uid} cannot list ${path}${facts}: the index walk stops with "permission denied" before any chunk is marked`,
    ...(stop.mode === undefined ? {} : { remedy: accessRemedy(ctx, path, { uid: stop.uid!, gid: stop.gid! }, 'rx') }),
  };
}

/** Phase 1: the first index (in marking order) that stops it, or holds a chunk the GC user cannot touch. */
function markStop(ctx: AbortContext): GcAbort | undefined {
  const { walk, marked, attribution, tally } = ctx;
  const problem = marked.outcomes.findIndex(isStop);
  const chunkAt = attribution.firstUnmarkable?.position ?? Infinity;
  if (problem >= 0 && problem <= chunkAt) {
    const found = walk.indexes[problem]!;
    const path = relText(displayPath(ctx.store, found.rel));
    const { code, reason } = marked.outcomes[problem]!.problem!;
    if (code === 'DENIED') return { code: 'INDEX_UNREADABLE', phase: 'mark', path, reason: `${path} ${reason}`, remedy: accessRemedy(ctx, path, found, 'r') };
    if (code === 'BLOCKS') return { code: 'INDEX_BLOCKS', phase: 'mark', path, reason: `${path} ${reason}` };
    const malformed = code !== 'READ_FAILED' && code !== 'NOT_REGULAR';
    return { code: malformed ? 'INDEX_MALFORMED' : 'INDEX_UNREADABLE', phase: 'mark', path, reason: `${path} ${reason}` };
  }
  if (!attribution.firstUnmarkable) return undefined;
  const digest = attribution.firstUnmarkable.digest;
  const path = `${ctx.store}/.chunks/${digest.slice(0, 4)}/${digest}`;
  const index = relText(displayPath(ctx.store, walk.indexes[chunkAt]!.rel));
  const count = tally.unmarkable.length;
  return {
    code: 'CHUNK_UNMARKABLE',
    phase: 'mark',
    path,
    reason: `uid ${ctx.gcUser.uid} cannot update the atime of ${plural(count, 'referenced chunk')}; the first GC meets is ${path} (referenced by ${index}): the mark stops there with "update atime failed"`,
    remedy: unmarkableRemedy(ctx),
  };
}

/** What makes every unmarkable chunk touchable: a read-write mount, no immutable flag, the GC user's ownership. */
function unmarkableRemedy(ctx: AbortContext): string {
  if (ctx.mount?.readOnly) return readOnlyRemedy(ctx.mount.mountPoint, ctx.known, ctx.store);
  const paths = ctx.tally.unmarkable.map((rel) => `${ctx.store}/${rel}`);
  const frozen = ctx.tally.unmarkableImmutable;
  const commands: string[] = [];
  if (frozen.length > 0) commands.push(immutableRemedy(`${ctx.store}/.chunks`, { count: frozen.length, examples: frozen.slice(0, 8).map((rel) => `${ctx.store}/${rel}`) }));
  if (ctx.tally.unmarkableForeign > 0 || frozen.length < paths.length) commands.push(ownerRemedy(ctx.store, { uid: ctx.gcUser.uid, gid: ctx.gcUser.gid }, ctx.namespace, true));
  return commands.join(' && ');
}

/** Without the atime check: a zero chunk the GC user cannot touch stops the server's safety check, before the mark. */
function zeroChunkStop(ctx: AbortContext): GcAbort | undefined {
  const zero = ctx.tally.zeroChunk;
  if (!zero) return undefined;
  const immutable = (zero.attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND)) !== 0;
  if (canTouch(zero.uid, ctx.gcUser) && !immutable) return undefined;
  const path = `${ctx.store}/${zero.path}`;
  return {
    code: 'ATIME_CHECK',
    phase: 'atime check',
    path,
    reason: immutable
      ? `the zero chunk ${path} is immutable or append-only: the atime safety check's touch fails (EPERM) and GC stops before marking`
      : `the zero chunk ${path} belongs to uid ${zero.uid}, not the GC user (uid ${ctx.gcUser.uid}): the atime safety check's touch fails (EPERM) and GC stops before marking (seed 002)`,
    remedy: immutable ? `chattr -i -a ${shellQuote(path)}` : ownerRemedy(ctx.store, { uid: ctx.gcUser.uid, gid: ctx.gcUser.gid }, ctx.namespace, true),
  };
}

/** `.chunks` the GC user cannot enter (every touch fails) or list (the sweep cannot start). */
function chunksDirStop(ctx: AbortContext): GcAbort | undefined {
  const { mode, uid, gid } = ctx.chunksDir;
  if (canRead(mode, uid, gid, ctx.gcUser, true)) return undefined;
  const path = `${ctx.store}/.chunks`;
  const enters = canSearch(mode, uid, gid, ctx.gcUser);
  return {
    code: 'PREFIX_DIR_UNREADABLE',
    phase: !enters && ctx.marked.set.size > 0 ? 'mark' : 'sweep',
    path,
    reason: `uid ${ctx.gcUser.uid} cannot ${enters ? 'list' : 'enter'} ${path} (owner ${uid}:${gid}, mode ${formatMode(mode)}): ${enters ? 'the sweep cannot open it' : 'no chunk can be touched, nor the sweep start'}`,
    remedy: accessRemedy(ctx, path, { uid, gid }, 'rx'),
  };
}

function sweepStop(ctx: AbortContext): GcAbort | undefined {
  const stop = ctx.tally.stop;
  if (!stop) return undefined;
  const dir = `${ctx.store}/.chunks/${stop.prefix.toString(16).padStart(4, '0')}`;
  const facts = `owner ${stop.uid}:${stop.gid}, mode ${formatMode(stop.mode)}`;
  if (stop.why === 'not a directory') {
    return { code: 'PREFIX_DIR_UNREADABLE', phase: 'sweep', path: dir, reason: `${dir} is not a directory (mode ${formatMode(stop.mode)}): the sweep's open of it fails (ENOTDIR) and GC stops there` };
  }
  if (stop.why === 'unlistable' || stop.why === 'not searchable') {
    const referenced = ctx.tally.referencedIn[stop.prefix]! > 0;
    return {
      code: 'PREFIX_DIR_UNREADABLE',
      phase: referenced && stop.why === 'not searchable' ? 'mark' : 'sweep',
      path: dir,
      reason: `uid ${ctx.gcUser.uid} cannot ${stop.why === 'unlistable' ? 'list' : 'enter'} ${dir} (${stop.errno ?? facts}): GC stops there with "unable to read subdir"`,
      ...(stop.errno ? {} : { remedy: accessRemedy(ctx, dir, stop, 'rx') }),
    };
  }
  const path = `${dir}/${stop.chunk}`;
  if (stop.why === 'immutable') {
    return { code: 'CHUNK_NOT_REMOVABLE', phase: 'sweep', path, reason: `${path} is immutable or append-only: its unlink fails (EPERM) and GC stops there`, remedy: `chattr -i -a ${shellQuote(path)}` };
  }
  if (ctx.mount?.readOnly) return { code: 'CHUNK_NOT_REMOVABLE', phase: 'sweep', path, reason: `${ctx.mount.mountPoint} is mounted read-only: the unlink of ${path} fails and GC stops there`, remedy: readOnlyRemedy(ctx.mount.mountPoint, ctx.known, ctx.store) };
  return {
    code: 'CHUNK_NOT_REMOVABLE',
    phase: 'sweep',
    path,
    reason: `uid ${ctx.gcUser.uid} cannot delete entries in ${dir} (${facts}), so the unlink of ${path}, unused and older than the cutoff, fails and GC stops there`,
    remedy: accessRemedy(ctx, dir, stop, 'wx'),
  };
}

export function firstAbort(ctx: AbortContext): GcAbort | null {
  if (ctx.nested) {
    return { code: 'NESTED_DATASTORE', phase: 'start', path: ctx.store, reason: `${ctx.store} and datastore ${ctx.nested.name} (${ctx.nested.path}) lie one inside the other: GC refuses to start ("Aborting GC for safety reasons")` };
  }
  if (ctx.tuningProblems.length > 0) return { code: 'TUNING_INVALID', phase: 'start', path: ctx.store, reason: `the datastore's tuning cannot be parsed: ${ctx.tuningProblems.join('; ')}` };
  if (ctx.safetyCheck && ctx.atimeStop) {
    const finding = ctx.atimeStop;
    return { code: 'ATIME_CHECK', phase: 'atime check', path: finding.path ?? ctx.store, reason: `the atime safety check fails (${finding.code}): ${finding.message}`, ...(finding.remedy ? { remedy: finding.remedy } : {}) };
  }
  const zero = ctx.safetyCheck && !ctx.atimeChecked ? zeroChunkStop(ctx) : undefined;
  if (zero) return zero;
  const [denied] = ctx.walk.denied;
  if (denied) return walkStop(ctx, denied, true);
  const [failed] = ctx.walk.unreadable;
  if (failed) return walkStop(ctx, failed, false);
  const [scheme] = ctx.walk.schemeStops;
  if (scheme) {
    const path = relText(displayPath(ctx.store, scheme.rel));
    return { code: 'SCHEME_STOP', phase: 'mark', path, reason: `${path} ${scheme.reason}` };
  }
  const chunks = chunksDirStop(ctx);
  if (chunks?.phase === 'mark') return chunks;
  return markStop(ctx) ?? chunks ?? sweepStop(ctx) ?? null;
}
