/**
 * The loopback sshd the sshfs tests and the sshfs bench both start (plain
 * JavaScript: the bench runs on Node 20 without a build): key login only, on
 * 127.0.0.1, every file it reads or writes under `base`.
 */
import { join } from 'node:path';

/** sshd_config text for a server on 127.0.0.1:`port` whose keys and pid file are in `base`. */
export function sshdConfig(base, port, hostKey) {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    // Never the system's /run/sshd.pid.
    `PidFile ${join(base, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(base, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // No PAM: its session modules (pam_loginuid) fail in containers. Root's account must not be locked ('!').
    'UsePAM no',
    // The keys sit below the world-writable tmpdir.
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

/** The ssh client's options (sshfs -o) for that server: this key only, no prompts, no known_hosts. */
export function sshClientOptions(clientKey) {
  return [`IdentityFile=${clientKey}`, 'IdentitiesOnly=yes', 'BatchMode=yes', 'StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null', 'LogLevel=ERROR'];
}
