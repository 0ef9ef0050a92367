/**
 * `--probe` run by root: root makes a datastore as the server would and hands
 * it to the GC user, who measures in it (new-datastore.ts). Where the GC user
 * never gets as far as the touch (it cannot reach or write the directory), root
 * measures the filesystem too, so the report says both who cannot get there and
 * whether atime would be honoured once they can. Root removes it all afterwards.
 * How to measure as whom is the caller's (`measure`): this module only decides.
 */
import { zeroChunkDigest } from '../chunk/zero-chunk.js';
import type { Finding, FindingCode } from '../findings.js';
import { FsError, isUnsafePath } from '../fs/errors.js';
import { chunkPath } from '../store/layout.js';
import { mountFacts } from '../system/mounts.js';
import { CAP_FOWNER, hasCapability } from '../system/process.js';
import { ownersShowCreator } from '../system/filesystems.js';
import type { ThreadCredentials } from '../system/thread-credentials.js';
import { noFileOwners, staleLeftovers } from './check-findings.js';
import { filesystemFacts, type MeasurePlan } from './context.js';
import { unsafePath } from './diagnose.js';
import { makeNewDatastore, type NewDatastore } from './new-datastore.js';
import type { AsRoot, Measurement, TouchIdentity } from './report.js';

export type Measure = (credentials: ThreadCredentials | undefined, plan: MeasurePlan) => Promise<{ measurement: Measurement; via: TouchIdentity['via'] }>;

/** What keeps the GC user from getting as far as the touch: its rights there, which root's are not. */
const BARRED = new Set<FindingCode>(['UNREADABLE', 'FUSE_NO_ALLOW_OTHER', 'OWNER_NOT_MAPPED', 'CHUNK_DIR_NOT_WRITABLE', 'CHUNK_WRITE_FAILED', 'NO_FILE_OWNERS', 'TOUCH_EPERM_WRONG_OWNER']);

export async function probeAsNewDatastore(
  target: { store: string; stat: { dev: bigint; ino: bigint } },
  plan: MeasurePlan,
  credentials: ThreadCredentials | undefined,
  measure: Measure,
): Promise<{ measurement: Measurement; via: TouchIdentity['via']; asRoot?: AsRoot }> {
  let datastore: NewDatastore;
  try {
    datastore = makeNewDatastore(target.store, target.stat, plan.storeOwner, { ownersKept: ownersShowCreator(plan.filesystem, plan.mount?.fsType) });
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    // An entry swapped in while root made it: said as such, and nobody measures (never root's verdict in its place).
    if (isUnsafePath(error)) return { measurement: unmeasured(plan, credentials, unsafePath(error)), via: 'self' };
    // Root cannot write there either (read-only, full): root's own probe measures, and says why.
    return measure(undefined, { ...plan, probe: true });
  }
  try {
    const inside: MeasurePlan = { ...plan, store: datastore.path, rootIdentity: datastore.identity, probe: false };
    const gc = await measure(credentials, inside);
    gc.measurement.findings = [
      ...(datastore.staleRemoved > 0 ? [staleLeftovers(datastore.staleRemoved, 'probe directory', target.store)] : []),
      ...(datastore.ownerNotSet ? [noFileOwners(target.store, datastore.ownerNotSet, plan.storeOwner, { known: plan.filesystem, mount: plan.mount && mountFacts(plan.mount) })] : []),
      ...gc.measurement.findings.map((finding) => outsideProbe(finding, datastore.probePath)),
    ];
    if (!credentials || !neverTouched(gc.measurement)) return gc;
    const root = await measure(undefined, inside);
    return { ...gc, measurement: withRootMeasurement(gc.measurement, root.measurement), asRoot: { touchedAs: root.measurement.touchedAs, chunkAction: root.measurement.chunkAction } };
  } finally {
    datastore.remove();
  }
}

function neverTouched(measurement: Measurement): boolean {
  return measurement.after === undefined && measurement.findings.some((finding) => BARRED.has(finding.code));
}

/** The GC user's findings first (who cannot get there), then what root measured of the filesystem that they do not already say. */
function withRootMeasurement(gc: Measurement, root: Measurement): Measurement {
  const said = new Set(gc.findings.map((finding) => finding.code));
  return {
    ...gc,
    before: root.before,
    after: root.after,
    host: root.host,
    waits: root.waits,
    touches: gc.touches + root.touches,
    findings: [...gc.findings, ...root.findings.filter((finding) => !said.has(finding.code))],
  };
}

/** A remedy inside the probe directory names a path that is gone by the time it is read: the finding stays, without it. */
function outsideProbe(finding: Finding, probePath: string): Finding {
  if (!finding.remedy?.includes(probePath)) return finding;
  const { remedy: _gone, ...rest } = finding;
  return { ...rest, message: `${finding.message} (in chunkguard's probe directory, removed afterwards: on a real datastore the same holds)` };
}

/** A measurement that never started: who would have touched, the finding that says why not. */
function unmeasured(plan: MeasurePlan, credentials: ThreadCredentials | undefined, finding: Finding): Measurement {
  return {
    digest: zeroChunkDigest(),
    chunkPath: chunkPath(plan.store, zeroChunkDigest()),
    touchedAs: credentials ? { ...credentials, capFowner: false } : { uid: process.geteuid!(), gid: process.getegid!(), groups: process.getgroups!(), capFowner: hasCapability(CAP_FOWNER) },
    filesystem: filesystemFacts(plan),
    waits: [],
    touches: 0,
    findings: [finding],
  };
}
