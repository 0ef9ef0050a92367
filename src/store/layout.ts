/** Where things live in a chunk store (Proxmox Backup Server layout). */
import { join } from 'node:path';

export const CHUNKS_DIR = '.chunks';
export const PREFIX_DIR_MODE = 0o750;

export function chunksDir(store: string): string {
  return join(store, CHUNKS_DIR);
}

/** `.chunks/<first 4 hex>` */
export function prefixDir(store: string, digest: string): string {
  return join(store, CHUNKS_DIR, digest.slice(0, 4));
}

export function chunkPath(store: string, digest: string): string {
  return join(prefixDir(store, digest), digest);
}
