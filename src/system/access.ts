/**
 * What the GC user may do with an entry, from its mode, owner and group and
 * the user's groups (read from /etc/group, never NSS). uid 0 is treated as
 * holding CAP_DAC_OVERRIDE and CAP_FOWNER, as GC running as root does.
 */
export interface GcUser {
  uid: number;
  gid: number;
  /** Primary and supplementary groups. */
  groups: number[];
  name?: string;
}

export function isPrivileged(user: GcUser): boolean {
  return user.uid === 0;
}

/** The rwx triple that applies to this user (owner, else group, else other). */
function permissions(mode: number, uid: number, gid: number, user: GcUser): number {
  if (uid === user.uid) return (mode >> 6) & 7;
  if (user.groups.includes(gid)) return (mode >> 3) & 7;
  return mode & 7;
}

const READ = 4;
const WRITE = 2;
const EXECUTE = 1;

/** A file the user can open for reading; a directory it can list and enter. */
export function canRead(mode: number, uid: number, gid: number, user: GcUser, isDirectory: boolean): boolean {
  if (isPrivileged(user)) return true;
  const bits = permissions(mode, uid, gid, user);
  return isDirectory ? (bits & (READ | EXECUTE)) === (READ | EXECUTE) : (bits & READ) === READ;
}

/** utimensat(UTIME_NOW, UTIME_OMIT) needs the owner or CAP_FOWNER, whatever the mode. */
export function canTouch(uid: number, user: GcUser): boolean {
  return isPrivileged(user) || uid === user.uid;
}

/** A directory the user may pass through (search permission). */
export function canSearch(mode: number, uid: number, gid: number, user: GcUser): boolean {
  return isPrivileged(user) || (permissions(mode, uid, gid, user) & EXECUTE) === EXECUTE;
}

/** A directory the user may create and remove entries in (write and search permission). */
export function canWriteDirectory(mode: number, uid: number, gid: number, user: GcUser): boolean {
  return isPrivileged(user) || (permissions(mode, uid, gid, user) & (WRITE | EXECUTE)) === (WRITE | EXECUTE);
}

/** Which permission class applies to the user for this owner and group: `u`, `g` or `o` (for a chmod remedy). */
export function permissionClass(uid: number, gid: number, user: GcUser): 'u' | 'g' | 'o' {
  return uid === user.uid ? 'u' : user.groups.includes(gid) ? 'g' : 'o';
}
