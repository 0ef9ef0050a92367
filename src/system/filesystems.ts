/**
 * What is known about the filesystem under a store, from the mount's type,
 * FUSE subtype and options (for `fuseblk`, the device's own signature). One
 * table: the check, audit, fix and env explain their findings from it.
 * Measured on Debian 12's packages (docs/filesystems.md has the matrix run).
 */
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { basename, posix } from 'node:path';
import { agree, type Finding, type FindingCode, fixRemedy, plural, shellQuote } from '../findings.js';
import { isWithin } from '../fs/safe-path.js';
import { findMount, type MountInfo } from './mounts.js';

export interface FilesystemKnowledge {
  /** The name operators know it by. */
  name: string;
  /** What an atime-only touch (utimensat UTIME_NOW, UTIME_OMIT) does there. */
  atime: 'honoured' | 'sets mtime' | 'dropped' | 'read-only';
  /**
   * Per-file owners: kept; none (chown fails); ignored (chown returns 0 and
   * changes nothing, so owner and mode mean nothing to access); or
   * decided by a server (network filesystems).
   */
  owners: 'kept' | 'none' | 'ignored' | 'server';
  /** The mount options that set the owner every file appears to have, where there are no real ones ({uid} and {gid}: the GC user's). Default: -o uid={uid},gid={gid}. */
  ownerOptions?: string;
  /** The mount options that make a filesystem that ignores owners keep and enforce them, where it has any. */
  enforceOptions?: string;
  /** What to do when atime-based GC cannot work there. */
  advice?: string;
  /** Another fact worth a line in a report. */
  note?: string;
  /** A FUSE filesystem: whether users other than the mounter may enter it is the allow_other option. */
  fuse: boolean;
  /** The daemon is a libfuse 2 high-level filesystem that drops atime-only updates (docs/filesystems.md). */
  libfuse2?: boolean;
  /** Files are created as the login user of the server behind it (sshfs: the SFTP login), whoever writes them. */
  ownedByLogin?: boolean;
  /** The mount option with which per-file owners are kept and enforced after all (ntfs-3g's permissions shows as default_permissions). */
  ownersKeptWith?: string;
  /** A pass-through of another directory, the mount's source (bindfs). */
  mirrorsSource?: boolean;
}

const MOVE = 'move the datastore to a filesystem that honours atime-only updates (ext4, xfs, btrfs, ZFS)';
const LIBFUSE2 = "libfuse 2's high-level API drops an atime-only update, returning success, unless the daemon sets flag_utime_omit_ok";

const KNOWN: Record<string, Omit<FilesystemKnowledge, 'fuse'>> = {
  ext2: { name: 'ext2', atime: 'honoured', owners: 'kept' },
  ext3: { name: 'ext3', atime: 'honoured', owners: 'kept' },
  ext4: { name: 'ext4', atime: 'honoured', owners: 'kept', note: 'with 128-byte inodes (mkfs.ext4 -I 128) timestamps are whole seconds' },
  xfs: { name: 'XFS', atime: 'honoured', owners: 'kept' },
  btrfs: { name: 'Btrfs', atime: 'honoured', owners: 'kept' },
  zfs: { name: 'ZFS', atime: 'honoured', owners: 'kept', note: 'a dataset with atime=off still honours an explicit touch' },
  tmpfs: { name: 'tmpfs', atime: 'honoured', owners: 'kept', note: 'memory only: the store is gone at the next reboot' },
  overlay: { name: 'overlayfs', atime: 'honoured', owners: 'kept', note: 'a touch copies a lower-layer chunk up (4 MiB written, same inode number shown)' },
  squashfs: { name: 'SquashFS', atime: 'read-only', owners: 'kept', advice: 'SquashFS is read-only by design (remount,rw cannot work): copy the store to a writable filesystem (cp -a keeps owners, modes and times) and point the datastore there' },
  erofs: { name: 'EROFS', atime: 'read-only', owners: 'kept', advice: 'EROFS is read-only by design (remount,rw cannot work): copy the store to a writable filesystem (cp -a keeps owners, modes and times) and point the datastore there' },
  iso9660: { name: 'ISO 9660', atime: 'read-only', owners: 'kept', advice: 'ISO 9660 is read-only by design: copy the store to a writable filesystem (cp -a keeps owners, modes and times) and point the datastore there' },
  nfs: { name: 'NFSv3', atime: 'honoured', owners: 'server', note: 'UTIME_NOW is sent as SET_TO_SERVER_TIME: the server\'s clock sets atime; root_squash maps root to nobody (65534); attribute caching (actimeo) can show a stale atime' },
  nfs4: { name: 'NFSv4', atime: 'honoured', owners: 'server', note: 'UTIME_NOW is sent as SET_TO_SERVER_TIME: the server\'s clock sets atime; root_squash maps root to nobody (65534); attribute caching (actimeo) can show a stale atime' },
  cifs: { name: 'CIFS/SMB', atime: 'honoured', owners: 'server', note: 'without Unix extensions every file shows the uid=/gid= mount options as its owner and chown is refused' },
  smb3: { name: 'SMB3', atime: 'honoured', owners: 'server', note: 'without Unix extensions every file shows the uid=/gid= mount options as its owner and chown is refused' },
  ceph: { name: 'CephFS', atime: 'honoured', owners: 'server' },
  virtiofs: { name: 'virtiofs', atime: 'honoured', owners: 'server', note: 'owners and times are the host directory\'s, as virtiofsd maps them' },
  'fuse.sshfs': {
    name: 'sshfs',
    atime: 'sets mtime',
    owners: 'server',
    ownedByLogin: true,
    note: 'SFTP has no "leave mtime alone": sshfs sets mtime to now with atime, whole seconds; files are created as the SSH login user, so connect as the GC user (sshfs backup@host:...) or files show as that user',
  },
  'fuse.rclone': { name: 'rclone mount', atime: 'dropped', owners: 'ignored', ownerOptions: '--uid {uid} --gid {gid}', enforceOptions: '--default-permissions --uid {uid} --gid {gid}', advice: `rclone mount keeps no atime (it shows the modification time as atime): ${MOVE}` },
  'fuse.bindfs': {
    name: 'bindfs',
    atime: 'dropped',
    owners: 'kept',
    libfuse2: true,
    mirrorsSource: true,
    advice: `bindfs 1.14 (${LIBFUSE2}): point the datastore at the directory bindfs mirrors, or use a bindfs built with libfuse 3 (1.15 and later)`,
    note: 'with --map, -u or -g, owners differ between the mount and its source: a chown through the mount is mapped back',
  },
  'fuse.mergerfs': { name: 'mergerfs', atime: 'honoured', owners: 'kept', note: 'the default minfreespace (4G) refuses new files on a branch with less free space (ENOSPC)' },
  'fuse.gocryptfs': { name: 'gocryptfs', atime: 'honoured', owners: 'kept' },
  'fuse.smbnetfs': { name: 'smbnetfs', atime: 'dropped', owners: 'ignored', libfuse2: true, advice: `smbnetfs (${LIBFUSE2}): ${MOVE}, or mount the share with the kernel CIFS client` },
  'fuse.fusefat': { name: 'fusefat', atime: 'dropped', owners: 'none', libfuse2: true, advice: `fusefat (${LIBFUSE2}); FAT keeps no access time of day anyway: ${MOVE}` },
  'fuse.zfs': { name: 'zfs-fuse', atime: 'honoured', owners: 'kept', note: 'timestamps are whole seconds' },
};

/** fuseblk mounts name their daemon only through the device: its signature says which. */
const FUSEBLK: Array<{ offset: number; magic: string; known: Omit<FilesystemKnowledge, 'fuse'> }> = [
  {
    offset: 3,
    magic: 'NTFS    ',
    known: {
      name: 'ntfs-3g',
      atime: 'honoured',
      owners: 'ignored',
      ownersKeptWith: 'default_permissions',
      ownerOptions: '-o permissions',
      enforceOptions: '-o permissions',
      note: 'without the permissions option ntfs-3g ignores chown and anyone may read, write and touch anything',
    },
  },
  {
    offset: 3,
    magic: 'EXFAT   ',
    known: { name: 'exfat-fuse', atime: 'dropped', owners: 'none', libfuse2: true, advice: `exfat-fuse (${LIBFUSE2}): ${MOVE}; the kernel's exfat driver honours atime but has no owners either` },
  },
];

function deviceSignature(device: string): Buffer | undefined {
  if (!device.startsWith('/dev/')) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(device, 'r');
    const bytes = Buffer.alloc(16);
    return bytes.subarray(0, readSync(fd, bytes, 0, bytes.length, 0));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A FUSE mount without a subtype (bindfs) names its daemon nowhere in
 * mountinfo: the process in this mount namespace whose arguments include the
 * mount point and which holds /dev/fuse open does (not a shell or an editor
 * working there). Where the processes' descriptors are not ours to read (not
 * root), nothing is claimed.
 */
function daemonOf(mountPoint: string): string | undefined {
  let pids: string[];
  let namespace: string;
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
    namespace = readlinkSync('/proc/self/ns/mnt');
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!args.slice(1).some((arg) => arg.replace(/\/+$/, '') === mountPoint)) continue;
      if (readlinkSync(`/proc/${pid}/ns/mnt`) === namespace && holdsFuseDevice(pid)) return basename(args[0] ?? '');
    } catch {
      // Gone, or not ours to read.
    }
  }
  return undefined;
}

function holdsFuseDevice(pid: string): boolean {
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === '/dev/fuse';
    } catch {
      return false;
    }
  });
}

/** Network filesystems (the kernel's clients): every operation is a round trip to a server. */
const NETWORK_FS = /^(nfs4?|cifs|smb3|9p|ceph|glusterfs|lustre|afs|virtiofs)$/;

export function isNetwork(fsType: string): boolean {
  return NETWORK_FS.test(fsType);
}

/** True for a FUSE mount (fuse, fuse.<subtype>, fuseblk). */
export function isFuse(fsType: string): boolean {
  return fsType === 'fuse' || fsType === 'fuseblk' || fsType.startsWith('fuse.');
}

/** The mount under `path` and what is known of its filesystem (read once: a fuseblk device or /proc may be read). */
export function filesystemAt(path: string): { mount?: MountInfo; known?: FilesystemKnowledge } {
  const mount = findMount(path);
  const known = mount && knownFilesystem(mount);
  return { ...(mount ? { mount } : {}), ...(known ? { known } : {}) };
}

/**
 * READ_ONLY_FS's remedy: a remount, unless the filesystem is read-only by
 * design (SquashFS, EROFS), where only a copy to a writable one can help.
 */
export function readOnlyRemedy(mountPoint: string, known: FilesystemKnowledge | undefined, store: string): string {
  if (known?.atime !== 'read-only' || !known.advice) return `mount -o remount,rw ${shellQuote(mountPoint)}`;
  return `${known.advice}: cp -a ${shellQuote(store)} <directory on a writable filesystem>/`;
}

/** What is known about `mount`'s filesystem; undefined for one not in the table. */
export function knownFilesystem(mount: Pick<MountInfo, 'fsType' | 'source' | 'superOptions' | 'mountPoint'>, readDevice = deviceSignature): FilesystemKnowledge | undefined {
  const fuse = isFuse(mount.fsType);
  const known = KNOWN[mount.fsType === 'fuse' ? `fuse.${daemonOf(mount.mountPoint)}` : mount.fsType];
  if (known) return withOptions({ ...known, fuse }, mount);
  if (mount.fsType === 'fuseblk') {
    const signature = readDevice(mount.source);
    const match = signature && FUSEBLK.find(({ offset, magic }) => signature.subarray(offset, offset + magic.length).toString('latin1') === magic);
    return match && withOptions({ ...match.known, fuse }, mount);
  }
  return undefined;
}

/** What this mount's options add to the table: owners kept after all (ntfs-3g `permissions`). */
function withOptions(known: FilesystemKnowledge, mount: Pick<MountInfo, 'superOptions'>): FilesystemKnowledge {
  return known.ownersKeptWith && mount.superOptions.includes(known.ownersKeptWith) ? { ...known, owners: 'kept' } : known;
}

/**
 * `path`, inside the mount at `mountPoint`, as the same place below `base` (the
 * directory or remote path the mount shows); undefined when it is not inside.
 * The path is resolved first: a store reached through a symlinked parent is
 * still inside.
 */
export function samePlaceIn(base: string, path: string, mountPoint: string): string | undefined {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // As given.
  }
  return isWithin(real, mountPoint) ? posix.join(base, posix.relative(mountPoint, real)) : undefined;
}

/**
 * ATIME_NOT_UPDATED's remedy from the table; for a mirror (bindfs), the store's own
 * directory in the one it mirrors, when that is a real directory (never a symlink
 * named to root), and, when its owner there is not the GC user's (a mount that maps
 * owners shows another), the fix that gives it to the GC user there.
 */
export function atimeRemedy(known: FilesystemKnowledge | undefined, mount: Pick<MountInfo, 'mountPoint' | 'source'> | undefined, store: string, owner: { uid: number; gid: number }): string | undefined {
  if (!known?.advice || !known.mirrorsSource || !mount?.source.startsWith('/')) return known?.advice;
  const mirrored = samePlaceIn(mount.source, store, mount.mountPoint);
  let stat;
  try {
    stat = mirrored === undefined ? undefined : lstatSync(mirrored);
  } catch {
    // Not there to name.
  }
  if (!stat?.isDirectory()) return known.advice;
  const quoted = shellQuote(mirrored!);
  const fix = stat.uid === owner.uid && stat.gid === owner.gid ? '' : ` and give it to the GC user there (there it belongs to ${stat.uid}:${stat.gid}, whatever the mount shows): ${fixRemedy(mirrored!, `${owner.uid}:${owner.gid}`)}`;
  return `${known.advice}: here, point the datastore at ${quoted}${fix}`;
}

/**
 * A FUSE mount without allow_other: only the user who mounted it may enter
 * it, whatever its mode (EACCES for everyone else, root included). The
 * mounter is the mount's user_id= option.
 */
function fuseMounter(mount: Pick<MountInfo, 'fsType' | 'superOptions'>): { allowOther: boolean; mounter?: number } | undefined {
  if (!isFuse(mount.fsType)) return undefined;
  const userId = mount.superOptions.find((option) => option.startsWith('user_id='));
  return { allowOther: mount.superOptions.includes('allow_other'), mounter: userId === undefined ? undefined : Number(userId.slice('user_id='.length)) };
}

/** Mount options from the table with the GC user's ids filled in. */
function withIds(options: string, owner: { uid: number; gid: number }): string {
  return options.replaceAll('{uid}', String(owner.uid)).replaceAll('{gid}', String(owner.gid));
}

/** The mount options that give every file the GC user as its apparent owner. */
/**
 * A new file shows the user who made it: per-file owners kept by a local kernel filesystem.
 * FUSE daemons may map owners (bindfs --map, ntfs-3g uid=), and filesystems without owners
 * show the mount's.
 */
export function ownersShowCreator(known: FilesystemKnowledge | undefined, fsType: string | undefined): boolean {
  if (known) return known.owners === 'kept' && !known.fuse;
  // Not in the table: a kernel filesystem on a local device keeps owners (f2fs, jfs, bcachefs, ...).
  return fsType !== undefined && !isFuse(fsType) && !isNetwork(fsType);
}

export function ownerMountOptions(known: FilesystemKnowledge | undefined, owner: { uid: number; gid: number }): string {
  return withIds(known?.ownerOptions ?? '-o uid={uid},gid={gid}', owner);
}

/** Findings that blame "permission denied" on owners and modes, with a chown or chmod as their remedy. */
const OWNER_FINDINGS = new Set<FindingCode>(['FOREIGN_OWNER', 'TOUCH_EPERM_WRONG_OWNER', 'INCONSISTENT_OWNER', 'UNREADABLE', 'CHUNK_DIR_NOT_WRITABLE']);

/** The owner a finding shows for what it blames (its evidence.owner: a uid, or an owner record). */
function shownOwner(finding: Finding): number | undefined {
  const owner = finding.evidence?.owner;
  if (typeof owner === 'number') return owner;
  if (owner && typeof owner === 'object' && typeof (owner as { uid?: unknown }).uid === 'number') return (owner as { uid: number }).uid;
  return undefined;
}

/**
 * One that the mount's owner options explain: on this filesystem (a directory
 * above the mount point keeps its own owners and modes), not chunkguard's own
 * failure to list, and shown as someone other than the GC user (if the GC user
 * owns it, its mode is the problem, and the options it has would not help).
 */
function explainedByOwnerOptions(finding: Finding, mountPoint: string, gcUid: number): boolean {
  if (!OWNER_FINDINGS.has(finding.code) || finding.evidence?.kind === 'unlistable') return false;
  if (finding.path !== undefined && finding.path !== mountPoint && isWithin(mountPoint, finding.path)) return false;
  return shownOwner(finding) !== gcUid;
}

/**
 * Owner findings, believed against the filesystem: where it keeps no per-file
 * owners, a chown cannot fix them. With owners enforced (a kernel filesystem, or
 * FUSE with default_permissions) the owner the mount options give every file
 * decides, and the remedy is those options. Without (ntfs-3g, fusefat), the
 * daemon lets every user do everything: predictions of EPERM become one finding
 * that says so. A failure measured there stays: the daemon or its server refused.
 */
export function ownersOnFilesystem(
  findings: Finding[],
  filesystem: { mount?: MountInfo; known?: FilesystemKnowledge },
  store: { path: string; gcUser: { uid: number; gid: number }; measured?: readonly Finding[] },
): Finding[] {
  const { path, gcUser, measured = [] } = store;
  const { mount, known } = filesystem;
  if (!mount || !known || (known.owners !== 'none' && known.owners !== 'ignored')) return findings;
  const enforced = !known.fuse || mount.superOptions.includes('default_permissions');
  const explained = findings.filter((finding) => explainedByOwnerOptions(finding, mount.mountPoint, gcUser.uid) && (enforced || !measured.includes(finding)));
  if (explained.length === 0) return findings;
  // The insert's own NO_FILE_OWNERS (its chown refused or ignored) is the same fact: one finding, with its evidence.
  const refused = enforced ? findings.filter((finding) => finding.code === 'NO_FILE_OWNERS') : [];
  const where = `${known.name} at ${shellQuote(mount.mountPoint)}`;
  const enforce = known.enforceOptions && withIds(known.enforceOptions, gcUser);
  const evidence = { fsType: mount.fsType, filesystem: known.name, superOptions: mount.superOptions, replaces: explained.map((finding) => finding.code), ...(refused.length ? { chown: refused[0]!.evidence } : {}) };
  const replacement: Finding = enforced
    ? {
        code: 'NO_FILE_OWNERS',
        severity: 'error',
        message: `${where} keeps no per-file owners: every file shows the owner its mount options set, and a chown cannot change that; ${plural(explained.length, 'owner finding')} ${agree(explained.length, 'comes', 'come')} from those options`,
        path,
        remedy: `mount ${shellQuote(mount.mountPoint)} again with ${ownerMountOptions(known, gcUser)} (the GC user's uid and gid)`,
        evidence,
      }
    : {
        code: 'OWNERSHIP_NOT_ENFORCED',
        severity: 'info',
        message: `${where} does not enforce owners or modes (a FUSE mount without default_permissions whose daemon ignores chown): GC will not get "permission denied" from owners or modes here, but neither is anything protected, so any user may touch or delete chunks${enforce ? '' : `; ${known.name} has no option that enforces them`}`,
        path,
        ...(enforce ? { remedy: `to enforce owners, mount ${shellQuote(mount.mountPoint)} again with ${enforce}` } : {}),
        evidence,
      };
  const replaced = [...explained, ...refused];
  return [...findings.filter((finding) => !replaced.includes(finding)), replacement];
}

/**
 * A FUSE mount without allow_other: the kernel lets no one but the mounter in,
 * whatever the modes say (root included). chmod cannot help; a remount can.
 */
export function fuseWithoutAllowOther(mount: Pick<MountInfo, 'fsType' | 'superOptions' | 'mountPoint' | 'source'>, uid: number, describeUid: (uid: number) => string): Finding | undefined {
  const fuse = fuseMounter(mount);
  if (!fuse || fuse.allowOther || fuse.mounter === uid) return undefined;
  const mounter = fuse.mounter === undefined ? 'the user who mounted it' : `uid ${describeUid(fuse.mounter)}`;
  const byUser = fuse.mounter !== undefined && fuse.mounter !== 0;
  return {
    code: 'FUSE_NO_ALLOW_OTHER',
    severity: 'error',
    message: `${mount.mountPoint} is a FUSE mount (${mount.fsType}) without allow_other: only ${mounter} may enter it, whatever the modes say, so uid ${describeUid(uid)} gets "permission denied" and GC running as it cannot reach a chunk`,
    path: mount.mountPoint,
    remedy: `umount ${shellQuote(mount.mountPoint)} && mount it again with -o allow_other${byUser ? ' (as a user other than root: add user_allow_other to /etc/fuse.conf first)' : ''}, e.g. in its fstab options`,
    evidence: { fsType: mount.fsType, source: mount.source, superOptions: mount.superOptions, mounter: fuse.mounter, triedAs: uid },
  };
}
