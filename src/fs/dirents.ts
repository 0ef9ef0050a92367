/**
 * The only reader of directory entries: getdents64 on an open descriptor
 * (glibc's wrapper, or the raw syscall where glibc is older than 2.30: the
 * same records either way). Each name is handed over NUL-terminated inside
 * the buffer, so statx can take it without a string being made.
 *
 *   struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
 */
import { libc } from '../native/libc.js';
import { errnoName, FsError } from './errors.js';

const RECLEN = 16;
const TYPE = 18;
const NAME = 19;
/** d_type of a directory; DT_UNKNOWN where the filesystem does not say (then only a stat tells). */
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_UNKNOWN = 0;
const BUFFER_SIZE = 64 * 1024;
const DOT = 0x2e;

/**
 * Called for each entry but . and ..: `name` is the buffer from the first
 * byte of the name up to and including its NUL (valid until the next
 * entry). Return false to stop.
 */
export type EntryVisitor = (name: Buffer) => boolean;

/**
 * The audit's visitor: the name is `reader.buf` from `start` up to its NUL,
 * valid until the next entry; no Buffer is made for it (nameAt makes one).
 * Return false to stop.
 */
export type NameVisitor = (start: number) => boolean;

export class DirentReader {
  readonly buf = Buffer.allocUnsafe(BUFFER_SIZE);
  private bufAddress: number | undefined;

  /**
   * Where `buf` is in memory, for calls that take a name by address (a number:
   * user-space addresses are below 2^53 on x64 and arm64). The buffer lives and
   * stays put as long as the reader.
   */
  get address(): number {
    this.bufAddress ??= Number(libc().address(this.buf));
    return this.bufAddress;
  }

  /** Visit every entry of the open directory `fd` from its current offset; `where.path` is read only for an error. */
  forEach(fd: number, where: { readonly path: string }, visit: EntryVisitor): void {
    this.forEachName(fd, where, (start) => visit(this.nameAt(start)));
  }

  forEachName(fd: number, where: { readonly path: string }, visit: NameVisitor): void {
    const { buf } = this;
    for (;;) {
      const length = libc().getdents64(fd, buf, buf.length);
      if (length < 0) throw new FsError(errnoName(libc().errno()), 'getdents64', where.path);
      if (length === 0) return;
      for (let offset = 0; offset < length; ) {
        const next = offset + (buf[offset + RECLEN]! | (buf[offset + RECLEN + 1]! << 8));
        const start = offset + NAME;
        // A record whose name is not NUL-terminated within it is a kernel or libc we do not understand.
        // The kernel pads records to 8 bytes after the NUL, so looking back from the end finds one at once.
        if (next < start + 1 || next > length) throw malformed(where);
        let nul = next - 1;
        while (nul >= start && buf[nul] !== 0) nul--;
        if (nul < start) throw malformed(where);
        offset = next;
        if (buf[start] === DOT && (buf[start + 1] === 0 || (buf[start + 1] === DOT && buf[start + 2] === 0))) continue;
        if (!visit(start)) return;
      }
    }
  }

  /** The entry's d_type as the filesystem reported it in the listing (a hint: the entry may change before it is used). */
  typeAt(start: number): number {
    return this.buf[start - NAME + TYPE]!;
  }

  /** The name at `start` with its NUL (valid until the next entry), for code that keeps or decodes it. */
  nameAt(start: number): Buffer {
    return this.buf.subarray(start, this.buf.indexOf(0, start) + 1);
  }
}

function malformed(where: { readonly path: string }): FsError {
  return new FsError('EIO', 'getdents64', where.path, { detail: 'malformed directory record' });
}

/** The name of a visited entry without its NUL, copied out of the buffer. */
export function entryName(name: Buffer): Buffer {
  return Buffer.from(name.subarray(0, name.length - 1));
}
