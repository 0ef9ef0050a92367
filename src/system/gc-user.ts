/**
 * Who GC runs as, and who should own the store: one answer, used by check,
 * audit, fix and env, and shown in every report with the reason it was chosen.
 *
 * 1. `--as-user` (`runAs`, `asUser`), else an explicit `--owner`;
 * 2. a datastore listed in the server's datastore.cfg: its `backup` user;
 * 3. the owners in the store: for a chunk store its structure first (`.chunks`,
 *    most prefix directories, most chunks, most other entries, the root); for any
 *    other tree the owner of most entries; root only when nothing there belongs
 *    to anyone else (chooseOwner);
 * 4. this process's user, when every owner there is unmapped (user namespace).
 * An owner shown as the overflow id is never chosen: it is not a real owner.
 */
import { lstatSync } from 'node:fs';
import { badInput } from '../errors.js';
import { type Finding, fixRemedy, formatMode, plural, shellQuote } from '../findings.js';
import { Dir } from '../fs/dir.js';
import { FsError } from '../fs/errors.js';
import { type Identity, sameIdentity } from '../fs/identity.js';
import { chunksDir } from '../store/layout.js';
import { type Owner, type OwnedEntry, type OwnerCensus, ownerKey, parseOwnerKey, sampleOwners, totalOf } from '../store/owners.js';
import { canSearch, canWriteDirectory, type GcUser } from './access.js';
import { type Datastore, datastoreOf } from './datastores.js';
import type { Accounts } from './passwd.js';
import { hostId, isUnmapped, type UserNamespace, userNamespace } from './process.js';
import type { UserSpec } from './user-spec.js';

export type GcUserSource = 'option' | 'datastore.cfg' | 'store owners' | 'majority owner' | 'current user' | 'backup user' | 'unprivileged user';

/** The GC user as reports show it. */
export interface GcUserChoice extends GcUser {
  user?: string;
  group?: string;
  from: GcUserSource;
  /** Why this user, in words. */
  reason: string;
  datastore?: { name: string; config: string };
}

export interface GcUserInput {
  /** The directory as given (for the reason). */
  dir: string;
  /** `--as-user`, with the option's name for the reason. */
  asUser?: { spec: UserSpec; option: string };
  /** An explicit expected owner (`--owner`). */
  owner?: { spec: UserSpec; option: string };
  datastore?: Datastore;
  census: OwnerCensus;
  accounts: Accounts;
  namespace: UserNamespace;
  /** This process's effective ids (the last resort). */
  self: Owner;
}

/**
 * The answer for a directory the caller validated: its owners sampled through a
 * descriptor (refusing a directory replaced since, with `identity`), the server's
 * datastore list, and the options. Check, fix and env use this; the audit counts
 * every entry and decides again from the counts.
 */
export function gcUserFor(
  dir: string,
  absolute: string,
  options: { asUser?: GcUserInput['asUser']; identity?: Identity; accounts: Accounts; datastoreConfig?: string },
): { gcUser: GcUserChoice; expected: Owner; census: OwnerCensus; namespace: UserNamespace } {
  const census = sampleOrTop(dir, absolute, options.identity);
  const namespace = userNamespace();
  const decision = decideGcUser({
    dir,
    asUser: options.asUser,
    datastore: datastoreOf(absolute, options.datastoreConfig),
    census,
    accounts: options.accounts,
    namespace,
    self: { uid: process.geteuid!(), gid: process.getegid!() },
  });
  return { ...decision, census, namespace };
}

/**
 * The sampled owners; a directory this process may pass but not list (mode 0711, a
 * check run as a user other than root) is decided from its own owner, and the
 * measurement says what that user cannot do.
 */
function sampleOrTop(dir: string, absolute: string, identity: Identity | undefined): OwnerCensus {
  let root: Dir;
  try {
    root = Dir.open(absolute);
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    if (error.code !== 'EACCES') throw badInput(dir, `cannot open (${error.code})`);
    const stat = lstatSync(absolute);
    return { top: { uid: stat.uid, gid: stat.gid, mode: stat.mode }, contents: new Map(), complete: false };
  }
  try {
    if (identity && !sameIdentity(root.statSelf(), identity)) throw badInput(dir, 'was replaced by another directory while chunkguard started');
    return sampleOwners(root, root.statSelf());
  } finally {
    root.close();
  }
}

/** Debian's and the server's `backup` user, when /etc/passwd has no entry by that name. */
const BACKUP_USER = { uid: 34, gid: 34 };

/** nobody:nogroup: the unprivileged user when a host has no `backup` user. */
const NOBODY = { uid: 65534, gid: 65534 };

/**
 * Who a new datastore would belong to, for a probe run as root where nothing below
 * names a GC user other than root: the host's `backup` user (the server's GC user),
 * else `nobody`, a user without privileges. Never root: root passes through
 * CAP_FOWNER where GC fails (seed 002).
 */
export function newDatastoreUser(dir: string, accounts: Accounts): GcUserChoice {
  const backup = accounts.userByName('backup');
  const user = backup ?? accounts.userByName('nobody') ?? { ...NOBODY, name: undefined };
  const from: GcUserSource = backup ? 'backup user' : 'unprivileged user';
  const reason = backup
    ? `nothing under ${dir} names a GC user other than root, and this host has the backup server's GC user, backup: a new datastore is handed to it`
    : `nothing under ${dir} names a GC user other than root, and this host has no backup user: checked as uid ${user.uid}, a user without privileges (pass --as-user with the user GC will run as)`;
  return choice(accounts, user.uid, user.gid, from, reason);
}

/** The GC user `uid` with primary group `gid`, its groups and names from the files. */
function choice(accounts: Accounts, uid: number, gid: number, from: GcUserSource, reason: string): GcUserChoice {
  const entry = accounts.userByUid(uid);
  return { uid, gid, groups: accounts.groupsOf(entry, gid), name: entry?.name, user: entry?.name, group: accounts.groupByGid(gid)?.name, from, reason };
}

type ChosenBy = 'chunks-dir' | 'prefix-dirs' | 'chunks' | 'contents' | 'top';

/**
 * The owner the rules choose from what was counted; undefined when none may be chosen.
 * A chunk store is decided by its structure first, as the server made it: `.chunks`, then
 * most prefix directories, then most chunks, then the rest of its contents, then the store
 * root, the first owner that is neither root nor unmapped (chunks copied in by another user
 * do not outvote the store's own directories). Any other tree: the owner of most entries.
 * Root only when nothing there, mapped or not, belongs to anyone else. The uid comes from
 * that rule, the gid from most of that uid's entries (a `.chunks` chowned without its group
 * does not regroup the store).
 */
export function chooseOwner(census: OwnerCensus, namespace: UserNamespace): { owner: Owner; by: ChosenBy } | undefined {
  const top = new Map([[ownerKey(census.top), 1]]);
  const levels: [ChosenBy, Map<string, number>][] = census.chunksDir
    ? [
        ['chunks-dir', new Map([[ownerKey(census.chunksDir), 1]])],
        ['prefix-dirs', census.prefixDirs?.owners ?? new Map()],
        ['chunks', census.chunks ?? new Map()],
        ['contents', census.contents],
        ['top', top],
      ]
    : [
        ['contents', census.contents],
        ['top', top],
      ];
  const owners = (counts: Map<string, number>) => [...counts].map(([key, count]) => ({ owner: parseOwnerKey(key), count }));
  const everyone = levels.flatMap(([, counts]) => owners(counts));
  const rootAllowed = everyone.every(({ owner }) => owner.uid === 0);
  for (const [by, counts] of levels) {
    const candidates = owners(counts).filter(({ owner }) => !isUnmapped(owner, namespace) && (rootAllowed || owner.uid !== 0));
    if (candidates.length === 0) continue;
    const { uid } = mostEntries(candidates, census.top);
    const gids = new Map<string, number>();
    for (const { owner, count } of owners(census.contents).concat(owners(top))) {
      if (owner.uid === uid && !isUnmapped(owner, namespace)) gids.set(ownerKey(owner), (gids.get(ownerKey(owner)) ?? 0) + count);
    }
    const preferred = candidates.filter(({ owner }) => owner.uid === uid);
    return { owner: gids.size ? mostEntries(owners(gids), census.top) : mostEntries(preferred, census.top), by };
  }
  return undefined;
}

/** Most entries; on a tie the top directory's owner, then the lower ids (so the answer never depends on listing order). */
function mostEntries(candidates: { owner: Owner; count: number }[], top: Owner): Owner {
  const rank = (candidate: { owner: Owner; count: number }) => [candidate.count, ownerKey(candidate.owner) === ownerKey(top) ? 1 : 0, -candidate.owner.uid, -candidate.owner.gid];
  const best = candidates.reduce((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! > rb[i]! ? a : b;
    return a;
  });
  return best.owner;
}

/** The GC user and the owner every entry should have. */
export function decideGcUser(input: GcUserInput): { gcUser: GcUserChoice; expected: Owner } {
  const { accounts, census, dir } = input;
  const make = (uid: number, gid: number, from: GcUserSource, reason: string, primaryGid = gid): GcUserChoice => choice(accounts, uid, primaryGid, from, reason);
  if (input.asUser) {
    const { spec, option } = input.asUser;
    const expected = input.owner?.spec ?? spec;
    return { gcUser: make(spec.uid, spec.gid, 'option', `given with ${option}`), expected: { uid: expected.uid, gid: expected.gid } };
  }
  if (input.owner) {
    const { spec, option } = input.owner;
    return { gcUser: make(spec.uid, spec.gid, 'option', `the owner given with ${option}`), expected: { uid: spec.uid, gid: spec.gid } };
  }
  if (input.datastore) {
    const { name, config } = input.datastore;
    const backup = accounts.userByName('backup') ?? BACKUP_USER;
    const gcUser = make(backup.uid, backup.gid, 'datastore.cfg', `${dir} is datastore "${name}" in ${config}: the backup server runs GC as its backup user`);
    return { gcUser: { ...gcUser, datastore: { name, config } }, expected: { uid: backup.uid, gid: backup.gid } };
  }
  const chosen = chooseOwner(census, input.namespace);
  if (!chosen) {
    const { uid, gid } = input.self;
    return { gcUser: make(uid, gid, 'current user', `every owner under ${dir} shows as the overflow id (not mapped in this user namespace): assumed GC runs as this process's user`), expected: { uid, gid } };
  }
  const { owner, by } = chosen;
  const primary = accounts.userByUid(owner.uid)?.gid ?? owner.gid;
  const from: GcUserSource = census.chunksDir ? 'store owners' : 'majority owner';
  return { gcUser: make(owner.uid, owner.gid, from, ownerReason(census, owner, by, dir, accounts), primary), expected: owner };
}

function ownerReason(census: OwnerCensus, owner: Owner, by: ChosenBy, dir: string, accounts: Accounts): string {
  const who = `uid ${accounts.describeUid(owner.uid)}`;
  const sampled = census.complete ? '' : ' sampled';
  const share = (counts: Map<string, number> | undefined, what: string, plural_: string) =>
    `${counts?.get(ownerKey(owner)) ?? 0} of ${plural(totalOf(counts), what, plural_)}${sampled}`;
  const rootOnly = owner.uid === 0 ? '' : ', the first level of the store not owned by root';
  switch (by) {
    case 'chunks-dir':
      return `${who} owns ${dir}/.chunks${census.top.uid === 0 && owner.uid !== 0 ? ' (the store root is root\'s, as mount points often are)' : ''}`;
    case 'prefix-dirs':
      return `${who} owns most prefix directories of ${dir} (${share(census.prefixDirs?.owners, 'prefix directory', 'prefix directories')})${rootOnly}`;
    case 'chunks':
      return `${who} owns most chunks of ${dir} (${share(census.chunks, 'chunk', 'chunks')})${rootOnly}`;
    case 'contents':
      return `${who} owns most entries under ${dir} (${share(census.contents, 'entry', 'entries')})${census.top.uid === 0 && owner.uid !== 0 ? '; the top directory is root\'s' : ''}`;
    default:
      return owner.uid === 0 || census.contents.size === 0 || (census.contents.size === 1 && census.contents.has(ownerKey(owner)))
        ? `${who} owns ${dir}${census.contents.size ? ' and everything in it' : ''}`
        : `${who} owns ${dir}; what is inside belongs to root, which is never taken for the GC user while part of the store belongs to someone else`;
  }
}

/** `34:34 (backup:backup)`, names where /etc/passwd and /etc/group have them. */
export function ownerText(owner: Owner, accounts: Accounts): string {
  const user = accounts.userByUid(owner.uid)?.name;
  const group = accounts.groupByGid(owner.gid)?.name;
  return user || group ? `${owner.uid}:${owner.gid} (${user ?? owner.uid}:${group ?? owner.gid})` : `${owner.uid}:${owner.gid}`;
}

/**
 * The store's own directories (its root, `.chunks`, the prefix directories)
 * should all belong to the expected owner. When they disagree, one finding
 * names each owner, with the narrow chown that makes them agree: those
 * directories only, never a recursive chown of the store.
 */
export function inconsistentOwners(store: string, census: OwnerCensus, expected: Owner, gcUser: GcUserChoice, accounts: Accounts, namespace: UserNamespace): Finding | undefined {
  if (!census.chunksDir) return undefined;
  // An unmapped owner is OWNER_NOT_MAPPED's, with the host-side remedy: no chown here could change it.
  const differs = (owner: Owner) => (owner.uid !== expected.uid || owner.gid !== expected.gid) && !isUnmapped(owner, namespace);
  const who = (owner: Owner) => ownerText(owner, accounts);
  const parts: string[] = [];
  // What the GC user cannot write: GC itself fails (prefix directories), or backups do (the others).
  const blocksGc: string[] = [];
  const blocksBackups: string[] = [];
  const fix: string[] = [];
  const dirs: { path: string; entry: OwnedEntry; needs: string }[] = [
    { path: store, entry: census.top, needs: 'a backup of a new type or namespace creates its directory there' },
    { path: chunksDir(store), entry: census.chunksDir, needs: 'a missing prefix directory is created there' },
  ];
  for (const { path, entry, needs } of dirs) {
    if (!differs(entry)) continue;
    parts.push(`${path} is owned by ${who(entry)} (mode ${formatMode(entry.mode)})`);
    fix.push(shellQuote(path));
    // Without search permission GC cannot even get in: it stops there, whatever else it could do.
    if (!canSearch(entry.mode, entry.uid, entry.gid, gcUser)) blocksGc.push(`enter ${path} (GC walks the whole store)`);
    else if (!canWriteDirectory(entry.mode, entry.uid, entry.gid, gcUser)) blocksBackups.push(`write in ${path} (${needs})`);
  }
  const prefix = census.prefixDirs;
  const seen = totalOf(prefix?.owners);
  // By owner, not by the order the directories were counted in (threads, stats in flight).
  const prefixOwners = prefix ? [...prefix.owners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : [];
  const foreignPrefixes = prefixOwners.filter(([key]) => differs(parseOwnerKey(key)));
  for (const [key, count] of foreignPrefixes) {
    const owner = parseOwnerKey(key);
    const mode = prefix!.modes.get(key)!;
    parts.push(`${count} of ${census.complete ? '' : 'the '}${plural(seen, 'prefix directory', 'prefix directories')}${census.complete ? '' : ' sampled'} ${count === 1 ? 'is' : 'are'} owned by ${who(owner)} (mode ${formatMode(mode)})`);
    if (!canWriteDirectory(mode, owner.uid, owner.gid, gcUser)) blocksGc.push(`write in the prefix directories owned by ${who(owner)} (GC removes unused chunks there, backups insert new ones)`);
  }
  if (parts.length === 0) return undefined;
  const target = `${expected.uid}:${expected.gid}`;
  const commands = fix.length ? [`chown -h ${target} ${fix.join(' ')}`] : [];
  if (foreignPrefixes.length) {
    // In a user namespace an overflow-owned directory cannot be changed here: OWNER_NOT_MAPPED has its host-side remedy.
    const mapped = namespace.identity ? '' : ` ! -uid ${namespace.overflowUid} ! -gid ${namespace.overflowGid}`;
    commands.push(`find ${shellQuote(chunksDir(store))} -mindepth 1 -maxdepth 1 -type d${mapped} \\( ! -uid ${expected.uid} -o ! -gid ${expected.gid} \\) -exec chown -h ${target} {} +`);
  }
  const gcWho = `uid ${accounts.describeUid(gcUser.uid)}`;
  const blocked = [...blocksGc, ...blocksBackups];
  const consequence = blocked.length
    ? `${gcWho} cannot ${blocked.join(', nor ')}: ${blocksGc.length ? 'GC stops there with "permission denied"' : 'GC can run, but that step fails with "permission denied"'}`
    : `${gcWho} can still write there, but the store is not laid out as the server creates it`;
  return {
    code: 'INCONSISTENT_OWNER',
    severity: blocksGc.length ? 'error' : blocksBackups.length ? 'warning' : 'info',
    message: `the store's directories do not all belong to ${who(expected)}, the expected owner: ${parts.join('; ')}. ${consequence}`,
    path: store,
    remedy: commands.join(' && '),
    evidence: {
      expected,
      root: census.top,
      chunksDir: census.chunksDir,
      prefixDirs: prefix && { seen, owners: Object.fromEntries(prefixOwners) },
      complete: census.complete,
    },
  };
}

/**
 * The command that gives `path` (with `recursive`, every entry under it with
 * another owner) the owner `expected`, ids as seen here. In the initial
 * namespace it runs here; in a user namespace it must run on the host, with
 * the host's ids from the id map: from inside, an unmapped owner cannot be changed.
 */
export function ownerRemedy(path: string, expected: Owner, namespace: UserNamespace, recursive: boolean): string {
  const command = (ids: string) => (recursive ? fixRemedy(path, ids) : `chown -h ${ids} ${shellQuote(path)}`);
  if (namespace.identity) return command(`${expected.uid}:${expected.gid}`);
  const uid = hostId(expected.uid, namespace.uidMap);
  const gid = hostId(expected.gid, namespace.gidMap);
  if (uid === undefined || gid === undefined) return `map uid ${expected.uid} and gid ${expected.gid} into this user namespace, then: ${command(`${expected.uid}:${expected.gid}`)}`;
  return `${command(`${uid}:${gid}`)}   # on the host, as root, outside this user namespace (host ${uid}:${gid} is ${expected.uid}:${expected.gid} here); or map the owner in (podman --userns=keep-id, a volume with :U)`;
}
