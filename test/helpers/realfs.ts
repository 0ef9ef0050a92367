/**
 * Real filesystems for the integration matrix: kernel filesystems on loop images,
 * read-only images, FUSE daemons and the network servers behind sshfs and smbnetfs.
 * Everything lives under one mkdtemp directory; unmount() unmounts, stops every
 * daemon it started and removes that directory. Needs root; no systemd (daemons
 * are started by hand, servers listen on 127.0.0.1 only).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { sshClientOptions, sshdConfig } from './sshd.mjs';

export type RealFsName = 'ext4' | 'ext4-128' | 'ext4-noatime' | 'ext4-strictatime' | 'ext4-lazytime' | 'ext4-ro' | 'xfs' | 'btrfs' | 'tmpfs' | 'overlay' | 'squashfs' | 'erofs'
  | 'zfs-fuse' | 'ntfs-3g' | 'ntfs-3g-permissions' | 'ntfs-3g-uid' | 'gocryptfs' | 'gocryptfs-no-allow-other' | 'mergerfs' | 'sshfs' | 'sshfs-default-permissions'
  | 'bindfs' | 'bindfs-map' | 'exfat-fuse' | 'exfat-fuse-uid' | 'fusefat' | 'smbnetfs' | 'rclone';

export interface RealFs {
  name: RealFsName;
  /** Debian package that provides the implementation ('' for kernel-only, e.g. tmpfs), and its installed version via dpkg-query. */
  package: string;
  packageVersion: string;
  /** A directory inside the mounted filesystem where a test may create a store (for read-only filesystems: the mount root, already populated). */
  dir: string;
  mountPoint: string;
  /** fstype as /proc/self/mountinfo reports it (e.g. 'fuse.sshfs', 'fuseblk', 'ext4'). */
  fsType: string;
  /** The underlying directory for pass-through filesystems (bindfs source, mergerfs branch, overlay upper, gocryptfs cipher dir, rclone source, sshfs remote dir, smb share path), when there is one. */
  backing?: string;
  /**
   * What a remount remedy does: unmount, then mount the same contents again with these
   * options added (and, for sshfs, as another SSH login). Only where a test needs it.
   */
  remount(change: { options: string[]; login?: string }): void;
  unmount(): void;
}

const PACKAGE: Record<RealFsName, string> = {
  ext4: 'e2fsprogs', 'ext4-128': 'e2fsprogs', 'ext4-noatime': 'e2fsprogs', 'ext4-strictatime': 'e2fsprogs', 'ext4-lazytime': 'e2fsprogs', 'ext4-ro': 'e2fsprogs',
  xfs: 'xfsprogs', btrfs: 'btrfs-progs', tmpfs: '', overlay: '', squashfs: 'squashfs-tools', erofs: 'erofs-utils',
  'zfs-fuse': 'zfs-fuse', 'ntfs-3g': 'ntfs-3g', 'ntfs-3g-permissions': 'ntfs-3g', 'ntfs-3g-uid': 'ntfs-3g',
  gocryptfs: 'gocryptfs', 'gocryptfs-no-allow-other': 'gocryptfs', mergerfs: 'mergerfs', sshfs: 'sshfs', 'sshfs-default-permissions': 'sshfs',
  bindfs: 'bindfs', 'bindfs-map': 'bindfs', 'exfat-fuse': 'exfat-fuse', 'exfat-fuse-uid': 'exfat-fuse', fusefat: 'fusefat', smbnetfs: 'smbnetfs', rclone: 'rclone',
};

export const ALL_REAL_FS = Object.keys(PACKAGE) as RealFsName[];

/** Built from, or filled before going read-only from, what populate writes: dir is the mount root. */
const READ_ONLY = new Set<RealFsName>(['squashfs', 'erofs', 'ext4-ro']);

// The GC user (BACKUP_UID/BACKUP_GID in store.ts; repeated so this helper stands alone).
const GC_UID = 34;
const GC_GID = 34;

/** What a configuration's setup hands back: the top of the filesystem as tests see it. */
interface Setup {
  top: string;
  backing?: string;
  /** Mount the same contents again, with more options (the mount point is free). */
  again?: (options: string[], login?: string) => void;
}

interface Context {
  base: string;
  mnt: string;
  populate?: (dir: string) => void;
  /** Cleanup steps, run in reverse by unmount() (or when setup fails half way). */
  defer(step: () => void): void;
}

export function mountReal(name: RealFsName, options: { populate?: (dir: string) => void } = {}): RealFs {
  const { populate } = options;
  if (READ_ONLY.has(name) && !populate) throw new Error(`mountReal('${name}'): needs populate (a read-only filesystem gets its contents before it is mounted read-only)`);
  const base = mkdtempSync(join(tmpdir(), `chunkguard-realfs-${name}-`));
  // mkdtemp makes 0700: the GC user must be able to pass through.
  chmodSync(base, 0o755);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  const steps: Array<() => void> = [];
  const context: Context = { base, mnt, populate, defer: (step) => steps.push(step) };
  try {
    const pkg = PACKAGE[name];
    const packageVersion = pkg ? installedVersion(pkg) : '';
    const { top, backing, again } = SETUP[name](context);
    const fsType = mountedFsType(mnt);
    if (!fsType) throw new Error(`${mnt} is not mounted after setup`);
    let dir = top;
    if (!READ_ONLY.has(name)) {
      // A fresh directory (overlay: the lower layer's, so writing copies it up), not the root with its lost+found.
      dir = join(top, 'store');
      if (!existsSync(dir)) mkdirSync(dir, { mode: 0o755 });
      populate?.(dir);
    }
    let unmounted = false;
    return {
      name, package: pkg, packageVersion, dir, mountPoint: mnt, fsType, backing,
      remount: ({ options, login }) => {
        if (!again) throw new Error(`mountReal('${name}'): no remount for this configuration`);
        unmountPoint(mnt);
        again(options, login);
        if (!mountedFsType(mnt)) throw new Error(`${mnt} is not mounted after the remount`);
      },
      unmount: () => {
        if (unmounted) return;
        unmounted = true;
        const problems = tearDown(base, steps);
        if (problems.length > 0) throw new Error(`unmount of ${name} at ${mnt}: ${problems.join('; ')}`);
      },
    };
  } catch (error) {
    const problems = tearDown(base, steps);
    const cleanup = problems.length > 0 ? ` (cleanup: ${problems.join('; ')})` : '';
    throw new Error(`mountReal('${name}') failed: ${messageOf(error)}${cleanup}`, { cause: error });
  }
}

const SETUP: Record<RealFsName, (c: Context) => Setup> = {
  ext4: (c) => loopImage(c, ['mkfs.ext4', '-q', '-F'], []),
  // 128-byte inodes: no room for nanosecond timestamps, whole seconds only.
  'ext4-128': (c) => loopImage(c, ['mkfs.ext4', '-q', '-F', '-I', '128'], []),
  'ext4-noatime': (c) => loopImage(c, ['mkfs.ext4', '-q', '-F'], ['noatime']),
  'ext4-strictatime': (c) => loopImage(c, ['mkfs.ext4', '-q', '-F'], ['strictatime']),
  'ext4-lazytime': (c) => loopImage(c, ['mkfs.ext4', '-q', '-F'], ['lazytime']),
  'ext4-ro': (c) => {
    const setup = loopImage(c, ['mkfs.ext4', '-q', '-F'], []);
    c.populate!(c.mnt);
    run('mount', ['-o', 'remount,ro', c.mnt]);
    return setup;
  },
  // mkfs.xfs refuses images under 300 MiB; sparse, so the size costs nothing.
  xfs: (c) => loopImage(c, ['mkfs.xfs', '-q', '-f'], [], 320),
  btrfs: (c) => loopImage(c, ['mkfs.btrfs', '-q', '-f'], [], 320),
  tmpfs: (c) => {
    mountTmpfs(c, c.mnt);
    return { top: c.mnt };
  },
  overlay: (c) => {
    // Layers on their own tmpfs: an upper dir on an overlay (a container's /tmp) is refused.
    const layers = join(c.base, 'layers');
    mkdirSync(layers);
    mountTmpfs(c, layers);
    const [lower, upper, work] = ['lower', 'upper', 'work'].map((d) => join(layers, d)) as [string, string, string];
    for (const d of [lower, upper, work]) mkdirSync(d);
    // Pre-existing in the lower layer: the first write below it copies it up.
    mkdirSync(join(lower, 'store'), { mode: 0o755 });
    run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, c.mnt]);
    c.defer(() => unmountPoint(c.mnt));
    return { top: c.mnt, backing: upper };
  },
  squashfs: (c) => readOnlyImage(c, 'squashfs', (src, image) => run('mksquashfs', [src, image, '-noappend', '-quiet', '-no-progress'])),
  erofs: (c) => readOnlyImage(c, 'erofs', (src, image) => run('mkfs.erofs', ['--quiet', image, src])),

  'zfs-fuse': (c) => {
    startZfsFuse(c);
    const vdev = join(c.base, 'vdev');
    // 64 MiB is the smallest vdev zpool accepts; sparse.
    run('truncate', ['-s', '128M', vdev]);
    const pool = `chunkguard-${basename(c.base).split('-').pop()}`;
    // cachefile=none: nothing is recorded in /var/lib/zfs/zpool.cache.
    run('zpool', ['create', '-o', 'cachefile=none', '-m', c.mnt, pool, vdev]);
    c.defer(() => {
      // Right after the last close the pool can be briefly "busy": retry.
      waitFor(`zpool destroy ${pool}`, () => succeeds('zpool', ['destroy', pool]), 10_000);
    });
    waitMounted(c.mnt);
    return { top: c.mnt };
  },
  'ntfs-3g': (c) => ntfs(c, []),
  'ntfs-3g-permissions': (c) => ntfs(c, ['permissions']),
  'ntfs-3g-uid': (c) => ntfs(c, [`uid=${GC_UID}`, `gid=${GC_GID}`]),
  gocryptfs: (c) => gocryptfs(c, true),
  'gocryptfs-no-allow-other': (c) => gocryptfs(c, false),
  mergerfs: (c) => {
    const branch = join(c.base, 'branch');
    mkdirSync(branch, { mode: 0o755 });
    // The default minfreespace (4G) makes create policies skip a small branch (ENOSPC);
    // ff (first found) is the simplest create policy and fine with one branch.
    fuseDaemon(c, 'mergerfs', ['-o', 'allow_other,minfreespace=0,category.create=ff', branch, c.mnt]);
    return { top: c.mnt, backing: branch };
  },
  sshfs: (c) => sshfs(c, false),
  'sshfs-default-permissions': (c) => sshfs(c, true),
  // As root, bindfs adds allow_other itself (--no-allow-other would drop it).
  bindfs: (c) => bindfs(c, []),
  // Files root owns in the source show as the GC user's (uid and gid 0 -> 34), and back on chown.
  'bindfs-map': (c) => bindfs(c, [`--map=0/${GC_UID}:@0/@${GC_GID}`]),
  'exfat-fuse': (c) => exfat(c, []),
  'exfat-fuse-uid': (c) => exfat(c, [`uid=${GC_UID}`, `gid=${GC_GID}`]),
  fusefat: (c) => {
    const image = join(c.base, 'fs.img');
    run('truncate', ['-s', '64M', image]);
    run('mkfs.vfat', [image]);
    // fusefat mounts read-only unless rw+ (its "experimental" read-write mode).
    fuseDaemon(c, 'fusefat', ['-o', 'rw+,allow_other', image, c.mnt]);
    return { top: c.mnt };
  },
  smbnetfs: (c) => smbnetfs(c),
  rclone: (c) => {
    const source = join(c.base, 'source');
    mkdirSync(source, { mode: 0o755 });
    // A local path is a remote that needs no config. Writes need a cache mode ('off' fails
    // reads-while-writing and some opens); write-back 0s uploads on close, so unmount loses nothing.
    // rclone takes its own flags (--uid 34), not mount(8)'s -o.
    const mount = (more: string[]) => {
      const pid = daemon(c, 'rclone', ['mount', source, c.mnt, '--config', join(c.base, 'rclone.conf'), '--allow-other',
        '--vfs-cache-mode', 'writes', '--vfs-write-back', '0s', '--cache-dir', join(c.base, 'rclone-cache'), ...more]);
      // Unmounting ends it; SIGTERM (its documented stop) if it is still there, or never mounted.
      c.defer(() => stopProcess(pid));
      c.defer(() => unmountPoint(c.mnt));
      waitMounted(c.mnt, pid, join(c.base, 'rclone.log'));
    };
    mount([]);
    return { top: c.mnt, backing: source, again: mount };
  },
};

function loopImage(c: Context, mkfs: string[], mountOptions: string[], sizeMiB = 64): Setup {
  const image = join(c.base, 'fs.img');
  run('truncate', ['-s', `${sizeMiB}M`, image]);
  const [command, ...args] = mkfs;
  run(command!, [...args, image]);
  // mount's loop devices are autoclear: freed by the unmount.
  run('mount', ['-o', ['loop', ...mountOptions].join(','), image, c.mnt]);
  c.defer(() => unmountPoint(c.mnt));
  return { top: c.mnt };
}

function mountTmpfs(c: Context, at: string): void {
  run('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'chunkguard-realfs', at]);
  c.defer(() => unmountPoint(at));
}

function readOnlyImage(c: Context, type: string, build: (src: string, image: string) => void): Setup {
  const src = join(c.base, 'src');
  mkdirSync(src, { mode: 0o755 });
  c.populate!(src);
  const image = join(c.base, 'fs.img');
  // Both tools keep owners, modes and mtimes by default.
  build(src, image);
  run('mount', ['-t', type, '-o', 'loop,ro', image, c.mnt]);
  c.defer(() => unmountPoint(c.mnt));
  return { top: c.mnt };
}

// Through mount(8) and a loop device, as from a disk: fuseblk. Both daemons add allow_other for
// root; mount.exfat-fuse as root wants a block device (fuse's blkdev), which the loop gives it.
const ntfs = (c: Context, options: string[]) => fuseblkImage(c, 'ntfs-3g', ['mkntfs', '-Q', '-F'], options);
const exfat = (c: Context, options: string[]) => fuseblkImage(c, 'exfat-fuse', ['mkfs.exfat'], options);

function fuseblkImage(c: Context, type: string, mkfs: string[], options: string[]): Setup {
  const image = join(c.base, 'fs.img');
  run('truncate', ['-s', '64M', image]);
  const [command, ...args] = mkfs;
  run(command!, [...args, image]);
  const mount = (more: string[]) => {
    run('mount', ['-t', type, '-o', ['loop', ...options, ...more].join(','), image, c.mnt]);
    c.defer(() => unmountPoint(c.mnt));
    waitMounted(c.mnt);
  };
  mount([]);
  return { top: c.mnt, again: mount };
}

function gocryptfs(c: Context, allowOther: boolean): Setup {
  const cipher = join(c.base, 'cipher');
  const passfile = join(c.base, 'passfile');
  mkdirSync(cipher);
  writeFileSync(passfile, randomBytes(16).toString('hex'), { mode: 0o600 });
  // A cheap key derivation: the tests are about timestamps, not the KDF.
  run('gocryptfs', ['-init', '-q', '-scryptn', '10', '-passfile', passfile, cipher]);
  const mount = (more: string[]) =>
    // gocryptfs takes mount(8)'s "-o a,b" at the end as its own flags (-a -b).
    fuseDaemon(c, 'gocryptfs', ['-q', '-nosyslog', '-passfile', passfile, ...(allowOther ? ['-allow_other'] : []), cipher, c.mnt, ...(more.length ? ['-o', more.join(',')] : [])]);
  mount([]);
  return { top: c.mnt, backing: cipher, again: mount };
}

function bindfs(c: Context, options: string[]): Setup {
  const source = join(c.base, 'source');
  mkdirSync(source, { mode: 0o755 });
  fuseDaemon(c, 'bindfs', [...options, source, c.mnt]);
  return { top: c.mnt, backing: source };
}

function sshfs(c: Context, defaultPermissions: boolean): Setup {
  const remote = join(c.base, 'remote');
  mkdirSync(remote, { mode: 0o755 });
  const hostKey = join(c.base, 'host_key');
  const clientKey = join(c.base, 'client_key');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  writeFileSync(join(c.base, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  // sshd's privilege-separation directory, normally made at boot by systemd-tmpfiles.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = freePort();
  const config = join(c.base, 'sshd_config');
  writeFileSync(config, sshdConfig(c.base, port, hostKey));
  // -D: stay in the foreground (our child, its pid known); -e: log to the log file.
  const sshd = daemon(c, '/usr/sbin/sshd', ['-D', '-e', '-f', config], 'sshd');
  c.defer(() => stopProcess(sshd));
  waitFor(`sshd listening on 127.0.0.1:${port}`, () => isListening(port) || !isAlive(sshd), 10_000);
  if (!isAlive(sshd)) throw new Error(`sshd exited: ${readLog(c, 'sshd')}`);
  const options = [
    ...sshClientOptions(clientKey),
    // sshfs 3.7 has no cache=no: dir_cache=no turns off its own attribute/name cache.
    'allow_other', 'dir_cache=no', ...(defaultPermissions ? ['default_permissions'] : []),
  ];
  // -F /dev/null: root's ~/.ssh/config must not steer the connection.
  const mount = (more: string[], login = 'root') =>
    fuseDaemon(c, 'sshfs', [`${login}@127.0.0.1:${remote}`, c.mnt, '-p', String(port), '-F', '/dev/null', '-o', [...options, ...more].join(',')]);
  mount([]);
  return { top: c.mnt, backing: remote, again: mount };
}

function smbnetfs(c: Context): Setup {
  // libsmbclient connects to 445 only: a server already there would be tested instead of ours.
  if (isListening(445)) throw new Error('port 445 is taken: smbnetfs needs its own smbd on 127.0.0.1:445');
  const share = join(c.base, 'share');
  const samba = (d: string) => join(c.base, 'samba', d);
  mkdirSync(share, { mode: 0o755 });
  for (const d of ['private', 'lock', 'state', 'cache', 'run', 'ncalrpc', 'log']) mkdirSync(samba(d), { recursive: true });
  const password = randomBytes(12).toString('hex');
  const config = samba('smb.conf');
  // Every directory samba writes to is ours: nothing machine-wide (/var/lib/samba, /run/samba) is touched.
  writeFileSync(config, [
    '[global]',
    'server role = standalone server',
    'interfaces = 127.0.0.1',
    'bind interfaces only = yes',
    'smb ports = 445',
    'disable netbios = yes',
    `private dir = ${samba('private')}`,
    `binddns dir = ${samba('private/bind-dns')}`,
    `lock directory = ${samba('lock')}`,
    `state directory = ${samba('state')}`,
    `cache directory = ${samba('cache')}`,
    `pid directory = ${samba('run')}`,
    `ncalrpc dir = ${samba('ncalrpc')}`,
    `log file = ${samba('log/log.%m')}`,
    `passdb backend = tdbsam:${samba('private/passdb.tdb')}`,
    // No samba-dcerpcd and its rpcd_* helpers (share listing): the share is reached by name.
    'rpc start on demand helpers = no',
    'load printers = no',
    'printcap name = /dev/null',
    'disable spoolss = yes',
    '[chunkguard]',
    `path = ${share}`,
    'read only = no',
    '',
  ].join('\n'));
  run('smbpasswd', ['-c', config, '-s', '-a', 'root'], `${password}\n${password}\n`);
  // -l: even the log opened before smb.conf is read goes to our directory. --no-process-group: it
  // already leads a session (see daemon()), and smbd gives up when it cannot make one.
  const smbd = daemon(c, 'smbd', ['-F', '--no-process-group', '-s', config, '-l', samba('log')]);
  c.defer(() => {
    stopProcess(smbd);
    // Anything else that wrote a pid file into our pid directory (samba-dcerpcd if it ever starts).
    for (const file of readdirSync(samba('run')).filter((f) => f.endsWith('.pid'))) {
      stopProcess(Number(readFileSync(join(samba('run'), file), 'utf8')));
    }
  });
  waitFor('smbd listening on 127.0.0.1:445', () => isListening(445) || !isAlive(smbd), 10_000);
  if (!isAlive(smbd)) throw new Error(`smbd exited: ${readLog(c, 'smbd')}`);

  // smbnetfs and libsmbclient read ~/.smb: a HOME of our own.
  const home = join(c.base, 'home');
  const dotSmb = join(home, '.smb');
  // The client's smb.conf: libsmbclient's tdbs land here too, not in /var/cache/samba or /run/samba.
  const clientDirs = { 'private dir': 'private', 'lock directory': 'lock', 'state directory': 'state', 'cache directory': 'cache', 'pid directory': 'run', 'ncalrpc dir': 'ncalrpc' };
  const clientConfig = ['[global]'];
  for (const [setting, d] of Object.entries(clientDirs)) {
    mkdirSync(join(dotSmb, d), { recursive: true });
    clientConfig.push(`${setting} = ${join(dotSmb, d)}`);
  }
  writeFileSync(join(dotSmb, 'smb.conf'), `${clientConfig.join('\n')}\n`);
  writeFileSync(join(dotSmb, 'smbnetfs.conf'), [
    `auth "127.0.0.1" "root" "${password}"`,
    // No browsing of the network for hosts and workgroups.
    'smb_query_browsers "false"',
    `log_file "${join(c.base, 'smbnetfs.log')}"`,
    '',
  ].join('\n'), { mode: 0o600 });
  fuseDaemon(c, 'smbnetfs', [c.mnt, '-o', `allow_other,config=${join(dotSmb, 'smbnetfs.conf')}`], { ...process.env, HOME: home });
  const top = join(c.mnt, '127.0.0.1', 'chunkguard');
  // The first lookup makes smbnetfs connect; a failure shows here, not in a test.
  waitFor(`${top} (smbnetfs reaching smbd)`, () => existsSync(top), 10_000);
  return { top, backing: share };
}

function startZfsFuse(c: Context): void {
  // One zfs-fuse serves the machine (fixed socket and lock): use a running one, stop only our own.
  if (succeeds('zpool', ['list', '-H'])) return;
  const pidfile = join(c.base, 'zfs-fuse.pid');
  // It makes /var/run/zfs and /var/lock/zfs itself; no /zfs-kstat mount.
  runLogged(c, 'zfs-fuse', ['--no-kstat-mount', '--pidfile', pidfile]);
  waitFor('zfs-fuse to answer zpool', () => succeeds('zpool', ['list', '-H']), 10_000);
  const pid = Number(readFileSync(pidfile, 'utf8'));
  // Its clean shutdown takes about 5 s (fixed sleeps): give it 20.
  c.defer(() => stopProcess(pid, 20_000));
}

/** A FUSE daemon that forks once mounted (most do): logs to a file, waited for in mountinfo. */
function fuseDaemon(c: Context, command: string, args: string[], env?: NodeJS.ProcessEnv): void {
  runLogged(c, command, args, env);
  c.defer(() => unmountPoint(c.mnt));
  waitMounted(c.mnt, undefined, join(c.base, `${basename(command)}.log`));
}

/** Output to a log file, not a pipe: a daemon that keeps stderr would hold execFileSync forever. */
function runLogged(c: Context, command: string, args: string[], env?: NodeJS.ProcessEnv): void {
  const log = join(c.base, `${basename(command)}.log`);
  const fd = openSync(log, 'a');
  try {
    execFileSync(command, args, { stdio: ['ignore', fd, fd], env });
  } catch (error) {
    throw new Error(`${[command, ...args].join(' ')}: ${readFileSync(log, 'utf8').trim() || messageOf(error)}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * A foreground daemon as our child: its pid is known, its output goes to <base>/<logName>.log.
 * Detached (a session of its own): smbd --no-process-group, for one, signals its whole process
 * group when it stops, and that must not be the test runner's.
 */
function daemon(c: Context, command: string, args: string[], logName = basename(command)): number {
  const fd = openSync(join(c.base, `${logName}.log`), 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true });
    // ENOENT and the like arrive as an event; the missing pid below reports them.
    child.on('error', () => {});
    child.unref();
    if (child.pid === undefined) throw new Error(`${command}: could not be started`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function readLog(c: Context, logName: string): string {
  try {
    return readFileSync(join(c.base, `${logName}.log`), 'utf8').trim();
  } catch {
    return '';
  }
}

function waitMounted(mountPoint: string, pid?: number, log?: string): void {
  waitFor(`${mountPoint} in /proc/self/mountinfo`, () => mountedFsType(mountPoint) !== undefined || (pid !== undefined && !isAlive(pid)), 10_000, log);
  if (mountedFsType(mountPoint) === undefined) {
    throw new Error(`the daemon exited before mounting ${mountPoint}: ${log && existsSync(log) ? readFileSync(log, 'utf8').trim() : ''}`);
  }
}

/** The fstype of the topmost mount at mountPoint, or undefined. */
function mountedFsType(mountPoint: string): string | undefined {
  let fsType: string | undefined;
  for (const mount of mounts()) if (mount.mountPoint === mountPoint) fsType = mount.fsType;
  return fsType;
}

function mounts(): Array<{ mountPoint: string; fsType: string }> {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((line) => {
    const fields = line.split(' ');
    // Optional fields end at '-'; the fstype follows it. Paths escape space, tab, newline and \ in octal.
    const fsType = fields[fields.indexOf('-') + 1] ?? '';
    const mountPoint = (fields[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    return { mountPoint, fsType };
  });
}

function unmountPoint(mountPoint: string): void {
  if (mountedFsType(mountPoint) === undefined) return;
  try {
    run('umount', [mountPoint]);
  } catch {
    // Busy (an open file, a shell's cwd): detach it so the rest can be cleaned up.
    run('umount', ['-l', mountPoint]);
  }
}

/**
 * Run the cleanup steps (newest first), then make sure nothing we started is left:
 * every process naming our mkdtemp directory (daemons, their children) was started for
 * this mount. Returns what went wrong; the directory is removed only once nothing is
 * mounted below it (removing through a live mount would delete a backing store's files).
 */
function tearDown(base: string, steps: Array<() => void>): string[] {
  const problems: string[] = [];
  for (const step of steps.splice(0).reverse()) {
    try {
      step();
    } catch (error) {
      problems.push(messageOf(error));
    }
  }
  let left = processesNaming(base);
  if (left.length > 0) {
    try {
      waitFor('our daemons to exit', () => (left = processesNaming(base)).length === 0, 5_000);
    } catch {
      problems.push(`still running after unmount, killed: ${left.map((pid) => `${pid} ${commandLine(pid)}`).join(', ')}`);
      for (const pid of left) kill(pid, 'SIGKILL');
    }
  }
  const stillMounted = mounts().filter((m) => m.mountPoint === base || m.mountPoint.startsWith(`${base}/`));
  if (stillMounted.length > 0) {
    problems.push(`still mounted, ${base} kept: ${stillMounted.map((m) => m.mountPoint).join(', ')}`);
  } else {
    rmSync(base, { recursive: true, force: true });
  }
  return problems;
}

function stopProcess(pid: number, timeoutMs = 10_000): void {
  if (!isAlive(pid)) return;
  kill(pid, 'SIGTERM');
  try {
    waitFor(`pid ${pid} to exit`, () => !isAlive(pid), timeoutMs);
  } catch (error) {
    kill(pid, 'SIGKILL');
    throw error;
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Alive and not a zombie (an exited daemon whose parent has not reaped it yet is done). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function processesNaming(path: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => pid !== process.pid && commandLine(pid).includes(path) && isAlive(pid));
}

/** A LISTEN socket on the port, any address (/proc/net/tcp{,6}: hex local address:port, state 0A). */
function isListening(port: number): boolean {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(suffix)) return true;
    }
  }
  return false;
}

/** A port the kernel just handed out (a child, as listening is asynchronous in Node). */
function freePort(): number {
  const script = "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})";
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

function waitFor(what: string, done: () => boolean, timeoutMs: number, log?: string): void {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) {
      const output = log && existsSync(log) ? `: ${readFileSync(log, 'utf8').trim()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${output}`);
    }
    sleep(50);
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function succeeds(command: string, args: string[]): boolean {
  try {
    run(command, args);
    return true;
  } catch {
    return false;
  }
}

function installedVersion(pkg: string): string {
  // Status too: a removed package can leave its version behind (config-files).
  const [status, version = ''] = run('dpkg-query', ['-W', '-f', '${db:Status-Status} ${Version}', pkg]).split(' ');
  if (status !== 'installed') throw new Error(`package ${pkg} is not installed (dpkg: ${status})`);
  return version;
}

/** Runs a command; a failure names it and carries its stderr. */
function run(command: string, args: string[], input?: string): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${[command, ...args].join(' ')}: ${stderr || messageOf(error)}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
