/**
 * Turn a failed step into a finding an operator can act on: which file,
 * which owner, which user tried, and the command that fixes it.
 */
import { ownerRemedy } from '../system/gc-user.js';
import { constants, openSync, closeSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode } from '../errors.js';
import { type Finding, formatMode, shellQuote } from '../findings.js';
import { type CallResult, FS_APPEND_FL, FS_IMMUTABLE_FL } from '../fs/dir.js';
import { FsError, isUnsafePath } from '../fs/errors.js';
import { isWithin, pathsFromRoot } from '../fs/safe-path.js';
import type { Stat } from '../fs/stat.js';
import type { Accounts } from '../system/passwd.js';
import { type FilesystemKnowledge, fuseWithoutAllowOther, readOnlyRemedy, samePlaceIn } from '../system/filesystems.js';
import type { MountInfo } from '../system/mounts.js';
import { formatIdMap, type UserNamespace } from '../system/process.js';

/** Owner and mode of a path, read for a message (diagnosis only reads, never writes). */
function statPath(path: string): { uid: number; gid: number; mode: number } {
  const stat = lstatSync(path);
  return { uid: stat.uid, gid: stat.gid, mode: stat.mode };
}

export interface DiagnosisContext {
  accounts: Accounts;
  /** Who performed the touch or write. */
  uid: number;
  gid: number;
  capFowner: boolean;
  namespace: UserNamespace;
  mount: MountInfo | undefined;
  /** The owner the store's files should have (owner of .chunks). */
  storeOwner: { uid: number; gid: number };
  /** The store root: remedies for whole-store problems name it. */
  store: string;
  /** What is known of the filesystem (system/filesystems.ts). */
  known?: FilesystemKnowledge;
}

function readOnly(ctx: DiagnosisContext, path: string, step: string): Finding {
  const mountPoint = ctx.mount?.mountPoint ?? '<mount point>';
  const byDesign = ctx.known?.atime === 'read-only';
  return {
    code: 'READ_ONLY_FS',
    severity: 'error',
    message: byDesign
      ? `${step} failed with EROFS: ${ctx.known!.name} at ${mountPoint} is read-only by design, so GC can neither mark nor write chunks there`
      : `${step} failed with EROFS: the filesystem at ${mountPoint} is mounted read-only, so GC can neither mark nor write chunks`,
    path,
    remedy: readOnlyRemedy(mountPoint, ctx.known, ctx.store),
    evidence: { errno: 'EROFS', mountPoint, fsType: ctx.mount?.fsType, mountOptions: ctx.mount?.mountOptions },
  };
}

function notMapped(ctx: DiagnosisContext, path: string, owner: number, what: string): Finding {
  return {
    code: 'OWNER_NOT_MAPPED',
    severity: 'error',
    message: `${what} is owned by uid ${owner}, the overflow uid: its real owner is not mapped in this user namespace (uid_map ${formatIdMap(ctx.namespace.uidMap)}), so uid ${ctx.uid} gets "permission denied"`,
    path,
    remedy: ownerRemedy(ctx.store, ctx.storeOwner, ctx.namespace, true),
    evidence: { owner, overflowUid: ctx.namespace.overflowUid, uidMap: ctx.namespace.uidMap, gidMap: ctx.namespace.gidMap },
  };
}

function isUnmappedOwner(ctx: DiagnosisContext, uid: number): boolean {
  return !ctx.namespace.identity && uid === ctx.namespace.overflowUid && ctx.uid !== uid;
}

/** The first directory on the way to `path` (from /, `path` itself included) that the caller cannot open. */
function blockedDirectory(path: string): string | undefined {
  for (const dir of pathsFromRoot(path)) {
    try {
      closeSync(openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NONBLOCK));
    } catch (error) {
      if (errnoCode(error) === 'EACCES') return dir;
    }
  }
  return undefined;
}

/** EACCES reaching `path`: name the directory that denies search permission. */
export function diagnoseUnreachable(ctx: DiagnosisContext, path: string): Finding {
  const fuse = ctx.mount && fuseWithoutAllowOther(ctx.mount, ctx.uid, (uid) => ctx.accounts.describeUid(uid));
  if (fuse) return fuse;
  const blocked = blockedDirectory(path) ?? dirname(path);
  return unreadable(
    ctx,
    blocked,
    `uid ${ctx.accounts.describeUid(ctx.uid)} cannot reach ${path}: permission denied on ${blocked}, so GC running as this user cannot reach its chunks`,
  );
}

/** Why utimensat(UTIME_NOW, UTIME_OMIT) failed on the chunk. */
export function diagnoseTouch(
  ctx: DiagnosisContext,
  path: string,
  result: Extract<CallResult, { ok: false }>,
  /** The chunk's stat and inode flags, read through its open directory by the caller. */
  facts: { stat?: Stat; flags?: number },
): Finding {
  const who = ctx.accounts.describeUid(ctx.uid);
  if (result.code === 'EROFS') return readOnly(ctx, path, 'touching the chunk');
  if (result.code === 'EACCES') return diagnoseUnreachable(ctx, path);
  if (result.code !== 'EPERM') {
    return {
      code: 'TOUCH_FAILED',
      severity: 'error',
      message: `utimensat(UTIME_NOW, UTIME_OMIT) as uid ${who} failed with ${result.code}`,
      path,
      evidence: { errno: result.code },
    };
  }

  const { stat, flags } = facts;
  const owner = stat === undefined ? -1 : stat.uid;
  if (flags !== undefined && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)) !== 0) {
    const flag = flags & FS_IMMUTABLE_FL ? 'immutable' : 'append-only';
    const letter = flags & FS_IMMUTABLE_FL ? 'i' : 'a';
    return {
      code: 'TOUCH_EPERM_IMMUTABLE',
      severity: 'error',
      message: `the chunk has the ${flag} flag (chattr +${letter}): no one, not even root, can update its atime, so GC cannot mark it`,
      path,
      remedy: `chattr -${letter} ${shellQuote(path)}`,
      evidence: { errno: 'EPERM', flags: `0x${flags.toString(16)}`, touchUid: ctx.uid },
    };
  }
  if (stat && isUnmappedOwner(ctx, owner)) return notMapped(ctx, path, owner, 'the chunk');
  if (stat && owner !== ctx.uid && !ctx.capFowner && ctx.known?.ownedByLogin) return sftpOwner(ctx, path, stat);
  if (stat && owner !== ctx.uid && !ctx.capFowner) {
    const target = `${ctx.storeOwner.uid}:${ctx.storeOwner.gid}`;
    return {
      code: 'TOUCH_EPERM_WRONG_OWNER',
      severity: 'error',
      message: `the chunk is owned by uid ${ctx.accounts.describeUid(owner)} while the touch runs as uid ${who} without CAP_FOWNER: utimensat with UTIME_OMIT needs the owner, whatever the mode (${formatMode(stat.mode)})`,
      path,
      remedy: `chown ${target} ${shellQuote(path)}`,
      evidence: {
        errno: 'EPERM',
        owner: { uid: owner, gid: stat.gid, name: ctx.accounts.userByUid(owner)?.name },
        touchedAs: { uid: ctx.uid, gid: ctx.gid, name: ctx.accounts.userByUid(ctx.uid)?.name },
        mode: formatMode(stat.mode),
        capFowner: ctx.capFowner,
      },
    };
  }
  return {
    code: 'TOUCH_FAILED',
    severity: 'error',
    message: `utimensat as uid ${who} failed with EPERM although it owns the chunk or has CAP_FOWNER and no immutable flag is set (a security module or the filesystem refuses it)`,
    path,
    evidence: { errno: 'EPERM', owner, flags },
  };
}

/**
 * sshfs with default_permissions: the SFTP server creates every file as its
 * login user, so a chunk the GC user writes is not the GC user's, and a chown
 * is undone by the next insert. The login is the cause.
 */
function sftpOwner(ctx: DiagnosisContext, path: string, stat: Stat | undefined, code: 'TOUCH_EPERM_WRONG_OWNER' | 'CHUNK_WRITE_FAILED' = 'TOUCH_EPERM_WRONG_OWNER'): Finding {
  const who = ctx.accounts.describeUid(ctx.uid);
  const name = ctx.known?.name ?? 'this filesystem';
  const source = ctx.mount?.source ?? '';
  const { login, host, remote } = sshSource(source);
  const gcName = ctx.accounts.userByUid(ctx.storeOwner.uid)?.name ?? `<user with uid ${ctx.storeOwner.uid}>`;
  const mountPoint = ctx.mount?.mountPoint ?? '<mount point>';
  // A path relative to the old login's home means another directory to another login: name it whole.
  const base = remote.startsWith('/') ? remote : `<home of ${login ?? 'the old login'} on ${host}>/${remote}`;
  // The store's own path on the server: what the old login wrote there is that login's, and GC's login must own it.
  const remoteStore = (ctx.mount && samePlaceIn(base, ctx.store, ctx.mount.mountPoint)) ?? `${base}/<the store's path below it>`;
  const owned = stat ? `the chunk is owned by uid ${ctx.accounts.describeUid(stat.uid)} although uid ${who} wrote it` : `uid ${who} could not set the times of the chunk it had just created (EPERM)`;
  return {
    code,
    severity: 'error',
    message: `${owned}: on ${name} the server creates every file as the login user (${source || 'unknown'}), and with default_permissions the kernel then refuses uid ${who} the touch (EPERM); a chown would be undone by the next chunk written`,
    path,
    remedy: `mount the share as the GC user instead: umount ${shellQuote(mountPoint)} && sshfs ${shellQuote(`${gcName}@${host}:${base}`)} ${shellQuote(mountPoint)} -o allow_other,default_permissions (with the port and identity options it was mounted with); then on ${host}, as root, give that user what the old login wrote: chown -R ${shellQuote(`${gcName}:`)} ${shellQuote(remoteStore)}`,
    evidence: { errno: 'EPERM', owner: stat?.uid, touchedAs: ctx.uid, source, filesystem: ctx.known?.name },
  };
}

/** sshfs's `[user@]host:[path]`, the host possibly a bracketed IPv6 address. */
function sshSource(source: string): { login?: string; host: string; remote: string } {
  const at = source.lastIndexOf('@', source.startsWith('[') ? -1 : undefined);
  const login = at > 0 ? source.slice(0, at) : undefined;
  const rest = source.slice(at + 1);
  const colon = rest.startsWith('[') ? rest.indexOf(':', rest.indexOf(']')) : rest.indexOf(':');
  if (colon < 0) return { login, host: rest || '<host>', remote: '' };
  return { login, host: rest.slice(0, colon) || '<host>', remote: rest.slice(colon + 1) };
}

function unreadable(ctx: DiagnosisContext, dir: string, message: string): Finding {
  let evidence: Record<string, unknown> = { triedAs: ctx.uid };
  try {
    const stat = statPath(dir);
    evidence = { ...evidence, owner: stat.uid, gid: stat.gid, mode: formatMode(stat.mode) };
    if (isUnmappedOwner(ctx, stat.uid)) return notMapped(ctx, dir, stat.uid, dir);
  } catch {
    // Reported without owner.
  }
  return {
    code: 'UNREADABLE',
    severity: 'error',
    message,
    path: dir,
    remedy: isWithin(dir, ctx.store)
      ? `chown ${ctx.storeOwner.uid}:${ctx.storeOwner.gid} ${shellQuote(dir)} && chmod 0750 ${shellQuote(dir)}`
      : // A parent of the store: GC needs only search permission there.
        `chmod o+x ${shellQuote(dir)}`,
    evidence,
  };
}

/** Why writing the marker chunk into its directory failed. */
export function diagnoseWrite(ctx: DiagnosisContext, dir: string, error: unknown): Finding {
  if (isUnsafePath(error)) return unsafePath(error);
  const code = errnoCode(error);
  if (code === 'EROFS') return readOnly(ctx, dir, 'writing the chunk');
  if (code === 'EPERM' && ctx.known?.ownedByLogin) return sftpOwner(ctx, dir, undefined, 'CHUNK_WRITE_FAILED');
  if (code === 'EACCES' || code === 'EPERM') {
    let owner: number | undefined;
    let group: number | undefined;
    let dirMode: string | undefined;
    try {
      const stat = statPath(dir);
      owner = stat.uid;
      group = stat.gid;
      dirMode = formatMode(stat.mode);
    } catch {
      // Reported without them.
    }
    if (owner !== undefined && isUnmappedOwner(ctx, owner)) return notMapped(ctx, dir, owner, `the chunk directory ${dir}`);
    const remedy =
      owner === ctx.uid
        ? `chmod u+rwx ${shellQuote(dir)}`
        : `chown ${ctx.storeOwner.uid}:${ctx.storeOwner.gid} ${shellQuote(dir)} && chmod 0750 ${shellQuote(dir)}`;
    return {
      code: 'CHUNK_DIR_NOT_WRITABLE',
      severity: 'error',
      message: `uid ${ctx.accounts.describeUid(ctx.uid)} cannot create files in ${dir} (owner ${owner === undefined ? 'unknown' : ctx.accounts.describeUid(owner)}, group ${group === undefined ? 'unknown' : ctx.accounts.describeGid(group)}, mode ${dirMode ?? 'unknown'}): GC cannot insert or replace chunks there`,
      path: dir,
      remedy,
      evidence: { errno: code, owner, gid: group, mode: dirMode, triedAs: { uid: ctx.uid, gid: ctx.gid } },
    };
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return {
      code: 'CHUNK_WRITE_FAILED',
      severity: 'error',
      message: `writing the 4 MiB marker chunk into ${dir} failed with ${code}: the filesystem is full`,
      path: dir,
      evidence: { errno: code },
    };
  }
  return {
    code: 'CHUNK_WRITE_FAILED',
    severity: 'error',
    message: `writing the marker chunk into ${dir} failed with ${code ?? 'an error'}: ${(error as Error).message}`,
    path: dir,
    evidence: { errno: code },
  };
}

export function unsafePath(error: FsError): Finding {
  return {
    code: 'UNSAFE_PATH',
    severity: 'error',
    message: `${error.message}; chunkguard does not follow it, and GC would read or write somewhere else`,
    path: error.path,
    remedy: `ls -la ${shellQuote(error.path)}   # replace it with a real ${error.expected === 'file' ? 'chunk file' : 'directory'} owned by the store owner`,
    evidence: { found: error.found, expected: error.expected },
  };
}

/**
 * A step failed in a way no step diagnosed itself (an entry vanishing under
 * a concurrent rename, EIO, a symlink met on the way): a finding, not a crash.
 * Undefined for what is not a filesystem failure (the caller rethrows it).
 */
export function diagnoseFailure(ctx: DiagnosisContext, error: unknown, where: string): Finding | undefined {
  if (isUnsafePath(error)) return unsafePath(error);
  const code = errnoCode(error);
  const path = error instanceof FsError ? error.path : (error as { path?: unknown })?.path;
  if (code === 'EACCES') return diagnoseUnreachable(ctx, typeof path === 'string' ? path : where);
  if (code && (error instanceof FsError || typeof path === 'string')) return diagnoseWrite(ctx, typeof path === 'string' ? path : where, error);
  return undefined;
}
