/**
 * Which file a name referred to: device and inode, both unsigned 64-bit.
 * bigints inside a process (worker threads clone them as they are); decimal
 * strings only where an identity crosses JSON to the helper process.
 */
export interface Identity {
  dev: bigint;
  ino: bigint;
}

export interface WireIdentity {
  dev: string;
  ino: string;
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

export function identityOf(stat: Identity): Identity {
  return { dev: stat.dev, ino: stat.ino };
}

export function toWire(identity: Identity): WireIdentity {
  return { dev: identity.dev.toString(), ino: identity.ino.toString() };
}

export function fromWire(wire: WireIdentity): Identity {
  return { dev: BigInt(wire.dev), ino: BigInt(wire.ino) };
}

/** Node's BigIntStats holds st_dev and st_ino signed: an inode >= 2^63 (rclone hands those out) comes out negative. */
export function unsignedIdentity(stat: { dev: bigint; ino: bigint }): Identity {
  return { dev: BigInt.asUintN(64, stat.dev), ino: BigInt.asUintN(64, stat.ino) };
}
