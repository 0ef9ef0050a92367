/**
 * An sshfs mount of a local directory for the audit bench: its own sshd on
 * 127.0.0.1 (own config, host and client keys in a temp directory, key login
 * only, started by hand, no systemd), sshfs with dir_cache=no (sshfs 3.7 has
 * no cache=no), so every stat is a round trip. The same recipe as
 * test/helpers/realfs.ts. stop() unmounts, stops sshd and everything else
 * naming the temp directory, then removes it; it is safe to call twice.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshClientOptions, sshdConfig } from '../test/helpers/sshd.mjs';

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function waitFor(what, done, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    sleep(50);
  }
}

/** Alive and not a zombie. */
function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function kill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Our daemons and their children (sshfs's ssh): every process naming our temp directory. */
function processesNaming(path) {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => pid !== process.pid && commandLine(pid).includes(path) && isAlive(pid));
}

/** The mount points below `base` from /proc/self/mountinfo (octal escapes undone). */
function mountsBelow(base) {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === base || point.startsWith(`${base}/`));
}

function isListening(port) {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .some((line) => {
      const [, local, , state] = line.trim().split(/\s+/);
      return state === '0A' && local?.endsWith(suffix);
    });
}

/** A port the kernel just handed out on 127.0.0.1. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Mount `remoteDir` (a local directory) over sshfs on a fresh mount point. Returns the
 * mount point and stop(). On failure everything started so far is stopped again.
 */
export async function mountSshfs(remoteDir, { options = [] } = {}) {
  const base = mkdtempSync(join(tmpdir(), 'chunkguard-bench-sshfs-'));
  chmodSync(base, 0o755);
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  let sshd;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    for (const point of mountsBelow(base).reverse()) {
      try {
        execFileSync('umount', [point], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', point], { stdio: 'ignore' });
      }
    }
    if (sshd !== undefined) kill(sshd, 'SIGTERM');
    try {
      waitFor('sshd and sshfs to exit', () => processesNaming(base).length === 0, 5_000);
    } catch {
      for (const pid of processesNaming(base)) kill(pid, 'SIGKILL');
    }
    // Never remove through a live mount: the files below it are the remote store's.
    if (mountsBelow(base).length === 0) rmSync(base, { recursive: true, force: true });
  };
  try {
    const hostKey = join(base, 'host_key');
    const clientKey = join(base, 'client_key');
    for (const key of [hostKey, clientKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    writeFileSync(join(base, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
    // sshd's privilege-separation directory, normally made at boot by systemd-tmpfiles.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const port = await freePort();
    const config = join(base, 'sshd_config');
    writeFileSync(config, sshdConfig(base, port, hostKey));
    const log = openSync(join(base, 'sshd.log'), 'a');
    // -D: our child, its pid known; detached: Ctrl-C in the terminal reaches us, and we stop it.
    const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    child.on('error', () => {});
    child.unref();
    sshd = child.pid;
    if (sshd === undefined) throw new Error('sshd could not be started');
    waitFor(`sshd on 127.0.0.1:${port}`, () => isListening(port) || !isAlive(sshd));
    if (!isAlive(sshd)) throw new Error(`sshd exited: ${readFileSync(join(base, 'sshd.log'), 'utf8')}`);
    const sshOptions = sshClientOptions(clientKey);
    // -F /dev/null: root's ~/.ssh/config must not steer the connection.
    execFileSync('sshfs', [`root@127.0.0.1:${remoteDir}`, mnt, '-p', String(port), '-F', '/dev/null', '-o', [...sshOptions, 'allow_other', 'dir_cache=no', ...options].join(',')], { stdio: 'ignore' });
    waitFor(`${mnt} to be mounted`, () => mountsBelow(base).length > 0);
    if (!existsSync(join(mnt, '.'))) throw new Error(`${mnt} is not readable`);
    return { mnt, stop };
  } catch (error) {
    stop();
    throw error;
  }
}
