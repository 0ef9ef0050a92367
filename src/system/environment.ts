/**
 * inspectEnvironment(path?): who this process is and what the path sits on,
 * from files only (/proc, /etc/passwd, /etc/group): no getpwuid(), no
 * os.userInfo(), so it cannot hang on a uid without a passwd entry (seed 001).
 */
import { badInput, publicError } from '../errors.js';
import { type Finding, formatMode, plural } from '../findings.js';
import { unsignedIdentity } from '../fs/identity.js';
import { resolveGiven } from '../fs/safe-path.js';
import { type GcUserChoice, gcUserFor, ownerRemedy } from './gc-user.js';
import { type FilesystemKnowledge, filesystemAt, fuseWithoutAllowOther, isFuse, isNetwork, readOnlyRemedy } from './filesystems.js';
import { mountFacts, type MountFacts } from './mounts.js';
import { Accounts, type AccountFiles } from './passwd.js';
import { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, effectiveCapabilities, formatIdMap, hasCapability, isUnmapped, processIdentity, type ProcessIdentity, userNamespace, type UserNamespace } from './process.js';

export interface EnvironmentReport {
  /** No risks found (no error or warning findings). */
  ok: boolean;
  command: 'env';
  summary: string;
  identity: {
    uid: number;
    gid: number;
    euid: number;
    egid: number;
    groups: { gid: number; name?: string }[];
  };
  /** The effective uid's /etc/passwd entry, if any. */
  passwd?: { name: string; uid: number; gid: number; home: string; shell: string };
  /** The effective gid's /etc/group entry, if any. */
  group?: { name: string; gid: number; members: string[] };
  variables: { USER?: string; HOME?: string; LOGNAME?: string };
  namespace: UserNamespace;
  capabilities: { effective: string; CAP_CHOWN: boolean; CAP_DAC_OVERRIDE: boolean; CAP_FOWNER: boolean };
  path?: {
    path: string;
    owner: { uid: number; gid: number; user?: string; group?: string };
    mode: string;
    mount?: MountFacts & { network: boolean; fuse: boolean; known?: FilesystemKnowledge };
  };
  /** For a directory: who GC runs as there, and why (docs/design.md). */
  gcUser?: GcUserChoice;
  findings: Finding[];
}

/** Test seams, not part of the public API: passwd and group files to read names from. */
export interface EnvironmentHooks {
  accountFiles?: AccountFiles;
  /** The backup server's datastore list (default /etc/proxmox-backup/datastore.cfg). */
  datastoreConfig?: string;
}

/** inspectEnvironment(path?): throws only ChunkguardErrors (EBADINPUT for a bad path). */
export function inspectEnvironment(path?: string): EnvironmentReport {
  return inspectEnvironmentWith(path);
}

/** inspectEnvironment with test seams (not exported from the package). */
export function inspectEnvironmentWith(path?: string, hooks: EnvironmentHooks = {}): EnvironmentReport {
  try {
    return inspect(path, hooks);
  } catch (error) {
    throw publicError(error, undefined, 'env');
  }
}

function noPasswdEntry(id: ProcessIdentity, variables: EnvironmentReport['variables']): Finding {
  const missing = [!variables.USER && '$USER', !variables.HOME && '$HOME'].filter(Boolean);
  const variablesText = missing.length
    ? `, and ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: Go's user.Current() and other tools that look the user up fail or hang there, as kopia did (seed 001)`
    : `: $USER and $HOME are set, so tools that read them (kopia, seed 001) work, but getpwuid() still finds nothing: "whoami", ssh, and any GC tool that looks the user up still fail`;
  return {
    code: 'NO_PASSWD_ENTRY',
    severity: 'warning',
    message: `uid ${id.euid} has no entry in /etc/passwd${variablesText}`,
    remedy: `echo 'gc:x:${id.euid}:${id.egid}::${variables.HOME && !variables.HOME.includes(':') && !variables.HOME.includes("'") ? variables.HOME : '/tmp'}:/usr/sbin/nologin' >> /etc/passwd   # in the image, as root (or run as a uid the image knows)`,
    evidence: { euid: id.euid, egid: id.egid, USER: variables.USER ?? null, HOME: variables.HOME ?? null },
  };
}

/** The path's owner, mode and mount, and the risks they carry. */
function describePath(path: string, accounts: Accounts, id: ProcessIdentity, namespace: UserNamespace, hooks: EnvironmentHooks): { facts: NonNullable<EnvironmentReport['path']>; gcUser?: GcUserChoice; findings: Finding[] } {
  if (path === '') throw badInput(path, 'empty path');
  // A symlink is described by its target, as check and audit resolve a symlinked root once; a dangling one is bad input.
  const { absolute, entry, resolvedFrom } = resolveGiven(path, 'no such file or directory');
  const stat = entry.stat!;
  const { mount, known } = filesystemAt(absolute);
  const uid = Number(stat.uid);
  const gid = Number(stat.gid);
  const decision = stat.isDirectory() ? gcUserFor(path, absolute, { identity: unsignedIdentity(stat), accounts, datastoreConfig: hooks.datastoreConfig }) : undefined;
  const expected = decision?.expected ?? { uid: id.euid, gid: id.egid };
  const facts = {
    path: absolute,
    owner: { uid, gid, user: accounts.userByUid(uid)?.name, group: accounts.groupByGid(gid)?.name },
    mode: formatMode(stat.mode),
    mount: mount && {
      ...mountFacts(mount),
      network: isNetwork(mount.fsType),
      fuse: isFuse(mount.fsType),
      ...(known ? { known } : {}),
    },
  };
  const where = mount ? `${mount.mountPoint} (${mount.fsType})` : absolute;
  const findings: Finding[] = [];
  if (resolvedFrom) {
    findings.push({
      code: 'STORE_ROOT_SYMLINK',
      severity: 'info',
      message: `${resolvedFrom} is a symlink; described its target ${absolute}`,
      path: resolvedFrom,
      evidence: { target: absolute },
    });
  }
  if (mount?.readOnly) {
    findings.push({
      code: 'READ_ONLY_FS',
      severity: 'error',
      message: `${where} is mounted read-only: GC can neither mark nor remove chunks there`,
      path: absolute,
      remedy: readOnlyRemedy(mount.mountPoint, known, absolute),
      evidence: { mountOptions: mount.mountOptions },
    });
  }
  if (isUnmapped({ uid, gid }, namespace)) {
    findings.push({
      code: 'OWNER_NOT_MAPPED',
      severity: 'error',
      message: `${absolute} shows owner ${uid}:${gid}, the overflow id: its real owner is not mapped in this user namespace (uid_map ${formatIdMap(namespace.uidMap)}), so this process gets "permission denied" and cannot chown it`,
      path: absolute,
      remedy: ownerRemedy(absolute, expected, namespace, false),
      evidence: { uidMap: namespace.uidMap, gidMap: namespace.gidMap, overflowUid: namespace.overflowUid },
    });
  }
  if (facts.mount?.network) {
    findings.push({
      code: 'NETWORK_FILESYSTEM',
      severity: 'info',
      message: `${where} is a network filesystem: ownership is decided by the server (root_squash, all_squash, idmapping) and atime by its clock; run "chunkguard check" as the GC user there`,
      path: absolute,
      evidence: { source: mount!.source, mountOptions: mount!.mountOptions },
    });
  }
  if (facts.mount?.fuse) {
    const dropped = known?.atime === 'dropped';
    findings.push({
      code: 'FUSE_FILESYSTEM',
      severity: dropped ? 'warning' : 'info',
      message: dropped
        ? `${where} is ${known!.name}, which drops atime-only updates: GC would delete live chunks there; "chunkguard check" measures it`
        : `${where} is a FUSE filesystem${known ? ` (${known.name})` : ''}: whether it stores atime updates is up to the daemon (${mount!.source}); run "chunkguard check" there before trusting GC${known?.note ? `; ${known.note}` : ''}`,
      path: absolute,
      ...(dropped && known!.advice ? { remedy: known!.advice } : {}),
      evidence: { source: mount!.source, fsType: mount!.fsType, filesystem: known?.name },
    });
    // The GC user, not this process: root may mount and enter, and GC still be shut out.
    const gcUid = decision?.gcUser.uid ?? id.euid;
    const blocked = fuseWithoutAllowOther(mount!, gcUid, (uid) => accounts.describeUid(uid));
    if (blocked) findings.push(blocked);
  }
  return { facts, gcUser: decision?.gcUser, findings };
}

function inspect(path: string | undefined, hooks: EnvironmentHooks): EnvironmentReport {
  const accounts = new Accounts(hooks.accountFiles);
  const id = processIdentity();
  const namespace = userNamespace();
  const caps = effectiveCapabilities();
  const passwd = accounts.userByUid(id.euid);
  const group = accounts.groupByGid(id.egid);
  const variables = { USER: process.env.USER, HOME: process.env.HOME, LOGNAME: process.env.LOGNAME };
  const findings: Finding[] = passwd ? [] : [noPasswdEntry(id, variables)];
  const described = path === undefined ? undefined : describePath(path, accounts, id, namespace, hooks);
  if (described) findings.push(...described.findings);

  const ok = !findings.some((finding) => finding.severity !== 'info');
  const who = `uid ${accounts.describeUid(id.euid)} gid ${accounts.describeGid(id.egid)}`;
  return {
    ok,
    command: 'env',
    summary: ok ? `OK: running as ${who}, no risks found` : `RISKS: running as ${who}; ${plural(findings.filter((f) => f.severity !== 'info').length, 'risk')} found`,
    identity: {
      uid: id.uid,
      gid: id.gid,
      euid: id.euid,
      egid: id.egid,
      groups: id.groups.map((gid) => ({ gid, name: accounts.groupByGid(gid)?.name })),
    },
    passwd: passwd && { ...passwd },
    group: group && { ...group },
    variables,
    namespace,
    capabilities: {
      effective: `0x${caps.toString(16).padStart(16, '0')}`,
      CAP_CHOWN: hasCapability(CAP_CHOWN, caps),
      CAP_DAC_OVERRIDE: hasCapability(CAP_DAC_OVERRIDE, caps),
      CAP_FOWNER: hasCapability(CAP_FOWNER, caps),
    },
    path: described?.facts,
    gcUser: described?.gcUser,
    findings,
  };
}
